"""Results, ROIs and background jobs stay with the exam they were made for; volumes whose unit the
engine did not decide are refused or read again by the engine (real MRML, real DICOM files)."""

import json
import sys

import numpy as np
import pydicom
import pytest
import slicer
from fixtures import make_ge_exam
from slicer_helpers import FolderDicomDatabase

from mrefibrosis.model.segmenter_settings import SegmenterSettings
from mrefibrosis.reading.exam_loader import read_exam
from MREFibrosisLib import MREFibrosisLogic
from MREFibrosisLib.exam_identity import ExamMismatchError, NotEngineVolumeError, identity_of
from MREFibrosisLib.exam_nodes import LPS_TO_RAS, _vtk_matrix
from MREFibrosisLib.segment_nodes import find_roi_segment, segment_mask, set_roi_segment


def _roi_node(logic, scene, stiffness, mask):
    node = logic.segmentation_for(scene, stiffness)
    exam_ijk_to_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ _ras_matrix(stiffness)
    set_roi_segment(node, mask, exam_ijk_to_lps, stiffness)
    return node


def _ras_matrix(node):
    import vtk

    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def _liver_core(fixture):
    """The fixture's high-confidence liver patch on every slice, as (slices, rows, columns)."""
    confident = fixture.confidence >= 950
    return confident & fixture.liver[None]


def _expected_kpa(fixture, mask):
    stored = fixture.stiffness_pa.astype(np.float64)
    usable = mask & (stored > 0) & (stored != 32766)
    return stored[usable].mean() / 1000.0


@pytest.fixture()
def two_exams(tmp_path):
    return make_ge_exam(tmp_path / "a", seed=1, study_key="a"), make_ge_exam(tmp_path / "b", seed=2, study_key="b")


def test_dicom_browser_volume_is_refused_then_read_by_the_engine(scene, ge_exam, tmp_path):
    """A GE stiffness volume as Slicer's DICOM browser loads it holds Pa: refused as it is (it was
    measured as '2156 kPa' before), read again from the database it gives the fixture's kPa."""
    exam = read_exam(ge_exam.path)
    browser = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "6: Stiffness")
    browser.SetIJKToRASMatrix(_vtk_matrix(LPS_TO_RAS @ exam.geometry.ijk_to_lps()))
    slicer.util.updateVolumeFromArray(browser, ge_exam.stiffness_pa.astype(np.float32))
    browser.SetAttribute("DICOM.instanceUIDs", " ".join(str(h.SOPInstanceUID) for h in exam.source_headers))
    logic = MREFibrosisLogic()
    seg = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    with pytest.raises(NotEngineVolumeError, match="unit is unknown"):
        logic.compute(scene, browser, seg)
    with pytest.raises(NotEngineVolumeError):
        logic.start_segment(browser)

    nodes = logic.load_from_dicom_database(scene, browser, FolderDicomDatabase(ge_exam.path), staging_root=tmp_path / "staged")
    assert "Pa" in nodes.note and nodes.stiffness.GetID() != browser.GetID()
    core = _liver_core(ge_exam)
    roi = _roi_node(logic, scene, nodes.stiffness, core)
    result, _ = logic.compute(scene, nodes.stiffness, roi)
    assert result.measurement.mean_kpa == pytest.approx(_expected_kpa(ge_exam, core), rel=1e-6)
    assert 1.5 < result.measurement.mean_kpa < 3.5


def test_only_the_mre_acquisition_of_a_database_study_is_staged(scene, tmp_path):
    """A study from the PACS holds other series (here 40 T2 images on another grid): staging every
    series of the study made the engine read all of them (an 872-file study timed out in Slicer)."""
    fx = make_ge_exam(tmp_path / "study", seed=41)
    mre_files = sorted(p for p in fx.path.rglob("*") if p.is_file())
    exam = read_exam(fx.path)
    template = pydicom.dcmread(mre_files[0])
    t2 = fx.path / "t2"
    t2.mkdir()
    uid = pydicom.uid.generate_uid()
    for n in range(40):
        ds = template.copy()
        ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.SeriesNumber, ds.SeriesDescription = uid, pydicom.uid.generate_uid(), 3, "T2 HASTE"
        ds.FrameOfReferenceUID = pydicom.uid.generate_uid()
        ds.ImageType, ds.ImageComments = ["ORIGINAL", "PRIMARY", "M", "ND"], ""
        ds.ImagePositionPatient = [0.0, 0.0, 6.0 * n]
        ds.Rows = ds.Columns = 128
        ds.PixelData = np.zeros((128, 128), np.int16).tobytes()
        ds.save_as(t2 / f"{n:03d}.dcm")
    browser = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "Stiffness (DICOM browser)")
    slicer.util.updateVolumeFromArray(browser, fx.stiffness_pa.astype(np.float32))
    browser.SetAttribute("DICOM.instanceUIDs", " ".join(str(h.SOPInstanceUID) for h in exam.source_headers))
    logic = MREFibrosisLogic()
    staged = tmp_path / "staged"
    nodes = logic.load_from_dicom_database(scene, browser, FolderDicomDatabase(fx.path), staging_root=staged)
    (folder,) = [p for p in staged.iterdir() if p.is_dir()]
    assert len(list(folder.iterdir())) == len(mre_files)  # stiffness, confidence, waves, raw: not the T2 series
    assert nodes.magnitude is not None and logic.exam_for(nodes.stiffness).magnitude is not None


