"""Commands for the reading room: inspect, measure, segment, presets, review."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace
from pathlib import Path

from ..errors import MREFibrosisError, printable
from ..model.runtime_probe import SLICES_PER_EXAM
from ..model.segmenter_settings import Runtime, SegmenterSettings
from .options import add_read_options, read_options, segmenter, segmenter_meanwhile, settings_from

log = logging.getLogger("mrefibrosis")
REVIEW_ENTRY_POINTS = "mrefibrosis.front_ends"  # the review page registers itself here (pyproject.toml)


def register(sub) -> None:
    p = sub.add_parser("measure", help="measure stiffness and stage of an exam over an ROI (given, or from the segmenter)")
    p.add_argument("study", metavar="STUDY", nargs="+", help="folder(s) (searched recursively) holding MRE exams")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for measurements.csv, result.json, roi.seg.nrrd (DIR/<exam key>/ for several exams)")
    p.add_argument("--roi", metavar="ROI_FILE", help=".seg.nrrd, .nrrd, .nii.gz labelmap or DICOM SEG; without it the segmenter runs")
    SegmenterSettings.add_arguments(p)
    p.add_argument("--preset", default="seed", metavar="NAME", help="staging preset name or JSON file (see 'mrefibrosis presets'; default seed)")
    p.add_argument("--min-area", type=float, default=1.0, metavar="CM2", help="valid ROI area below which the result is indeterminate (default 1)")
    p.add_argument("--include-identifiers", action="store_true", help="write patient name, ID and birth date into result.json")
    p.add_argument("--dicom", action="store_true", help="also write DICOM SEG, TID 1500 SR and RGB overlay into DIR/dicom/ (same study, new series)")
    add_read_options(p)
    p.set_defaults(handler=cmd_measure)

    p = sub.add_parser("segment", help="segment the liver ROI of exams with a model file")
    p.add_argument("study", metavar="STUDY", nargs="+", help="folder(s) (searched recursively) holding MRE exams")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for roi.seg.nrrd and segmentation.json (DIR/<exam key>/ for several exams)")
    p.add_argument("--progress", action="store_true", help="print 'progress FRACTION MESSAGE' lines on stdout (for the Slicer panel and other front ends)")
    SegmenterSettings.add_arguments(p)
    add_read_options(p)
    p.set_defaults(handler=cmd_segment)

    p = sub.add_parser("inspect", help="list the series found and how each was classified")
    p.add_argument("study", metavar="STUDY")
    add_read_options(p)
    p.set_defaults(handler=cmd_inspect)

    p = sub.add_parser("presets", help="list the staging presets with their cut-offs and sources")
    p.set_defaults(handler=cmd_presets)

    p = sub.add_parser("fetch-model", help="install the segmenter's weights (64 MB, once) where they were not shipped, checked against the shipped SHA-256")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--from", dest="from_file", metavar="FILE", help="install from this file (a computer without internet)")
    source.add_argument("--url", metavar="URL", help="download from this address (default: the release address, or $MREFIBROSIS_MODEL_URL)")
    p.add_argument("--dir", metavar="DIR", help="install into this folder (default: $MREFIBROSIS_MODEL_DIR, else the user's data folder)")
    p.set_defaults(handler=cmd_fetch_model)

    p = sub.add_parser("review", help="serve a browser page to review, correct, measure and export one exam's ROI (needs the [review] extra)")
    p.add_argument("study", metavar="STUDY", help="folder holding the exam's DICOM files")
    p.add_argument(
        "--roi", metavar="ROI_FILE", help="start from this ROI (.seg.nrrd, labelmap or DICOM SEG); default: the stored MREFibrosis ROI, else a new one"
    )
    p.add_argument("--new-roi", action="store_true", help="run the segmenter even when the study holds an ROI MREFibrosis stored (PACS worker)")
    p.add_argument("--out", metavar="DIR", help="where Export writes (default ./mrefibrosis-review/<exam key>)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other needs --token)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="access token (default: a random one). Visible to other users in the process list: prefer --token-file or $MREFIBROSIS_REVIEW_TOKEN",
    )
    p.add_argument("--token-file", metavar="FILE", help="read the access token from this file (its first line), kept out of the process list")
    p.add_argument("--reader", metavar="NAME", help="the person reviewing, named as observer in the DICOM SR of an edited ROI (optional; e.g. 'Doe^Jane')")
    p.add_argument("--preset", default="seed", metavar="NAME", help="staging preset for Compute and Export (as for measure; default seed)")
    add_read_options(p)  # the same reading as measure: one exam, one truth
    SegmenterSettings.add_arguments(p)
    p.set_defaults(handler=cmd_review)


def cmd_fetch_model(args) -> int:
    from ..model.model_store import fetch_model, installed_model, release_url

    present = installed_model()
    if present is not None and args.dir is None and args.from_file is None and args.url is None:
        print(f"the model is installed: {present}")
        return 0
    source = args.from_file or args.url or release_url()
    log.info("installing the model from %s", source)
    path = fetch_model(source, args.dir)
    print(f"the model is installed: {path}")
    return 0


def cmd_measure(args) -> int:
    from .._packages import require

    if args.min_area <= 0:
        raise MREFibrosisError("--min-area must be positive.")
    if args.dicom:
        require("highdicom", "--dicom (DICOM SEG, SR and overlay)", "measure")
    if args.roi is None:
        return _measure_with_segmenter(args)
    from ..pipeline import process_exam, write_results

    options = read_options(args)
    if len(args.study) != 1:
        raise MREFibrosisError("--roi belongs to one exam: give a single STUDY folder with it.")
    result = process_exam(args.study[0], args.roi, options, args.preset, min_area_cm2=args.min_area)
    written = write_results(result, args.out, include_identifiers=args.include_identifiers, dicom=args.dicom)
    _log_result(result)
    log.info("wrote %s", ", ".join(str(p) for p in written))
    return 0


def _measure_with_segmenter(args) -> int:
    from ..measure.fibrosis_stages import get_preset

    preset = get_preset(args.preset)  # refuse a bad preset before loading the model
    settings = settings_from(args)
    # the model loads while the reading stack is imported (pydicom, scipy: half a second) and the
    # exams are found and the first one read
    loading = segmenter_meanwhile(settings)
    options = read_options(args)
    from ..pipeline import exam_built_early, process_many
    from ..reading.exam_loader import find_exams

    found = find_exams(args.study, options)
    first = exam_built_early(found, options)
    seg = loading()
    # many exams: on a CPU, the runtime this machine measured faster for that much work (cached)
    chosen = settings.workload_runtime(sum(_slices_in(series) for _, series in found))
    if chosen not in (settings.runtime.value, seg.runtime):  # the settings' own runtime: nothing was measured
        log.info("%d exams: %s measured faster here than %s; using it", len(found), chosen, seg.runtime)
        seg = segmenter(replace(settings, runtime=Runtime(chosen)))
    failed = 0
    for outcome in process_many(args.study, args.out, options, preset, seg, args.min_area, args.include_identifiers, args.dicom, found=found, first=first):
        if outcome.error:
            failed += 1
            print(f"error: exam {outcome.exam_key}: {outcome.error}", file=sys.stderr)
            continue
        _log_result(outcome.result)
        log.info("exam %s: results in %s", outcome.exam_key, outcome.out_dir)
    return 2 if failed else 0


def _slices_in(series) -> int:
    """An exam's slice count before it is read: its largest elastogram series' image count."""
    from ..reading import classify as roles

    return max((len(s.instances) for s in series if s.role in roles.MEASURABLE), default=SLICES_PER_EXAM)


def _log_result(result) -> None:
    m = result.measurement
    log.info("%s", result.summary_line())
    for msg in m.messages:
        log.warning("exam %s: %s", result.exam.exam_key, msg)


def cmd_segment(args) -> int:
    def progress(fraction: float, message: str) -> None:
        if args.progress:
            print(f"progress {fraction:.3f} {message}", flush=True)

    progress(0.0, "finding the exam and loading the model")
    loading = segmenter_meanwhile(settings_from(args))  # loads while the reading stack is imported
    options = read_options(args)
    from ..pipeline import exam_built_early, for_each_exam, segment_to_files
    from ..reading.exam_loader import find_exams

    exams = find_exams(args.study, options)
    progress(0.05, "reading the exam")
    first = exam_built_early(exams, options)  # while the model loads
    progress(0.1, "loading the model")
    seg = loading()
    done = 0

    def segment_and_write(exam, target):
        progress(0.2 + 0.75 * done / len(exams), f"segmenting exam {done + 1} of {len(exams)}")
        return segment_to_files(exam, seg, target)

    failed = 0
    for outcome in for_each_exam(exams, args.out, options, segment_and_write, first):
        done += 1
        if outcome.error:
            failed += 1
            print(f"error: exam {outcome.exam_key}: {outcome.error}", file=sys.stderr)
            continue
        info = outcome.result
        tta = f", TTA agreement {info['tta_agreement']:.3f}" if info["tta_agreement"] is not None else ""
        log.info("exam %s: ROI %.2f cm2%s -> %s", outcome.exam_key, info["roi_area_cm2"], tta, outcome.out_dir)
    progress(1.0, "done")
    return 2 if failed else 0


def cmd_inspect(args) -> int:
    from ..reading.inspect_report import inspect_report

    print("\n".join(printable(line, keep_spacing=True) for line in inspect_report(Path(args.study), read_options(args)).splitlines()))
    return 0


def cmd_presets(args) -> int:
    from ..measure.fibrosis_stages import load_presets

    for name, p in load_presets().items():
        cuts = ", ".join(f"{b.stage} >= {b.min_kpa:g}" for b in p.bands[1:])
        print(f"{name} ({p.status}, {p.frequency_hz:g} Hz): {cuts}\n    {p.citation}")
    return 0


def cmd_review(args) -> int:
    """The review page is a front end of its own (trame-slicer on the Slicer Lib), installed with the
    [review] extra. It registers itself as an entry point, so the engine never imports it: this
    command checks the request and hands the parsed options over."""
    from importlib.metadata import entry_points

    from ..measure.fibrosis_stages import get_preset

    found = [e for e in entry_points(group=REVIEW_ENTRY_POINTS) if e.name == "review"]
    if not found:
        raise MREFibrosisError("the review page is not installed: pip install 'mrefibrosis[review]' (trame-slicer and slicer-core), then run this again.")
    get_preset(args.preset)  # an unknown preset is refused before the page is built
    from ..results.dicom_results import reader_name

    args.reader = reader_name(args.reader)  # a name DICOM cannot store is refused now, not at Export
    settings = settings_from(args)
    args.read_options = read_options(args)  # the engine's ReadOptions cross to the page whole
    try:
        run = found[0].load()
    except ImportError as exc:
        raise MREFibrosisError(f"the review page cannot start ({exc.name or exc}): pip install 'mrefibrosis[review]', then run this again.") from None
    return run(args, settings)
