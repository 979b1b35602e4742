"""The engine's Exam crosses the Slicer boundary whole (MREFibrosisLib/exam_store): Compute in the
Lib equals `measure --roi` on every field, including the phase-offset check that an Exam rebuilt
from MRML volumes lost; Compute never measures another exam's validity map; Export writes without
its source folder; a manual ROI on a DICOM-browser volume survives the engine's re-read
(real MRML via slicer-core, real DICOM files)."""

import json
import shutil

import numpy as np
import pytest
import slicer
from slicer_helpers import FolderDicomDatabase

from mrefibrosis.cli import main as cli_main
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.synth.export import GE_SETTINGS, SIEMENS_SETTINGS, write_exam
from mrefibrosis.synth.simulate import simulate_exam
from MREFibrosisLib import MREFibrosisLogic
from MREFibrosisLib.exam_identity import ExamMismatchError
from MREFibrosisLib.exam_nodes import LPS_TO_RAS, _vtk_matrix
from MREFibrosisLib.exam_store import REBUILT
from MREFibrosisLib.segment_nodes import find_roi_segment, set_roi_segment


def _exam(root, name, seed, settings, vendor, failure=None, n_slices=4):
    folder = root / name
    write_exam(folder, simulate_exam(seed, settings, n_slices=n_slices, failure=failure, liver_kpa=2.6, snr=30), vendor, f"store-{name}")
    return folder


@pytest.fixture(scope="module")
def exams(tmp_path_factory):
    root = tmp_path_factory.mktemp("exam_store")
    return {
        "ge": _exam(root, "ge", 41, GE_SETTINGS, "ge"),
        "ge_moved": _exam(root, "ge_moved", 43, GE_SETTINGS, "ge", failure="breath_hold"),
        "siemens_moved": _exam(root, "siemens_moved", 44, SIEMENS_SETTINGS, "siemens", failure="breath_hold"),
    }


def _cli(folder, roi, out):
    assert cli_main(["-q", "measure", str(folder / "dicom"), "--out", str(out), "--roi", str(roi)]) == 0
    return json.loads((out / "result.json").read_text())


def _lib_json(result) -> dict:
    return json.loads(json.dumps(result.to_json(False)))


@pytest.mark.parametrize("name", ["ge", "ge_moved", "siemens_moved"])
def test_compute_equals_the_cli_on_every_field(scene, exams, tmp_path, name):
    """The whole result.json, per-slice numbers and flags included. On the moved exams the CLI leaves
    slices out as misregistered; an Exam rebuilt from MRML had no offset figures and said `ok`."""
    folder = exams[name]
    roi_file = folder / "liver.seg.nrrd"
    cli = _cli(folder, roi_file, tmp_path / "cli")
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, folder / "dicom")
    seg = logic.import_roi_file(scene, nodes.stiffness, roi_file)
    result, _ = logic.compute(scene, nodes.stiffness, seg)
    lib = _lib_json(result)
    for volatile in ("software", "created"):
        lib.pop(volatile, None), cli.pop(volatile, None)
    lib["roi"], cli["roi"] = lib.get("roi", {}).get("mask_sha1"), cli.get("roi", {}).get("mask_sha1")
    # where the ROI came from differs by design: a file for the CLI, the edited segment in Slicer
    assert (lib["provenance"].pop("roi_source")["kind"], cli["provenance"].pop("roi_source")["kind"]) == ("edited", "file")
    assert (lib["exam"].pop("roi_source"), cli["exam"].pop("roi_source")) == ("Slicer segment mre_liver_roi", "liver.seg.nrrd")
    assert {k: v for k, v in lib["exam"].items() if v != cli["exam"].get(k)} == {}
    assert lib == cli
    if name.endswith("moved"):
        assert "offsets_misregistered" in json.dumps(cli), "the failure exam should trip the breath-hold check"
        assert result.measurement.slices_left_out


def test_compute_ignores_no_field_of_a_rebuilt_exam_that_the_engine_read(scene, exams):
    """The Lib hands the engine's own Exam to process_exam: every field equal to a fresh read."""
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, exams["ge_moved"] / "dicom")
    kept, fresh = logic.exam_for(nodes.stiffness), read_exam(exams["ge_moved"] / "dicom")
    for name in fresh.__dataclass_fields__:
        a, b = getattr(kept, name), getattr(fresh, name)
        if isinstance(b, np.ndarray):
            assert np.array_equal(a, b, equal_nan=b.dtype.kind == "f"), name
        elif name != "source_headers":
            assert repr(a) == repr(b), name
    assert kept.offset_agreement is not None