def test_volume_without_database_entry_gets_a_one_line_reason(scene, ge_exam):
    logic = MREFibrosisLogic()
    plain = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "drawn by hand")
    slicer.util.updateVolumeFromArray(plain, np.ones((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="Load MRE exam from folder") as err:
        logic.load_from_dicom_database(scene, plain, FolderDicomDatabase(ge_exam.path))
    assert "\n" not in str(err.value)


def test_export_pairs_a_result_only_with_its_own_exam(scene, two_exams, tmp_path):
    a, b = two_exams
    logic = MREFibrosisLogic()
    na, nb = logic.load_exam(scene, a.path), logic.load_exam(scene, b.path)
    core = _liver_core(a)
    logic.compute(scene, na.stiffness, _roi_node(logic, scene, na.stiffness, core))
    with pytest.raises(ValueError, match="nothing computed"):
        logic.export(tmp_path / "b-out", nb.stiffness, dicom=True)
    assert not (tmp_path / "b-out").exists()

    # B computed too: B's export carries B's study and B's numbers, A's carries A's
    logic.compute(scene, nb.stiffness, _roi_node(logic, scene, nb.stiffness, _liver_core(b)))
    for fixture, nodes, name in ((a, na, "a"), (b, nb, "b")):
        outcome = logic.export(tmp_path / name, nodes.stiffness, dicom=True)
        sr = pydicom.dcmread(tmp_path / name / "dicom" / "SR.dcm")
        source = read_exam(fixture.path).source_headers[0]
        assert sr.StudyInstanceUID == source.StudyInstanceUID
        exported = json.loads((tmp_path / name / "result.json").read_text())
        assert exported["mean_kpa"] == pytest.approx(_expected_kpa(fixture, _liver_core(fixture)), rel=1e-6)
        assert outcome.note == ""

    # A's volume replaced in place (e.g. reloaded or edited): its old result is refused
    arr = slicer.util.arrayFromVolume(na.stiffness)
    arr[0, 0, 0] += 1.0
    slicer.util.arrayFromVolumeModified(na.stiffness)
    with pytest.raises(ExamMismatchError, match="values of volume"):
        logic.export(tmp_path / "a-again", na.stiffness)
    assert not (tmp_path / "a-again").exists()


def test_roi_and_table_of_one_exam_never_serve_another(scene, two_exams):
    a, b = two_exams
    logic = MREFibrosisLogic()
    na, nb = logic.load_exam(scene, a.path), logic.load_exam(scene, b.path)
    seg_a = _roi_node(logic, scene, na.stiffness, _liver_core(a))
    with pytest.raises(ExamMismatchError, match="belongs to volume"):
        logic.compute(scene, nb.stiffness, seg_a)
    # the panel still points at A's segmentation when B is segmented: B gets its own node
    seg_b = logic.segmentation_for(scene, nb.stiffness, candidate=seg_a)
    assert seg_b.GetID() != seg_a.GetID()
    before = segment_mask(seg_a, find_roi_segment(seg_a), na.stiffness).copy()
    set_roi_segment(seg_b, _liver_core(b), np.diag([-1.0, -1.0, 1.0, 1.0]) @ _ras_matrix(nb.stiffness), nb.stiffness)
    np.testing.assert_array_equal(segment_mask(seg_a, find_roi_segment(seg_a), na.stiffness), before)
    # a table filled for A is not overwritten by B's Compute
    _, table_a = logic.compute(scene, na.stiffness, seg_a)
    _, table_b = logic.compute(scene, nb.stiffness, seg_b, table_node=table_a)
    assert table_b.GetID() != table_a.GetID()
    assert table_a.GetAttribute("MREFibrosis.StiffnessNodeID") == na.stiffness.GetID()


def test_export_without_highdicom_writes_the_files_and_says_why(scene, ge_exam, tmp_path, monkeypatch):
    """Slicer 5.10's stack had no highdicom: CSV/JSON/ROI still written, one line on the DICOM part."""
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, ge_exam.path)
    logic.compute(scene, nodes.stiffness, _roi_node(logic, scene, nodes.stiffness, _liver_core(ge_exam)))
    monkeypatch.setitem(sys.modules, "highdicom", None)
    outcome = logic.export(tmp_path / "out", nodes.stiffness, dicom=True)
    assert sorted(p.name for p in outcome.written) == ["measurements.csv", "result.json", "roi.seg.nrrd"]
    assert "highdicom" in outcome.note and "\n" not in outcome.note
    assert not (tmp_path / "out" / "dicom").exists()


def test_segment_arguments_name_exactly_this_exam(scene, ge_exam, tmp_path):
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, ge_exam.path)
    identity = identity_of(nodes.stiffness)
    args = logic.segment_arguments(identity, tmp_path, SegmenterSettings(model="m.mrefmodel", device="cpu"))
    assert args[:4] == ["-m", "mrefibrosis", "segment", identity.source_folder]
    assert args[args.index("--study") + 1] == identity.exam_key
    assert args[args.index("--stiffness-series") + 1] == identity.series_uid
    assert identity.series_uid == str(read_exam(ge_exam.path).source_headers[0].SeriesInstanceUID)
    assert "--progress" in args and args[args.index("--model") + 1] == "m.mrefmodel"


