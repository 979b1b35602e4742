"""The one core every front end calls: exam folder (+ ROI) in, measurement and files out.

The Slicer logic, the command line, the PACS worker and batch jobs all go through
``process_exam`` and ``write_results`` so they give identical numbers and identical files.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import RoiError
from .exam import Exam
from .exam_reader import ReadOptions, read_exam
from .measure import MIN_AREA_CM2, Measurement, measure_roi
from .outputs import staged_outputs
from .roi_io import read_roi, write_seg_nrrd
from .staging import Preset, get_preset

# A segmenter maps an exam to a boolean ROI on its grid; the model issue plugs one in here.
Segmenter = Callable[[Exam], np.ndarray]

CSV_COLUMNS = [
    "exam_key", "slice", "slice_location_mm", "roi_pixels", "roi_area_cm2", "mean_kpa", "median_kpa", "sd_kpa",
    "p5_kpa", "p25_kpa", "p75_kpa", "p95_kpa", "iqr_kpa", "outside_confidence_pixels", "status", "stage", "preset",
]


@dataclass
class ExamResult:
    exam: Exam
    roi: np.ndarray
    roi_source: str
    measurement: Measurement


def process_exam(
    study: str | os.PathLike | Exam,
    roi_path: str | os.PathLike | None = None,
    options: ReadOptions = ReadOptions(),
    preset: Preset | str | None = None,
    segmenter: Segmenter | None = None,
    min_area_cm2: float = MIN_AREA_CM2,
) -> ExamResult:
    exam = study if isinstance(study, Exam) else read_exam(study, options)
    preset = preset if isinstance(preset, Preset) else get_preset(preset)
    if roi_path is not None:
        roi = read_roi(roi_path, exam.geometry)
        source = Path(roi_path).name
    elif segmenter is not None:
        roi = np.asarray(segmenter(exam), dtype=bool)
        source = "automatic segmentation"
        describe = getattr(segmenter, "describe", None)
        seg_info = describe() if callable(describe) else {}
    else:
        raise RoiError("no ROI given and no segmentation model is available yet; pass --roi ROI_FILE (.seg.nrrd, .nrrd, .nii.gz or DICOM SEG).")
    measurement = measure_roi(exam, roi, preset, min_area_cm2)
    measurement.exam["roi_source"] = source
    if roi_path is None and segmenter is not None:
        measurement.exam["segmentation"] = seg_info
    return ExamResult(exam, roi, source, measurement)


@dataclass
class ExamOutcome:
    """One exam of a multi-exam run: its key, where its files went, and the result or the error."""

    exam_key: str
    out_dir: Path
    result: object | None  # an ExamResult for measure runs
    error: str | None


def for_each_exam(exams: list, out_dir: str | os.PathLike, options: ReadOptions, work: Callable):
    """Run work(exam, target folder) for every (study UID, series) found; yields an outcome per exam.

    One exam writes into out_dir itself; several write into out_dir/<exam key>/ (a hash, never a
    DICOM value). A failing exam is reported and the run goes on; a single failing exam raises.
    """
    from .errors import MREFibrosisError
    from .exam import exam_key_for
    from .exam_reader import build_exam

    for study_uid, series in exams:
        key = exam_key_for(study_uid)
        target = Path(out_dir) if len(exams) == 1 else Path(out_dir) / key
        try:
            yield ExamOutcome(key, target, work(build_exam(study_uid, series, options), target), None)
        except MREFibrosisError as exc:
            if len(exams) == 1:
                raise
            yield ExamOutcome(key, target, None, str(exc))


def process_many(
    paths: list,
    out_dir: str | os.PathLike,
    options: ReadOptions = ReadOptions(),
    preset: Preset | str | None = None,
    segmenter: Segmenter | None = None,
    min_area_cm2: float = MIN_AREA_CM2,
    include_identifiers: bool = False,
    dicom: bool = False,
):
    """Measure every exam below `paths` with one loaded segmenter; yields an outcome per exam."""
    from .exam_reader import find_exams

    preset = preset if isinstance(preset, Preset) else get_preset(preset)

    def measure_and_write(exam: Exam, target: Path) -> ExamResult:
        result = process_exam(exam, None, options, preset, segmenter, min_area_cm2)
        write_results(result, target, include_identifiers, dicom)
        return result

    yield from for_each_exam(find_exams(paths, options), out_dir, options, measure_and_write)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def measurements_csv(result: ExamResult) -> str:
    m = result.measurement
    ok = m.status == "ok"
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def row(slice_id, location, stats, outside, stage):
        values = [stats.mean_kpa, stats.median_kpa, stats.sd_kpa, stats.p5_kpa, stats.p25_kpa, stats.p75_kpa, stats.p95_kpa, stats.iqr_kpa]
        values = values if ok else [None] * len(values)
        writer.writerow(
            [result.exam.exam_key, slice_id, _fmt(location), stats.pixels, _fmt(stats.area_cm2), *map(_fmt, values), outside, m.status, _fmt(stage), m.preset if stage is not None or slice_id == "all" else ""]
        )

    for s in m.slices:
        row(s.slice, s.slice_location_mm, s.stats, s.outside_confidence_pixels, None)
    row("all", None, m.pooled, sum(s.outside_confidence_pixels for s in m.slices), m.stage)
    return buf.getvalue()


def write_results(result: ExamResult, out_dir: str | os.PathLike, include_identifiers: bool = False, dicom: bool = False) -> list[Path]:
    """measurements.csv, result.json and roi.seg.nrrd, all or nothing; with dicom, also
    dicom/SEG.dcm, dicom/SR.dcm and dicom/OVERLAY_NNN.dcm (built before anything is written)."""
    built = None
    if dicom:
        from .dicom_out.build import build_dicom_results

        built = build_dicom_results(result)
    payload = result.measurement.to_json()
    if not include_identifiers:
        payload.pop("identifiers", None)
    with staged_outputs(out_dir) as out:
        with open(out.path("measurements.csv"), "w", encoding="utf-8", newline="") as fh:
            fh.write(measurements_csv(result))
        with open(out.path("result.json"), "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
        write_seg_nrrd(out.path("roi.seg.nrrd"), result.roi, result.exam.geometry)
        names = list(out.names)
    written = [Path(out_dir) / n for n in names]
    if built is not None:
        from .dicom_out.build import save_dicom_results

        written += save_dicom_results(built, Path(out_dir) / "dicom")
    return written
