"""The one core every front end calls: exam folder (+ ROI) in, measurement and files out.

The Slicer logic, the command line, the PACS worker and batch jobs all go through
``process_exam`` and ``write_results`` so they give identical numbers and identical files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import RoiError
from .measure.fibrosis_stages import Preset, get_preset
from .measure.qc import QcSettings
from .measure.roi_stats import MIN_AREA_CM2, measure_roi
from .model.identity import ModelIdentity
from .reading.exam import Exam
from .reading.exam_loader import ReadOptions, read_exam
from .results.exam_result import CSV_COLUMNS, ExamResult, Provenance, RoiKind, RoiSource, inputs_used
from .results.roi_files import read_roi, write_seg_nrrd
from .results.staged_files import staged_outputs

__all__ = ["CSV_COLUMNS", "ExamResult", "ExamSegmenter", "process_exam", "process_many", "write_results"]


@runtime_checkable
class ExamSegmenter(Protocol):
    """What the pipeline needs of a segmenter (`model.inference.Segmenter` is one): a segmentation
    with its ROI (and liver and TTA agreement when it has them), and who made it."""

    def segment(self, exam: Exam): ...

    def identity(self, exam: Exam | None = None) -> ModelIdentity: ...


# A plain function exam -> boolean ROI also serves (tests, benchmarks, site plug-ins).
RoiFunction = Callable[[Exam], np.ndarray]


def process_exam(
    study: str | os.PathLike | Exam,
    roi_path: str | os.PathLike | None = None,
    options: ReadOptions = ReadOptions(),
    preset: Preset | str | None = None,
    segmenter: ExamSegmenter | RoiFunction | None = None,
    min_area_cm2: float = MIN_AREA_CM2,
    qc: QcSettings = QcSettings(),
    roi_mask: np.ndarray | None = None,
    roi_name: str = "",
    model_output: ModelOutput | None = None,
) -> ExamResult:
    """Exam + ROI -> result. The ROI is, in this order: an edited mask (`roi_mask`, e.g. a Slicer
    segment named `roi_name`), an ROI file, or the segmenter's automatic ROI. `model_output` is
    what the segmenter said about this exam when it made the ROI that was then edited (its predicted
    liver, its TTA agreement): the liver-based checks then run on the edited ROI as they ran on the
    automatic one, so Segment-then-Compute in a front end answers what `measure` answers."""
    exam = study if isinstance(study, Exam) else read_exam(study, options)
    preset = preset if isinstance(preset, Preset) else get_preset(preset)
    liver = tta = model = contact = None
    if model_output is not None and (roi_mask is not None or roi_path is not None):
        liver, tta = model_output.liver, model_output.tta_agreement
    if roi_mask is not None:
        roi, source = np.asarray(roi_mask, dtype=bool), RoiSource(RoiKind.EDITED, roi_name)
    elif roi_path is not None:
        roi, source = read_roi(roi_path, exam.geometry), RoiSource(RoiKind.FILE, Path(roi_path).name)
    elif isinstance(segmenter, ExamSegmenter):
        seg = segmenter.segment(exam)
        roi, liver, tta, contact = seg.roi, seg.liver, seg.tta_agreement, getattr(seg, "driver_contact", None)
        if contact is not None and np.shape(contact) != exam.valid.shape:  # a plug-in's: found again
            contact = None
        model, source = segmenter.identity(exam), RoiSource(RoiKind.AUTOMATIC)
    elif segmenter is not None:
        roi, source = np.asarray(segmenter(exam), dtype=bool), RoiSource(RoiKind.AUTOMATIC)
    else:
        raise RoiError("no ROI given and no segmentation model is available yet; pass --roi ROI_FILE (.seg.nrrd, .nrrd, .nii.gz or DICOM SEG).")
    measurement = measure_roi(exam, roi, preset, min_area_cm2, qc, liver=liver, tta_agreement=tta, driver_contact=contact)
    return ExamResult(exam, roi, measurement, Provenance(source, inputs_used(exam, model), model), liver)


@dataclass
class ExamOutcome:
    """One exam of a multi-exam run: its key, where its files went, and the result or the error."""

    exam_key: str
    out_dir: Path
    result: object | None  # an ExamResult for measure runs
    error: str | None


def for_each_exam(exams: list, out_dir: str | os.PathLike, options: ReadOptions, work: Callable, first: Callable[[], Exam] | None = None):
    """Run work(exam, target folder) for every (study UID, series) found; yields an outcome per exam.

    One exam writes into out_dir itself; several write into out_dir/<exam key>/ (a hash, never a
    DICOM value). A failing exam is reported and the run goes on; a single failing exam raises.
    `first` gives the first exam already built (`exam_built_early`), or raises its error in its turn.
    """
    from .errors import MREFibrosisError
    from .reading.exam import exam_key_for
    from .reading.exam_loader import build_exam

    for n, (study_uid, series) in enumerate(exams):
        key = exam_key_for(study_uid)
        target = Path(out_dir) if len(exams) == 1 else Path(out_dir) / key
        try:
            exam = first() if n == 0 and first is not None else build_exam(study_uid, series, options)
            yield ExamOutcome(key, target, work(exam, target), None)
        except MREFibrosisError as exc:
            if len(exams) == 1:
                raise
            yield ExamOutcome(key, target, None, str(exc))


def exam_built_early(exams: list, options: ReadOptions) -> Callable[[], Exam] | None:
    """The first of `find_exams`'s exams built now, for `for_each_exam(first=)`. Why: a command
    line's model loads on a thread (`cli.options.segmenter_meanwhile`) and was waited for before the
    first exam was read; reading it meanwhile takes the wait (0.03-0.08 s here) off a cold `measure`.
    A failure is kept and raised in the exam's turn, after a model error, as when built there."""
    if not exams:
        return None
    from .errors import MREFibrosisError
    from .reading.exam_loader import build_exam

    held: list = []
    try:
        held.append(build_exam(*exams[0], options))
    except MREFibrosisError as exc:
        held.append(exc.with_traceback(None))  # its frames would keep the half-read exam's arrays

    def take() -> Exam:  # once: the run does not keep the first exam to its end
        found = held.pop()
        if isinstance(found, MREFibrosisError):
            raise found
        return found

    return take