def test_switching_exams_never_mixes_validity_maps(scene, exams):
    """Load B, then C, then Compute B, C, B: each Compute is that exam's CLI answer. A validity
    volume of another exam passed in is refused, not measured."""
    logic = MREFibrosisLogic()
    b, c = (logic.load_exam(scene, exams[k] / "dicom") for k in ("ge", "siemens_moved"))
    seg_b = logic.import_roi_file(scene, b.stiffness, exams["ge"] / "liver.seg.nrrd")
    seg_c = logic.import_roi_file(scene, c.stiffness, exams["siemens_moved"] / "liver.seg.nrrd")
    first_b, _ = logic.compute(scene, b.stiffness, seg_b)
    first_c, _ = logic.compute(scene, c.stiffness, seg_c)
    again_b, _ = logic.compute(scene, b.stiffness, seg_b)
    assert (first_b.status_text, first_b.measurement.mean_kpa) == (again_b.status_text, again_b.measurement.mean_kpa)
    assert first_b.measurement.mean_kpa != first_c.measurement.mean_kpa
    with pytest.raises(ExamMismatchError, match="belongs to another exam"):
        logic.compute(scene, b.stiffness, seg_b, validity_node=c.validity)
    own, _ = logic.compute(scene, b.stiffness, seg_b, validity_node=b.validity)
    assert own.measurement.mean_kpa == first_b.measurement.mean_kpa


def test_units_are_kpa(scene, exams):
    nodes = MREFibrosisLogic().load_exam(scene, exams["ge"] / "dicom")
    assert nodes.stiffness.GetVoxelValueUnits().GetCodeValue() == "kPa"


def test_export_writes_everything_after_the_source_folder_is_gone(scene, exams, tmp_path):
    """DICOM results come from the headers read at load; DICOM-database exams live in a staging
    folder that may be gone by Export. Before, Export raised ExamNotFoundError and wrote nothing."""
    pytest.importorskip("highdicom")
    folder = tmp_path / "moved_away"
    shutil.copytree(exams["ge"], folder)
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, folder / "dicom")
    seg = logic.import_roi_file(scene, nodes.stiffness, folder / "liver.seg.nrrd")
    result, _ = logic.compute(scene, nodes.stiffness, seg)
    shutil.rmtree(folder)
    outcome = logic.export(tmp_path / "out", nodes.stiffness, dicom=True)
    names = {p.name for p in outcome.written}
    assert {"measurements.csv", "result.json", "roi.seg.nrrd", "SEG.dcm", "SR.dcm"} <= names, names
    assert outcome.note == ""
    assert json.loads((tmp_path / "out" / "result.json").read_text())["mean_kpa"] == result.measurement.mean_kpa


def test_rebuilt_exam_exports_its_files_and_says_why_no_dicom(scene, exams, tmp_path):
    """A scene whose exam folder is gone and whose Exam this session never read (a saved scene opened
    later): Compute on the volumes, Export writes the files and names the reason in one line."""
    folder = tmp_path / "gone"
    shutil.copytree(exams["ge"], folder)
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, folder / "dicom")
    seg = logic.import_roi_file(scene, nodes.stiffness, folder / "liver.seg.nrrd")
    shutil.rmtree(folder)
    logic.exams.forget(nodes.stiffness.GetID())
    logic.compute(scene, nodes.stiffness, seg)
    assert logic.results[nodes.stiffness.GetID()].exam_origin == REBUILT
    outcome = logic.export(tmp_path / "out", nodes.stiffness, dicom=True)
    assert {p.name for p in outcome.written} == {"measurements.csv", "result.json", "roi.seg.nrrd"}
    assert outcome.note.startswith("no DICOM results: the exam was rebuilt") and "\n" not in outcome.note


def test_a_volume_edited_in_place_is_read_again_or_refused(scene, exams):
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, exams["ge"] / "dicom")
    seg = logic.import_roi_file(scene, nodes.stiffness, exams["ge"] / "liver.seg.nrrd")
    values = slicer.util.arrayFromVolume(nodes.stiffness)
    values[0, 0, 0] += 5.0
    slicer.util.arrayFromVolumeModified(nodes.stiffness)
    with pytest.raises(ExamMismatchError, match="no longer match its DICOM files"):
        logic.compute(scene, nodes.stiffness, seg)


