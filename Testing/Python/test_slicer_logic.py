"""The Slicer module's logic on real MRML (slicer-core): Load, Segment, edit, Compute, Export."""

import csv
import json

import numpy as np
import pytest
import slicer

from mrefibrosis.cli import main as cli_main
from mrefibrosis.model.segmenter_settings import SegmenterSettings
from mrefibrosis.reading.exam_loader import read_exam
from MREFibrosisLib import MREFibrosisLogic
from MREFibrosisLib.exam_nodes import CONFIDENT, LPS_TO_RAS, numpy_matrix
from MREFibrosisLib.segment_nodes import find_roi_segment, segment_mask
from MREFibrosisLib.table_nodes import table_value


@pytest.fixture()
def tiny(tiny_model):
    return tiny_model


def _loaded(scene, exam_dir):
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, exam_dir / "dicom")
    return logic, nodes


def test_load_exam_creates_kpa_and_validity_volumes(scene, tiny):
    exam_dir = tiny[1][0]
    logic, nodes = _loaded(scene, exam_dir)
    exam = read_exam(exam_dir / "dicom")
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(nodes.stiffness), exam.stiffness_kpa)
    v = slicer.util.arrayFromVolume(nodes.validity)
    np.testing.assert_array_equal(v == CONFIDENT, exam.confidence_valid)
    np.testing.assert_array_equal(v > 0, exam.valid)
    import vtk

    m = vtk.vtkMatrix4x4()
    nodes.stiffness.GetIJKToRASMatrix(m)
    np.testing.assert_allclose(numpy_matrix(m), LPS_TO_RAS @ exam.geometry.ijk_to_lps(), atol=1e-6)
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    assert sh.GetItemParent(sh.GetItemByDataNode(nodes.stiffness)) == nodes.study_item


