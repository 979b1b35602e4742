"""One result, every front end: the CSV, result.json, the Slicer table (real MRML), the DICOM SR and
overlay, the batch row and the log line all show the same status, reason, warnings and numbers,
because they all render the one `ExamResult`."""

import csv
import io

import numpy as np
import pytest
import slicer

from mrefibrosis.measure.status import Status
from mrefibrosis.pipeline import process_exam
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.dicom_results import _overlay_text, build_dicom_results
from mrefibrosis.results.roi_files import read_roi
from MREFibrosisLib.table_nodes import fill_table, table_value


@pytest.fixture(scope="module")
def exam_dir(simulated_ge_exam):
    return simulated_ge_exam


def _results(exam_dir):
    """ok, ok with a warning, and indeterminate with a reason, all from one exam."""
    exam = read_exam(exam_dir / "dicom")
    roi = read_roi(exam_dir / "roi.seg.nrrd", exam.geometry)
    ok = process_exam(exam, exam_dir / "roi.seg.nrrd")
    low = exam.valid & ~exam.confidence_valid
    warned = process_exam(exam, roi_mask=roi | low, roi_name="Segment_1")  # a reader who painted over low confidence
    dark = read_exam(exam_dir / "dicom")
    dark.magnitude = np.where(roi, dark.magnitude * 0.05, dark.magnitude)  # iron-overload-like liver signal
    indeterminate = process_exam(dark, exam_dir / "roi.seg.nrrd")
    return {"ok": ok, "warned": warned, "indeterminate": indeterminate}


def _sr_text(result) -> str:
    return str(build_dicom_results(result).sr)


def _table(result):
    scene = slicer.vtkMRMLScene()
    node = scene.AddNewNodeByClass("vtkMRMLTableNode")
    fill_table(node, result)
    last = node.GetNumberOfRows() - 1
    return {c: table_value(node, last, c) for c in ("slice", "status", "status_detail", "mean_kpa", "stage")}


@pytest.mark.parametrize("case", ["ok", "warned", "indeterminate"])
def test_every_front_end_shows_the_same_verdict(exam_dir, case):
    result = _results(exam_dir)[case]
    expected_status = Status.INDETERMINATE if case == "indeterminate" else Status.OK
    assert result.status is expected_status
    text = result.status_text
    if case == "ok":
        assert text == "ok" and not result.warnings
    elif case == "warned":
        assert text.startswith("ok with warnings: ") and "roi_outside_confidence" in result.warnings
    else:
        assert result.reason and "dark on the magnitude images" in result.reason and text == f"indeterminate: {result.reason}"

    rows = list(csv.DictReader(io.StringIO(result.csv_text())))
    exam_row = rows[-1]
    payload = result.to_json()
    table = _table(result)
    batch = result.batch_fields()
    assert exam_row["slice"] == table["slice"] == "all"
    assert exam_row["status"] == payload["status"] == table["status"] == batch["status"] == str(expected_status)
    assert exam_row["status_detail"] == payload["status_detail"] == table["status_detail"] == batch["status_detail"] == text
    assert payload["warnings"] == result.warnings and payload["status_reason"] == result.reason
    assert text in result.summary_line()

    sr = _sr_text(result)
    overlay = " ".join(_overlay_text(result))
    if expected_status is Status.OK:
        kpa = result.measurement.mean_kpa
        assert float(exam_row["mean_kpa"]) == pytest.approx(kpa, abs=1e-4)
        assert payload["mean_kpa"] == kpa and table["mean_kpa"] == pytest.approx(kpa) and batch["mean_kpa"] == kpa
        assert exam_row["stage"] == payload["stage"] == table["stage"] == batch["stage"]
        assert f"{kpa:.2f} kPa" in overlay and "Elasticity" in sr
        for flag in result.warnings:
            assert flag.upper()[:16] in sr
    else:
        assert exam_row["mean_kpa"] == "" and payload["mean_kpa"] is None and table["mean_kpa"] is None and batch["mean_kpa"] is None
        assert "INDETERMINATE" in sr and result.reason[:64] in sr and "Elasticity" not in sr
        assert result.reason[:60] in overlay


def test_provenance_names_the_roi_source_and_inputs(exam_dir):
    results = _results(exam_dir)
    p = results["ok"].to_json()["provenance"]
    assert p["roi_source"] == {"kind": "file", "name": "roi.seg.nrrd"} and p["model"] is None
    assert p["inputs_used"] == ["elastogram", "confidence", "magnitude"]
    edited = results["warned"].to_json()
    assert edited["provenance"]["roi_source"] == {"kind": "edited", "name": "Segment_1"}
    assert edited["exam"]["roi_source"] == "Slicer segment Segment_1"


def test_a_number_built_on_part_of_the_exam_says_so_everywhere(exam_dir):
    """An ROI that leaves slices out, one of them because its offsets moved (breath-hold mismatch):
    every rendering says "measured on k of n slices" and why (#30)."""
    exam = read_exam(exam_dir / "dicom")
    roi = read_roi(exam_dir / "roi.seg.nrrd", exam.geometry)
    drawn = np.flatnonzero(roi.any(axis=(1, 2)))
    assert drawn.size >= 2
    moved = int(drawn[0])
    exam.offset_shift_mm = np.zeros(exam.n_slices, np.float32)
    exam.offset_shift_mm[moved] = 9.0  # that slice's offsets lie 9 mm apart
    partial = roi.copy()
    partial[moved] = False  # the reader leaves it out, as the automatic ROI does
    result = process_exam(exam, roi_mask=partial, roi_name="Segment_1")
    k, n = int(partial.any(axis=(1, 2)).sum()), exam.n_slices
    coverage = f"measured on {k} of {n} slices; slice {moved} left out: the anatomy moved between their phase offsets (breath-hold mismatch)"
    assert result.status is Status.OK and coverage in result.status_text
    rows = list(csv.DictReader(io.StringIO(result.csv_text())))
    payload = result.to_json()
    assert coverage in rows[-1]["status_detail"] and coverage in payload["status_detail"] and coverage in result.summary_line()
    assert payload["coverage"] == {"slices_measured": k, "slices_total": n, "slices_left_out": {str(moved): result.measurement.slices_left_out[moved]}}
    assert coverage in _table(result)["status_detail"]
    assert f"{k} of {n} slices" in " ".join(_overlay_text(result))
    sr = _sr_text(result)
    assert "Number of slices measured" in sr and "Number of slices in the exam" in sr