def _browser_volume(scene, folder):
    """A GE stiffness volume as Slicer's DICOM browser loads it: stored Pa values, instance UIDs."""
    exam = read_exam(folder)
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "6: Stiffness")
    node.SetIJKToRASMatrix(_vtk_matrix(LPS_TO_RAS @ exam.geometry.ijk_to_lps()))
    slicer.util.updateVolumeFromArray(node, (exam.stiffness_kpa * 1000.0).astype(np.float32))
    node.SetAttribute("DICOM.instanceUIDs", " ".join(str(h.SOPInstanceUID) for h in exam.source_headers))
    return node, exam


def test_manual_roi_on_a_dicom_browser_volume_survives_the_engines_reading(scene, exams, tmp_path):
    """The radiologist draws the ROI on the browser's volume and presses Compute: the engine reads the
    study once, the drawn ROI becomes that exam's ROI (before: the selector was replaced by None and
    Compute failed with AttributeError), and a second Compute reuses the reading."""
    folder = exams["ge"] / "dicom"
    browser, exam = _browser_volume(scene, folder)
    drawn = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my ROI")
    drawn.CreateDefaultDisplayNodes()
    mask = exam.valid & (exam.confidence_valid if exam.confidence_valid is not None else exam.valid)
    set_roi_segment(drawn, mask, exam.geometry.ijk_to_lps(), browser)
    logic = MREFibrosisLogic()
    database = FolderDicomDatabase(folder)
    first = logic.engine_selection(scene, browser, database, drawn, staging_root=tmp_path / "staged")
    assert first.nodes is not None and first.segmentation is drawn and "stored DICOM values" in first.note
    result, _ = logic.compute(scene, first.stiffness, first.segmentation)
    expected = exam.stiffness_kpa[mask & exam.valid].astype(np.float64).mean()
    assert result.measurement.mean_kpa == pytest.approx(expected, rel=1e-6)
    volumes = scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")
    again = logic.engine_selection(scene, browser, database, drawn, staging_root=tmp_path / "staged")
    assert again.nodes is None and again.stiffness is first.stiffness and again.segmentation is drawn
    assert scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode") == volumes
    assert find_roi_segment(drawn)
    with pytest.raises(ValueError, match="no ROI to measure"):
        logic.compute(scene, first.stiffness, None)


def test_segment_asks_before_replacing_an_edited_or_hand_drawn_roi(scene, exams):
    """The panel asks before Segment replaces an ROI that holds a radiologist's work (roi_edited)."""
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, exams["ge"] / "dicom")
    exam = logic.exam_for(nodes.stiffness)
    seg = logic.set_roi(scene, nodes.stiffness, exam.valid)  # as Segment leaves it
    assert not logic.roi_edited(nodes.stiffness, seg)
    edited = exam.valid.copy()
    edited[:, : edited.shape[1] // 2] = False
    slicer.util.updateSegmentBinaryLabelmapFromArray(edited.astype(np.uint8), seg, find_roi_segment(seg), nodes.stiffness)
    assert logic.roi_edited(nodes.stiffness, seg)
    drawn = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "drawn by hand")
    drawn.CreateDefaultDisplayNodes()
    assert not logic.roi_edited(nodes.stiffness, drawn)  # no segment at all: nothing to lose
    set_roi_segment(drawn, edited, exam.geometry.ijk_to_lps(), nodes.stiffness)
    assert logic.roi_edited(nodes.stiffness, drawn)


def test_segment_leaves_no_temporary_folder_behind(scene, exams):
    """The child process's folder is removed once its ROI is imported, and after a Cancel."""
    pytest.importorskip("onnxruntime")
    from mrefibrosis.model.segmenter_settings import SegmenterSettings

    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, exams["ge"] / "dicom")
    job = logic.start_segment(nodes.stiffness, SegmenterSettings(device="cpu"))
    assert job.owns_out_dir and job.out_dir.is_dir()
    assert job.runner.wait(300).state.value == "succeeded", job.runner.output[-3:]
    logic.finish_segment(scene, job)
    assert not job.out_dir.exists()
    cancelled = logic.start_segment(nodes.stiffness, SegmenterSettings(device="cpu"))
    cancelled.runner.cancel()
    cancelled.discard_files()
    assert not cancelled.out_dir.exists()