def test_late_segment_lands_on_the_exam_it_was_started_for(scene, tiny_model, tmp_path):
    model, exams = tiny_model
    logic = MREFibrosisLogic()
    na = logic.load_exam(scene, exams[0] / "dicom")
    nb = logic.load_exam(scene, exams[1] / "dicom")
    job = logic.start_segment(na.stiffness, SegmenterSettings(model=model, device="cpu"), work_dir=tmp_path / "job")
    # meanwhile the user selects B and draws B's ROI; the panel's selection is B's segmentation
    seg_b = _roi_node(logic, scene, nb.stiffness, np.ones(slicer.util.arrayFromVolume(nb.stiffness).shape, bool))
    assert job.runner.wait(300).state.value == "succeeded", job.runner.output[-5:]
    seg = logic.finish_segment(scene, job, segmentation_node=seg_b)
    assert seg.GetID() != seg_b.GetID() and seg.GetAttribute("MREFibrosis.StiffnessNodeID") == na.stiffness.GetID()
    assert segment_mask(seg_b, find_roi_segment(seg_b), nb.stiffness).all()
    assert segment_mask(seg, find_roi_segment(seg), na.stiffness).any()


def test_segment_of_a_closed_exam_imports_nothing(scene, tiny_model, tmp_path):
    model, exams = tiny_model
    logic = MREFibrosisLogic()
    na = logic.load_exam(scene, exams[0] / "dicom")
    job = logic.start_segment(na.stiffness, SegmenterSettings(model=model, device="cpu"), work_dir=tmp_path / "job")
    scene.RemoveNode(na.stiffness)
    assert job.runner.wait(300).state.value == "succeeded"
    n_segs = scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")
    with pytest.raises(ExamMismatchError, match="closed"):
        logic.finish_segment(scene, job)
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == n_segs


def test_cancelled_segment_ends_its_processes_and_imports_nothing(scene, tiny_model, tmp_path):
    from MREFibrosisLib.process_runner import _alive, _descendants

    model, exams = tiny_model
    logic = MREFibrosisLogic()
    na = logic.load_exam(scene, exams[0] / "dicom")
    job = logic.start_segment(na.stiffness, SegmenterSettings(model=model, device="cpu"), work_dir=tmp_path / "job")
    tree = [job.runner.pid, *_descendants(job.runner.pid)]
    assert job.runner.cancel() is True
    assert not any(_alive(p) for p in tree)
    with pytest.raises(RuntimeError, match="cancelled"):
        logic.finish_segment(scene, job)
    assert na.stiffness.GetNodeReference("MREFibrosis.roi") is None


def test_reader_findings_reach_the_slicer_compute(scene, ge_exam, tmp_path):
    """A slice lost from the export is reported by Compute in Slicer as by the CLI."""
    import shutil

    folder = tmp_path / "exam"
    shutil.copytree(ge_exam.path, folder)
    stiffness = sorted((folder / "series_0500").iterdir())
    stiffness[1].unlink()
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, folder)
    shape = slicer.util.arrayFromVolume(nodes.stiffness).shape
    result, _ = logic.compute(scene, nodes.stiffness, _roi_node(logic, scene, nodes.stiffness, np.ones(shape, bool)))
    assert "slice_gap" in result.measurement.warnings