def test_radiologist_flow_segment_in_background_edit_compute_export(scene, tiny, tmp_path):
    """Load, Segment (child process, as the panel runs it), erase part of the ROI as Segment Editor
    would, Compute, Export; the exported numbers checked against numpy on the edited mask, with
    the kPa read by the engine from the DICOM files and the ROI read back from the exported file."""
    import nrrd

    model, exams = tiny
    logic, nodes = _loaded(scene, exams[0])
    job = logic.start_segment(nodes.stiffness, SegmenterSettings(model=model, device="cpu"), work_dir=tmp_path / "job")
    update = job.runner.wait(300)
    assert update.state.value == "succeeded", job.runner.output[-5:]
    assert update.progress == 1.0 and any(line.startswith("progress ") for line in job.runner.output)
    seg = logic.finish_segment(scene, job)
    sid = find_roi_segment(seg)
    mask = segment_mask(seg, sid, nodes.stiffness)
    assert mask.shape == slicer.util.arrayFromVolume(nodes.stiffness).shape and mask.sum() > 0

    # the radiologist erases the upper half of every slice with Slicer's segment array helpers
    edited = mask.copy()
    edited[:, : edited.shape[1] // 2, :] = False
    if not edited.any():
        edited = mask.copy()
        edited[:, :, : edited.shape[2] // 2] = False
    slicer.util.updateSegmentBinaryLabelmapFromArray(edited.astype(np.uint8), seg, sid, nodes.stiffness)
    result, table = logic.compute(scene, nodes.stiffness, seg)
    kpa = slicer.util.arrayFromVolume(nodes.stiffness)
    valid = slicer.util.arrayFromVolume(nodes.validity) > 0
    expected = kpa[edited & valid].astype(np.float64).mean()
    assert result.measurement.status == "ok"
    assert result.measurement.mean_kpa == pytest.approx(expected, rel=1e-9)
    assert result.measurement.pooled.pixels == (edited & valid).sum()

    # renaming the segment changes nothing
    seg.GetSegmentation().GetSegment(sid).SetName("my liver")
    again, _ = logic.compute(scene, nodes.stiffness, seg, table_node=table)
    assert again.measurement.mean_kpa == result.measurement.mean_kpa

    # the table: per-slice rows and an exam row, kPa units in the column metadata
    last = table.GetNumberOfRows() - 1
    assert table_value(table, last, "slice") == "all"
    assert table_value(table, last, "mean_kpa") == pytest.approx(expected)
    assert table.GetColumnUnitLabel("mean_kpa") == "kPa" and table.GetColumnUnitLabel("roi_area_cm2") == "cm2"

    # Export writes the CLI's files for this exam
    outcome = logic.export(tmp_path / "export", nodes.stiffness)
    assert sorted(p.name for p in outcome.written) == ["measurements.csv", "result.json", "roi.seg.nrrd"] and outcome.note == ""
    rows = list(csv.DictReader((tmp_path / "export" / "measurements.csv").open()))
    assert list(rows[0])[:7] == ["exam_key", "slice", "slice_location_mm", "roi_pixels", "roi_area_cm2", "mean_kpa", "median_kpa"]

    # independent check: the exported ROI file and the engine's reading of the DICOM files
    exam = read_exam(exams[0] / "dicom")
    roi_arr, header = nrrd.read(str(tmp_path / "export" / "roi.seg.nrrd"))
    assert roi_arr.ndim == 3 and int(roi_arr.sum()) == int(edited.sum())
    exam_valid = exam.valid  # the reader keeps every valid pixel of the ROI; outside-confidence ones are flagged
    truth_mean = float(exam.stiffness_kpa[edited & exam_valid].astype(np.float64).mean())
    assert float(rows[-1]["mean_kpa"]) == pytest.approx(truth_mean, abs=5e-4)
    per_slice = [r for r in rows if r["slice"] != "all"]
    for r in per_slice:
        k = int(r["slice"])
        sel = edited[k] & exam_valid[k]
        assert int(r["roi_pixels"]) == int(sel.sum())
        if sel.any() and r["mean_kpa"]:
            assert float(r["mean_kpa"]) == pytest.approx(float(exam.stiffness_kpa[k][sel].mean()), abs=5e-4)

    # the exported ROI measured by the CLI gives the same number
    assert cli_main(["-q", "measure", str(exams[0] / "dicom"), "--out", str(tmp_path / "cli"), "--roi", str(tmp_path / "export" / "roi.seg.nrrd")]) == 0
    cli = json.loads((tmp_path / "cli" / "result.json").read_text())
    exported = json.loads((tmp_path / "export" / "result.json").read_text())
    assert cli["mean_kpa"] == pytest.approx(exported["mean_kpa"], rel=1e-6)
    assert set(cli) == set(exported)


def test_no_valid_area_is_indeterminate(scene, tiny):
    """An ROI drawn only on invalid pixels; and the validity labelmap edited in the scene changes
    nothing: Compute measures the exam's own validity, as the engine read it."""
    logic, nodes = _loaded(scene, tiny[1][1])
    seg = logic.import_roi_file(scene, nodes.stiffness, tiny[1][1] / "roi.seg.nrrd")
    before, _ = logic.compute(scene, nodes.stiffness, seg)
    slicer.util.updateVolumeFromArray(nodes.validity, np.zeros(slicer.util.arrayFromVolume(nodes.validity).shape, np.uint8))
    after, _ = logic.compute(scene, nodes.stiffness, seg)
    assert before.measurement.status == "ok" and after.measurement.mean_kpa == before.measurement.mean_kpa
    outside = ~logic.exam_for(nodes.stiffness).valid
    seg = logic.set_roi(scene, nodes.stiffness, outside)
    result, table = logic.compute(scene, nodes.stiffness, seg)
    assert result.measurement.status == "indeterminate" and result.measurement.stage is None
    assert table_value(table, table.GetNumberOfRows() - 1, "mean_kpa") is None


def test_ground_truth_roi_file_imports_aligned(scene, tiny, tmp_path):
    exam_dir = tiny[1][0]
    logic, nodes = _loaded(scene, exam_dir)
    seg = logic.import_roi_file(scene, nodes.stiffness, exam_dir / "roi.seg.nrrd")
    result, _ = logic.compute(scene, nodes.stiffness, seg)
    truth = json.loads((exam_dir / "truth.json").read_text())
    assert result.measurement.mean_kpa == pytest.approx(truth["reader_kpa"], rel=1e-6)
    outcome = logic.export(tmp_path / "exp", nodes.stiffness, dicom=True)
    assert {"SEG.dcm", "SR.dcm"} <= {p.name for p in outcome.written} and outcome.note == ""


def test_compute_in_slicer_runs_the_clis_quality_control(scene, tmp_path):
    """An iron-overload exam (liver dark on the magnitude images): Compute on the scene's volumes must
    be indeterminate for the same reason as `measure --roi`, so the magnitude and wave volumes
    travel with the exam into Slicer; a normal exam of the same seed still gives a number."""
    from mrefibrosis.synth.export import GE_SETTINGS, write_exam
    from mrefibrosis.synth.simulate import simulate_exam

    verdicts = {}
    for failure in (None, "iron_overload"):
        folder = tmp_path / str(failure)
        write_exam(folder, simulate_exam(21, GE_SETTINGS, n_slices=2, failure=failure, liver_kpa=2.4, snr=25), "ge", f"lib-qc-{failure}")
        logic, nodes = _loaded(scene, folder)
        assert nodes.magnitude is not None and nodes.stiffness.GetNodeReference("MREFibrosis.waves") is not None
        seg = logic.import_roi_file(scene, nodes.stiffness, folder / "liver.seg.nrrd")
        result, _ = logic.compute(scene, nodes.stiffness, seg)
        assert cli_main(["-q", "measure", str(folder / "dicom"), "--out", str(tmp_path / f"cli-{failure}"), "--roi", str(folder / "liver.seg.nrrd")]) == 0
        cli = json.loads((tmp_path / f"cli-{failure}" / "result.json").read_text())
        assert (result.status_text, result.measurement.mean_kpa) == (cli["status_detail"], cli["mean_kpa"])
        verdicts[failure] = result.status_text
    assert verdicts[None] == "ok" or verdicts[None].startswith("ok with warnings")
    assert verdicts["iron_overload"].startswith("indeterminate") and "dark on the magnitude images" in verdicts["iron_overload"]