def process_many(
    paths: list,
    out_dir: str | os.PathLike,
    options: ReadOptions = ReadOptions(),
    preset: Preset | str | None = None,
    segmenter: ExamSegmenter | RoiFunction | None = None,
    min_area_cm2: float = MIN_AREA_CM2,
    include_identifiers: bool = False,
    dicom: bool = False,
    found: list | None = None,
    first: Callable[[], Exam] | None = None,
):
    """Measure every exam below `paths` (or the exams `find_exams` already found there) with one
    loaded segmenter; yields an outcome per exam. `first`: as in `for_each_exam`."""
    from .reading.exam_loader import find_exams

    preset = preset if isinstance(preset, Preset) else get_preset(preset)

    def measure_and_write(exam: Exam, target: Path) -> ExamResult:
        result = process_exam(exam, None, options, preset, segmenter, min_area_cm2)
        write_results(result, target, include_identifiers, dicom)
        return result

    yield from for_each_exam(found if found is not None else find_exams(paths, options), out_dir, options, measure_and_write, first)


@dataclass(frozen=True)
class ModelOutput:
    """What a segmenter said about an exam beyond its ROI: the predicted liver (liver-aware models)
    and the TTA agreement. Kept by front ends whose ROI is then edited (`process_exam`)."""

    liver: np.ndarray | None
    tta_agreement: float | None

    @staticmethod
    def of(segmentation) -> ModelOutput:
        return ModelOutput(segmentation.liver, segmentation.tta_agreement)

    @staticmethod
    def from_files(folder: str | os.PathLike, geometry) -> ModelOutput:
        """What `segment_to_files` wrote beside the ROI (liver.seg.nrrd, segmentation.json)."""
        folder = Path(folder)
        liver_file = folder / LIVER_FILE
        info = json.loads((folder / "segmentation.json").read_text()) if (folder / "segmentation.json").exists() else {}
        liver = read_roi(liver_file, geometry) if liver_file.exists() else None
        return ModelOutput(liver, info.get("tta_agreement"))


