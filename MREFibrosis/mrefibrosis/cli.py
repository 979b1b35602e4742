"""`mrefibrosis` command line. Its options and output files are a documented contract (docs/cli.md)."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import warnings
from pathlib import Path

from . import __version__
from .errors import MREFibrosisError, printable

log = logging.getLogger("mrefibrosis")


def _add_read_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reading the exam")
    g.add_argument("--stiffness-unit", choices=["Pa", "10Pa", "kPa"], help="unit of the stored elastogram values (overrides file and vendor defaults)")
    g.add_argument("--stiffness-series", metavar="SERIES", help="elastogram series to measure: SeriesNumber or SeriesInstanceUID")
    g.add_argument("--confidence-series", metavar="SERIES", help="confidence series: SeriesNumber or SeriesInstanceUID")
    g.add_argument("--study", dest="study_key", metavar="KEY", help="exam key (from 'inspect') or StudyInstanceUID when a folder holds several exams")
    g.add_argument("--confidence-threshold", type=float, default=0.95, metavar="C", help="confidence needed for a valid pixel (default 0.95)")
    g.add_argument("--hatch-period", type=int, metavar="PX", help="hatch period in pixels of confidence-masked elastograms (default: estimated)")


def _margin_mm(text: str) -> float:
    from .model.roi_margins import checked_mm  # only when the option is given: it imports scipy

    try:
        return checked_mm(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a margin in mm; give a number from 0 (off) to 100") from None


def _add_margin_options(g) -> None:
    g.add_argument(
        "--roi-edge-mm",
        type=_margin_mm,
        metavar="MM",
        help="keep the automatic ROI this deep inside the predicted liver (default 10, the reader's margin; 0: off)",
    )
    g.add_argument(
        "--roi-driver-mm",
        type=_margin_mm,
        metavar="MM",
        help="keep the automatic ROI this far from the driver found on the wave images (default 25; 0: off)",
    )


def _margins(args):
    from .model.roi_margins import RoiMargins

    given = {"liver_edge_mm": args.roi_edge_mm, "driver_mm": args.roi_driver_mm}
    return RoiMargins(**{k: v for k, v in given.items() if v is not None})


def _add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("segmenter")
    g.add_argument("--model", metavar="FILE", help="model file (.mrefmodel); default: the shipped model or $MREFIBROSIS_MODEL")
    g.add_argument("--model-sha256", metavar="HEX", help="SHA-256 of the whole model file as published by whoever trained it; refused on mismatch")
    g.add_argument("--device", default="auto", metavar="D", help="auto (CUDA when available), cpu or cuda[:N]")
    g.add_argument(
        "--precision",
        default="auto",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="auto uses reduced precision only where the model file says it was validated",
    )
    g.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: a second pass on the image moved by 8 px; averages both and reports their agreement per exam",
    )
    _add_margin_options(g)
    g.add_argument(
        "--runtime",
        default="auto",
        choices=["auto", "torch", "onnx"],
        help="auto: torch on a CUDA GPU, ONNX Runtime on the CPU when onnxruntime and the model's .onnx graph are there, torch otherwise",
    )


def _load_segmenter(args):
    from .model.inference import Segmenter

    return Segmenter(
        args.model, device=args.device, precision=args.precision, tta=args.tta, expected_sha256=args.model_sha256, runtime=args.runtime, margins=_margins(args)
    )


def _logged(seg):
    d = seg.describe()
    log.info("model %s (%s, %s) on %s, %s, %s", d["file"], d["architecture"], d["model_version"], d["runtime"], d["device"], d["precision"])
    return seg


def _segmenter(args):
    return _logged(_load_segmenter(args))


def _segmenter_meanwhile(args):
    """A callable giving the loaded (and logged) segmenter. On the ONNX Runtime path the model
    loads on a thread (checksums, weights, session: about 0.4 s) while the exams are found and
    read. torch loads when asked: its import would only compete with the reading for the GIL, and
    an error in the exam search would otherwise wait seconds for it at exit."""
    from .model.inference import default_model_path, runtime_for

    try:
        model_there = Path(args.model).exists() if args.model else default_model_path().exists()
        background = model_there and runtime_for(args.model, args.runtime, args.device, args.precision) == "onnx"
    except MREFibrosisError:
        background = False  # the same error comes as one line when the model is loaded
    if not background:
        return lambda: _segmenter(args)
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="model-load")
    future = pool.submit(_load_segmenter, args)
    pool.shutdown(wait=False)

    return lambda: _logged(future.result())  # logged from the main thread, so the lines keep their order


def _read_options(args):
    from .reading.exam_loader import ReadOptions

    if not 0.0 < args.confidence_threshold <= 1.0:
        raise MREFibrosisError("--confidence-threshold must lie in (0, 1], e.g. 0.95.")
    return ReadOptions(
        stiffness_unit=args.stiffness_unit,
        stiffness_series=args.stiffness_series,
        confidence_series=args.confidence_series,
        study=args.study_key,
        confidence_threshold=args.confidence_threshold,
        hatch_period_px=args.hatch_period,
        include_identifiers=getattr(args, "include_identifiers", False),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mrefibrosis", description="Liver MR elastography: stiffness (kPa) and fibrosis stage.")
    parser.add_argument("--version", action="version", version=f"MREFibrosis {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("measure", help="measure stiffness and stage of an exam over an ROI (given, or from the segmenter)")
    p.add_argument("study", metavar="STUDY", nargs="+", help="folder(s) (searched recursively) holding MRE exams")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for measurements.csv, result.json, roi.seg.nrrd (DIR/<exam key>/ for several exams)")
    p.add_argument("--roi", metavar="ROI_FILE", help=".seg.nrrd, .nrrd, .nii.gz labelmap or DICOM SEG; without it the segmenter runs")
    _add_model_options(p)
    p.add_argument("--preset", default="seed", metavar="NAME", help="staging preset name or JSON file (see 'mrefibrosis presets'; default seed)")
    p.add_argument("--min-area", type=float, default=1.0, metavar="CM2", help="valid ROI area below which the result is indeterminate (default 1)")
    p.add_argument("--include-identifiers", action="store_true", help="write patient name, ID and birth date into result.json")
    p.add_argument("--dicom", action="store_true", help="also write DICOM SEG, TID 1500 SR and RGB overlay into DIR/dicom/ (same study, new series)")
    _add_read_options(p)

    p = sub.add_parser("segment", help="segment the liver ROI of exams with a model file")
    p.add_argument("study", metavar="STUDY", nargs="+", help="folder(s) (searched recursively) holding MRE exams")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for roi.seg.nrrd and segmentation.json (DIR/<exam key>/ for several exams)")
    p.add_argument("--progress", action="store_true", help="print 'progress FRACTION MESSAGE' lines on stdout (for the Slicer panel and other front ends)")
    _add_model_options(p)
    _add_read_options(p)

    p = sub.add_parser("inspect", help="list the series found and how each was classified")
    p.add_argument("study", metavar="STUDY")
    _add_read_options(p)

    sub.add_parser("presets", help="list the staging presets with their cut-offs and sources")

    p = sub.add_parser("review", help="serve a browser page to review, correct, measure and export one exam's ROI (needs the [review] extra)")
    p.add_argument("study", metavar="STUDY", help="folder holding the exam's DICOM files")
    p.add_argument(
        "--roi", metavar="ROI_FILE", help="start from this ROI (.seg.nrrd, labelmap or DICOM SEG); default: the stored MREFibrosis ROI, else a new one"
    )
    p.add_argument("--new-roi", action="store_true", help="run the segmenter even when the study holds an ROI MREFibrosis stored (PACS worker)")
    p.add_argument("--out", metavar="DIR", help="where Export writes (default ./mrefibrosis-review/<exam key>)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other needs --token)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--token", metavar="TOKEN", help="access token the page's URL must carry (default: a random one; or $MREFIBROSIS_REVIEW_TOKEN)")
    p.add_argument("--study", dest="study_key", metavar="KEY", help="the exam's key when the folder holds several (see 'mrefibrosis inspect')")
    p.add_argument("--preset", default="seed", metavar="NAME", help="staging preset for Compute and Export (as for measure; default seed)")
    p.add_argument("--model", metavar="FILE", help="model file (.mrefmodel); default: the shipped model")
    p.add_argument("--device", default="auto", metavar="D", help="auto, cpu or cuda[:N]")
    _add_margin_options(p)

    p = sub.add_parser("worker", help="watch a PACS (Orthanc REST or DICOMweb) and store SEG, SR and overlay for each stable MRE study")
    p.add_argument("--config", required=True, metavar="FILE", help="worker JSON config (docs/pacs.md)")
    p.add_argument("--once", action="store_true", help="poll and process once, then exit (for cron or tests)")

    p = sub.add_parser("batch", help="score many exams on Ray (local or a cluster); resumable, one table for the run")
    p.add_argument("input", metavar="INPUT", help="folder with one subfolder per exam, or a CSV with a 'path' column")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--address", metavar="ADDR", help="join this Ray cluster (default: start Ray on this machine)")
    p.add_argument("--workers", type=int, default=2, help="model replicas (default 2)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G")
    p.add_argument("--model", metavar="FILE")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--runtime",
        default="auto",
        choices=["auto", "torch", "onnx"],
        help="as for measure; for throughput on a CPU with AVX512-BF16, torch (bf16) segments faster than ONNX Runtime (fp32): benchmarks/bench_cold_start.py",
    )
    p.add_argument("--preset", default="seed")
    _add_margin_options(p)

    p = sub.add_parser("receiver", help="DICOM storage SCP: process studies after a quiet period, send results by C-STORE")
    p.add_argument("--config", required=True, metavar="FILE", help="receiver JSON config (docs/pacs.md)")

    p = sub.add_parser("synth", help="write physics-simulated MRE exams with ground truth (example and training data)")
    p.add_argument("out", metavar="OUT", help="folder for exam_NNNNN/ (dicom/, roi.seg.nrrd, truth.json) and cohort.csv")
    p.add_argument("--n", type=int, default=1, help="number of exams (default 1)")
    p.add_argument("--vendor", choices=["ge", "siemens", "both"], default="both", help="vendor style (default both, alternating)")
    p.add_argument("--seed", type=int, default=0, help="cohort seed: the same seed gives the same files")
    p.add_argument("--stage-mix", metavar="MIX", help="weights of drawn fibrosis stages, e.g. F0=1,F1=1,F2=1,F3=1,F4=1")
    p.add_argument("--workers", type=int, help="processes (default: all cores)")
    p.add_argument(
        "--failure",
        metavar="MODE",
        help="technical failure of every exam: none, iron_overload, ascites, breath_hold, driver_off or very_stiff (default: drawn at the cohort rates)",
    )
    p.add_argument("--preview", metavar="PNG", help="also draw a sheet of the first exam into PNG")

    p = sub.add_parser("export-onnx", help="write a model's ONNX Runtime graph (weights stay in the model file) and check it against torch")
    p.add_argument("model", metavar="MODEL", help="model file (.mrefmodel); format-1 files are converted to format 2")
    p.add_argument("--out", metavar="DIR", help="folder for the model (format 2), its .onnx graph and SHA256SUMS (default: beside MODEL)")
    p.add_argument("--model-sha256", metavar="HEX", help="SHA-256 of the whole model file as published; refused on mismatch")

    p = sub.add_parser("manifest", help="write manifest.csv (exam, roi, reader kPa, stage, sex, age) for a synthetic cohort")
    p.add_argument("cohort", metavar="COHORT", help="folder written by 'mrefibrosis synth'")
    p.add_argument("--out", metavar="CSV", help="default COHORT/manifest.csv")
    p.add_argument("--cohort-name", metavar="NAME", help="value of the 'cohort' column (for the two-cohort table)")

    p = sub.add_parser("train", help="train a segmenter on a manifest of annotated exams (the seed paper's recipe by default)")
    p.add_argument("manifest", metavar="MANIFEST", help="CSV with exam,roi[,patient,manual_kpa,stage,...] (docs/training.md)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder: model.mrefmodel, checkpoint.pt, split.csv, history.csv")
    p.add_argument("--resume", action="store_true", help="continue the run in DIR from its last finished epoch")
    _add_train_options(p)

    p = sub.add_parser("tune", help="Optuna search over the paper's lr, momentum and weight-decay ranges (resumable SQLite study)")
    p.add_argument("manifest", metavar="MANIFEST")
    p.add_argument("--out", required=True, metavar="DIR", help="study folder: study.db, best_params.json, trials.csv")
    p.add_argument("--trials", type=int, default=20, help="trials to run in this call (default 20)")
    p.add_argument("--study-name", default="mrefibrosis", metavar="NAME")
    _add_train_options(p)

    p = sub.add_parser("evaluate", help="the paper's report for a model on a labelled cohort: Dice/IoU/F1, r, ICC, Bland-Altman, staging")
    p.add_argument("manifest", metavar="MANIFEST", help="CSV of the evaluation cohort (exam, roi, manual_kpa, stage, demographics)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for report.md, metrics.json, per_exam.csv and PNG plots")
    p.add_argument("--compare-with", metavar="MANIFEST", help="a second cohort (e.g. the training manifest) for the two-cohort table")
    p.add_argument("--without-magnitude", action="store_true", help="drop the magnitude images first (the figures for exams exported without them)")
    p.add_argument("--preset", default="seed", metavar="NAME", help="staging preset (default seed)")
    p.add_argument("--title", default="", metavar="TEXT", help="heading of report.md")
    _add_model_options(p)
    return parser


def _add_train_options(p: argparse.ArgumentParser) -> None:
    from .model.model_file import SUPPORTED_FITS
    from .training.config import TrainConfig

    d = TrainConfig()
    g = p.add_argument_group("recipe (defaults: the seed paper)")
    g.add_argument(
        "--architecture", default=d.architecture, choices=["unet_resnext50_32x4d", "unet_classic"], help="UNet-ResNeXt50-32x4d or the plain U-Net baseline"
    )
    g.add_argument("--input-size", type=int, default=d.input_size, metavar="PX", help=f"network input size, bilinear (default {d.input_size})")
    g.add_argument(
        "--fit",
        default=d.fit,
        choices=SUPPORTED_FITS,
        help=f"non-square exam grids: stretch each axis to the input size (the paper, the shipped model), or pad to a centred square first, keeping the aspect ratio (default {d.fit})",
    )
    g.add_argument("--epochs", type=int, default=d.epochs, help=f"default {d.epochs}")
    g.add_argument("--lr", type=float, default=d.lr, help=f"SGD learning rate (default {d.lr})")
    g.add_argument(
        "--lr-schedule",
        default=d.lr_schedule,
        choices=["constant", "cosine"],
        help="constant (the paper) or cosine: annealed from --lr towards 0 over --epochs (fine-tuning)",
    )
    g.add_argument("--momentum", type=float, default=d.momentum, help=f"default {d.momentum}")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help=f"default {d.weight_decay}")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help=f"slices per optimizer step (default {d.batch_size})")
    g.add_argument("--pos-weight", type=float, default=d.pos_weight, metavar="W", help="BCE weight of ROI pixels (default 1: plain BCE as in the paper)")
    g.add_argument(
        "--micro-batch", type=int, default=0, metavar="N", help="slices per forward pass; gradients accumulate to --batch-size (default: all on GPU, 8 on CPU)"
    )
    g.add_argument(
        "--val-fraction", type=float, default=d.val_fraction, help=f"share of patients for validation, stratified by stage (default {d.val_fraction})"
    )
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--device", default="auto", metavar="D", help="auto (CUDA when available), cpu or cuda[:N]")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"], help="auto: fp16 mixed precision on CUDA, fp32 on CPU")
    g.add_argument("--base-channels", type=int, default=64, metavar="N", help="plain U-Net width (default 64)")
    g.add_argument("--no-augment", action="store_true", help="train without augmentation")
    g.add_argument(
        "--inputs",
        default="elastogram",
        choices=["elastogram", "elastogram+magnitude"],
        help="network input: the paper's elastogram, or with the magnitude image as a second channel (dropped at random in training)",
    )
    g.add_argument("--init-from", default="", metavar="MODEL", help="start from this model file's weights where names and shapes match")
    g.add_argument(
        "--outputs",
        default=d.outputs,
        choices=["roi", "roi+liver"],
        help="roi, or roi+liver: also map the whole liver (manifest column 'liver') and keep the ROI inside it",
    )
    g.add_argument("--liver-weight", type=float, default=d.liver_weight, metavar="W", help=f"weight of the liver loss (default {d.liver_weight})")
    g.add_argument("--workers", type=int, default=d.workers, metavar="N", help=f"processes building batches ahead of the step (default {d.workers}; 0: none)")
    g.add_argument("--max-steps-per-epoch", type=int, default=0, metavar="N", help="cap optimizer steps per epoch (smoke tests)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars (logs one line per epoch)")


def _train_config(args):
    from .training.config import TrainConfig

    return TrainConfig(
        architecture=args.architecture,
        base_channels=args.base_channels,
        input_size=args.input_size,
        fit=args.fit,
        epochs=args.epochs,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        pos_weight=args.pos_weight,
        micro_batch=args.micro_batch,
        val_fraction=args.val_fraction,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        augment=not args.no_augment,
        max_steps_per_epoch=args.max_steps_per_epoch,
        inputs=args.inputs,
        init_from=args.init_from,
        outputs=args.outputs,
        liver_weight=args.liver_weight,
        workers=args.workers,
    )


def cmd_manifest(args) -> int:
    from .training.manifest import manifest_from_synthetic

    out = manifest_from_synthetic(args.cohort, args.out, args.cohort_name)
    log.info("manifest: %s", out)
    return 0


def cmd_train(args) -> int:
    from .training.manifest import read_manifest
    from .training.trainer import train

    rows = read_manifest(args.manifest)
    result = train(_train_config(args), rows, args.out, resume=args.resume, progress=not args.no_progress)
    log.info(
        "best validation Dice %.4f at epoch %d; model %s (validated precisions: %s); %.0f s",
        result.best_dice,
        result.best_epoch,
        result.model_path,
        ", ".join(result.validated_precisions),
        result.seconds,
    )
    return 0


def cmd_tune(args) -> int:
    from .training.manifest import read_manifest
    from .training.tune import tune

    if args.trials < 0:
        raise MREFibrosisError("--trials must be 0 or more.")
    best = tune(_train_config(args), read_manifest(args.manifest), args.out, args.trials, args.study_name, progress=not args.no_progress)
    log.info("best trial %d: validation Dice %.4f with %s -> %s", best["trial"], best["val_dice"], best["params"], Path(args.out) / "best_params.json")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluation.report import evaluate

    summary = evaluate(
        args.manifest,
        args.out,
        _segmenter(args),
        preset=args.preset,
        compare_with=args.compare_with,
        title=args.title,
        without_magnitude=args.without_magnitude,
    )
    log.info(
        "evaluated %d exams: Dice %.4f, Pearson r %s -> %s",
        summary["exams"],
        summary["dice_mean"],
        "n/a" if summary["pearson_r"] is None else f"{summary['pearson_r']:.4f}",
        Path(args.out) / "report.md",
    )
    return 0


def cmd_measure(args) -> int:
    from .pipeline import process_exam, write_results

    options = _read_options(args)
    if args.min_area <= 0:
        raise MREFibrosisError("--min-area must be positive.")
    if args.roi is None:
        return _measure_with_segmenter(args, options)
    if len(args.study) != 1:
        raise MREFibrosisError("--roi belongs to one exam: give a single STUDY folder with it.")
    result = process_exam(args.study[0], args.roi, options, args.preset, min_area_cm2=args.min_area)
    written = write_results(result, args.out, include_identifiers=args.include_identifiers, dicom=args.dicom)
    _log_result(result)
    log.info("wrote %s", ", ".join(str(p) for p in written))
    return 0


def _measure_with_segmenter(args, options) -> int:
    from .measure.fibrosis_stages import get_preset
    from .pipeline import process_many
    from .reading.exam_loader import find_exams

    preset = get_preset(args.preset)  # refuse a bad preset before loading the model
    loading = _segmenter_meanwhile(args)
    found = find_exams(args.study, options)
    seg = loading()
    failed = 0
    for outcome in process_many(args.study, args.out, options, preset, seg, args.min_area, args.include_identifiers, args.dicom, found=found):
        if outcome.error:
            failed += 1
            print(f"error: exam {outcome.exam_key}: {outcome.error}", file=sys.stderr)
            continue
        _log_result(outcome.result)
        log.info("exam %s: results in %s", outcome.exam_key, outcome.out_dir)
    return 2 if failed else 0


def _log_result(result) -> None:
    m = result.measurement
    log.info("%s", result.summary_line())
    for msg in m.messages:
        log.warning("exam %s: %s", result.exam.exam_key, msg)


def cmd_segment(args) -> int:
    from .pipeline import for_each_exam, segment_to_files
    from .reading.exam_loader import find_exams

    def progress(fraction: float, message: str) -> None:
        if args.progress:
            print(f"progress {fraction:.3f} {message}", flush=True)

    options = _read_options(args)
    progress(0.0, "finding the exam and loading the model")
    loading = _segmenter_meanwhile(args)
    exams = find_exams(args.study, options)
    progress(0.1, "loading the model")
    seg = loading()
    done = 0

    def segment_and_write(exam, target):
        progress(0.2 + 0.75 * done / len(exams), f"segmenting exam {done + 1} of {len(exams)}")
        return segment_to_files(exam, seg, target)

    failed = 0
    for outcome in for_each_exam(exams, args.out, options, segment_and_write):
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


def cmd_export_onnx(args) -> int:
    from .model.onnx_graph import export_onnx

    report = export_onnx(args.model, args.out, args.model_sha256)
    log.info(
        "wrote %s (%d kB, %d weights read from the model file) beside %s; ONNX Runtime vs torch fp32: max |logit difference| %.2g",
        report.graph_path,
        report.graph_bytes // 1000,
        report.external_tensors,
        report.model_path.name,
        report.max_abs_logit_difference,
    )
    return 0


def cmd_inspect(args) -> int:
    from .reading.inspect_report import inspect_report

    print("\n".join(printable(line, keep_spacing=True) for line in inspect_report(Path(args.study), _read_options(args)).splitlines()))
    return 0


def cmd_review(args) -> int:
    """The review page is a front end of its own (trame-slicer on the Slicer Lib), installed with the
    [review] extra; this command only checks the request and hands it over."""
    import importlib.util

    if importlib.util.find_spec("MREFibrosisReview") is None or importlib.util.find_spec("trame_slicer") is None:
        raise MREFibrosisError("the review page is not installed: pip install 'mrefibrosis[review]' (trame-slicer and slicer-core), then run this again.")
    from MREFibrosisReview.launch import make_request
    from MREFibrosisReview.serve import serve

    from .measure.fibrosis_stages import get_preset

    for name in ("trame", "trame_server", "trame_client", "trame_slicer", "wslink", "aiohttp"):
        logging.getLogger(name).setLevel(logging.WARNING)  # their INFO lines are protocol chatter
    request = make_request(args.study, host=args.host, port=args.port, token=args.token, out_dir=args.out, roi_file=args.roi)
    get_preset(args.preset)  # an unknown preset is refused before the page is built
    return serve(
        request, model=args.model, device=args.device, use_stored=not args.new_roi, study_key=args.study_key, preset=args.preset, margins=_margins(args)
    )


def cmd_presets(args) -> int:
    from .measure.fibrosis_stages import load_presets

    for name, p in load_presets().items():
        cuts = ", ".join(f"{b.stage} >= {b.min_kpa:g}" for b in p.bands[1:])
        print(f"{name} ({p.status}, {p.frequency_hz:g} Hz): {cuts}\n    {p.citation}")
    return 0


def cmd_synth(args) -> int:
    from .synth.cohort import generate_cohort, parse_failure, parse_stage_mix, preview_png

    if args.n < 1 or args.n > 100000:
        raise MREFibrosisError("--n must be between 1 and 100000.")
    mix = parse_stage_mix(args.stage_mix)
    failure = parse_failure(args.failure)
    out = Path(args.out)

    def progress(done, total):
        if done == total or done % max(1, total // 20) == 0:
            log.info("synth: %d/%d exams", done, total)

    truths = generate_cohort(out, args.n, args.seed, args.vendor, mix, args.workers, progress, failure)
    ok = sum(t["status"] == "ok" for t in truths)
    log.info("wrote %d exams to %s (%d ok, %d indeterminate)", len(truths), out, ok, len(truths) - ok)
    if args.preview:
        preview_png(Path(args.preview), args.seed, args.vendor)
        log.info("preview sheet: %s", args.preview)
    return 0


def cmd_worker(args) -> int:
    import signal
    import threading

    from .pacs.worker import PacsWorker, WorkerConfig

    worker = PacsWorker(WorkerConfig.load(args.config))
    if args.once:
        worker.poll()
        worker.run_due()
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        worker.run_forever(stop)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_batch(args) -> int:
    from .batch.run import run_batch

    if args.workers < 1:
        raise MREFibrosisError("--workers must be at least 1.")
    summary = run_batch(
        args.input,
        args.out,
        args.address,
        args.workers,
        args.gpus_per_worker,
        args.model,
        args.device,
        args.preset,
        runtime=args.runtime,
        margins=_margins(args),
    )
    log.info("batch: %(folders)d folders, %(scored)d scored, %(skipped)d skipped, %(failed)d failed in %(seconds).1f s -> %(csv)s", summary)
    return 0


def cmd_receiver(args) -> int:
    import signal
    import threading

    from .pacs.receiver import Receiver, ReceiverConfig

    receiver = Receiver(ReceiverConfig.load(args.config)).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    receiver.stop()
    return 0


def _printable_record(record: logging.LogRecord) -> bool:
    """Log lines carry file names and DICOM text: make each one printable before it is written.
    pydicom's own records (decoder tracebacks, value warnings quoting header text) are dropped here,
    at the handler: pydicom resets its logger's level when it is imported, which is now after this
    set-up (the reading stack is imported on first use)."""
    if record.name.split(".")[0] == "pydicom" and record.levelno < logging.CRITICAL:
        return False
    record.msg = printable(record.getMessage())
    record.args = None
    return True


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a C locale must not turn a non-ASCII series name into a crash
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_printable_record)
    # pydicom logs decoder tracebacks and value warnings, numpy and pydicom warn about odd values:
    # users get our one-line messages instead (--debug shows everything)
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    if not args.debug:
        warnings.simplefilter("ignore")
    handlers = {
        "measure": cmd_measure,
        "segment": cmd_segment,
        "inspect": cmd_inspect,
        "presets": cmd_presets,
        "review": cmd_review,
        "synth": cmd_synth,
        "worker": cmd_worker,
        "receiver": cmd_receiver,
        "batch": cmd_batch,
        "manifest": cmd_manifest,
        "train": cmd_train,
        "tune": cmd_tune,
        "evaluate": cmd_evaluate,
        "export-onnx": cmd_export_onnx,
    }
    try:
        return handlers[args.command](args)
    except MREFibrosisError as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; no output was written.", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line for users, the traceback with --debug
        if args.debug:
            traceback.print_exc()
        print(f"error: internal error ({type(exc).__name__}: {printable(exc)[:200]}); rerun with --debug and report it.", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