LIVER_FILE = "liver.seg.nrrd"


def segment_to_files(exam: Exam, segmenter, target: str | os.PathLike, cancelled: Callable[[], bool] | None = None) -> dict:
    """roi.seg.nrrd, the predicted liver (liver.seg.nrrd, liver-aware models) and segmentation.json
    of one exam, all or nothing: what `mrefibrosis segment` writes and what the Slicer module
    imports from its child process. A cancel (the `cancelled` callable) writes nothing."""
    from .model.runtime_errors import SegmentationCancelled

    s = segmenter.segment(exam, cancelled) if cancelled is not None else segmenter.segment(exam)
    if cancelled is not None and cancelled():
        raise SegmentationCancelled("segmentation cancelled")
    area = float(s.roi.sum() * exam.geometry.pixel_area_mm2 / 100.0)
    info = {"exam_key": exam.exam_key, "roi_area_cm2": area, "tta_agreement": s.tta_agreement, "seconds": round(s.seconds, 3), "model": segmenter.describe()}
    with staged_outputs(target) as out:
        write_seg_nrrd(out.path("roi.seg.nrrd"), s.roi, exam.geometry)
        if s.liver is not None:
            write_seg_nrrd(out.path(LIVER_FILE), s.liver, exam.geometry, color=(0.6, 0.3, 0.2), segment=("mre_predicted_liver", "predicted liver"))
        out.path("segmentation.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def write_results(
    result: ExamResult, out_dir: str | os.PathLike, include_identifiers: bool = False, dicom: bool = False, reader: str | None = None
) -> list[Path]:
    """measurements.csv, result.json and roi.seg.nrrd; with dicom, also dicom/SEG.dcm, dicom/SR.dcm
    and dicom/OVERLAY_NNN.dcm (built before anything is written). All are staged first, then moved
    into place as one set that `result-set.json`, written last, vouches for (`results.result_set`):
    a writer killed half-way leaves a folder that says it holds no complete set."""
    import shutil
    import tempfile

    from .errors import OutputError
    from .results.dicom_result_files import remove_dicom_results
    from .results.result_set import PARTIAL_PREFIX, publish, remove_stale_partials, write_manifest

    built = None
    if dicom:
        from .results.dicom_results import build_dicom_results

        built = build_dicom_results(result, reader=reader)
    payload = result.to_json(include_identifiers)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(out)
        staging = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=out))
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out} ({exc.strerror or exc}); choose a writable --out.") from None
    try:
        with open(staging / "measurements.csv", "w", encoding="utf-8", newline="") as fh:
            fh.write(result.csv_text())
        with open(staging / "result.json", "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2, allow_nan=False)
            fh.write("\n")
        write_seg_nrrd(staging / "roi.seg.nrrd", result.roi, result.exam.geometry)
        names = ["measurements.csv", "result.json", "roi.seg.nrrd"]
        if built is not None:
            from .results.dicom_results import save_dicom_results

            names += [f"dicom/{p.name}" for p in save_dicom_results(built, staging / "dicom")]
        placed, manifest = publish(staging, out, names)
        # an earlier run's objects that this one did not replace would describe another ROI
        remove_dicom_results(out / "dicom", keep=frozenset(Path(n).name for n in names if n.startswith("dicom/")))
        write_manifest(out, manifest)
    except OSError as exc:
        raise OutputError(f"cannot write the results into {out} ({exc.strerror or exc}); choose a writable --out.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return placed
