"""The review page's session and display on real MRML (slicer-core), without a browser: the numbers
are the Lib's and the CLI's, Export writes the mask as edited now, and the view shows the stiffness
on the 0-8 kPa map the colour bar names, over the magnitude, with the confident region outlined."""

import json

import numpy as np
import pytest

from mrefibrosis.cli import main as cli_main
from mrefibrosis.model.segmenter_settings import SegmenterSettings
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import read_roi
from MREFibrosisLib.exam_nodes import CONFIDENT
from MREFibrosisLib.segment_nodes import segment_mask, set_roi_segment
from MREFibrosisReview.display import KPA_RANGE, STIFFNESS_MAP, colour_bar_ticks, css_gradient, set_layers, style_exam, style_roi
from MREFibrosisReview.session import ReviewSession


@pytest.fixture(scope="module")
def exam_dir(simulated_ge_exam):
    return simulated_ge_exam


def test_compute_and_export_are_the_clis_numbers_on_the_mask_as_edited(scene, exam_dir, tmp_path):
    session = ReviewSession(scene)
    origin = session.open(exam_dir / "dicom", roi_file=exam_dir / "roi.seg.nrrd")
    assert origin.kind == "file" and origin.detail == "roi.seg.nrrd"
    view = session.compute()
    truth = json.loads((exam_dir / "truth.json").read_text())
    assert view.mean_kpa == pytest.approx(truth["reader_kpa"], rel=1e-6)
    assert view.rows[-1]["slice"] == "all" and view.rows[-1]["mean_kpa"] == f"{view.mean_kpa:.2f}"
    m = session.last.measurement
    assert view.verdict.split(";")[0] == ("ok" if not m.warnings else f"ok with {len(m.warnings)} warning" + "s" * (len(m.warnings) > 1))
    assert view.warnings == m.warnings and all("_" not in w for w in view.warnings_in_words)
    assert [r["slice"] for r in view.display_rows()][:-1] == [str(int(r["slice"]) + 1) for r in view.rows[:-1]], "the page counts slices from 1"

    # an edit after Compute (the reader erases the ROI's top half on every slice) is what Export writes
    exam = read_exam(exam_dir / "dicom")
    mask = segment_mask(session.segmentation, session.roi_segment_id, session.nodes.stiffness)
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    edited = mask.copy()
    edited[:, : rows[len(rows) // 2], :] = False
    set_roi_segment(session.segmentation, edited, exam.geometry.ijk_to_lps(), session.nodes.stiffness)
    exported_view, outcome = session.export(tmp_path / "out")
    assert {p.name for p in outcome.written} >= {"measurements.csv", "result.json", "roi.seg.nrrd"}
    np.testing.assert_array_equal(read_roi(tmp_path / "out" / "roi.seg.nrrd", exam.geometry), edited)
    expected = float(exam.stiffness_kpa[edited & exam.valid].mean())  # independent: numpy on the engine's kPa
    assert exported_view.mean_kpa == pytest.approx(expected, rel=1e-6) and exported_view.mean_kpa != pytest.approx(view.mean_kpa, rel=1e-3)
    assert cli_main(["-q", "measure", str(exam_dir / "dicom"), "--roi", str(tmp_path / "out" / "roi.seg.nrrd"), "--out", str(tmp_path / "cli")]) == 0
    assert json.loads((tmp_path / "cli" / "result.json").read_text())["mean_kpa"] == pytest.approx(exported_view.mean_kpa, rel=1e-9)


def test_display_layers_colours_and_outline(scene, exam_dir):
    session = ReviewSession(scene)
    session.open(exam_dir / "dicom", roi_file=exam_dir / "roi.seg.nrrd")
    nodes = session.nodes
    style_exam(scene, nodes.stiffness, nodes.validity)
    display = nodes.stiffness.GetDisplayNode()
    assert (display.GetWindow(), display.GetLevel()) == (KPA_RANGE[1] - KPA_RANGE[0], sum(KPA_RANGE) / 2)
    assert display.GetApplyThreshold() and 0 < display.GetLowerThreshold() < 0.01  # invalid (0 kPa) pixels see-through
    ctf = display.GetColorNode().GetColorTransferFunction()
    for f, rgb in STIFFNESS_MAP:  # the view's colours are the colour bar's
        np.testing.assert_allclose(ctf.GetColor(f * 255.0), rgb, atol=1e-6)
        assert f"rgb({rgb[0] * 255:.0f},{rgb[1] * 255:.0f},{rgb[2] * 255:.0f}) {f * 100:.0f}%" in css_gradient()
    assert colour_bar_ticks() == ["8", "6", "4", "2", "0"]
    labels = nodes.validity.GetDisplayNode().GetColorNode()
    rgba = [0.0] * 4
    drawn = set()
    for label in range(labels.GetNumberOfColors()):
        labels.GetColor(label, rgba)
        if rgba[3] > 0:
            drawn.add(label)
    assert CONFIDENT in drawn and 0 not in drawn and 1 not in drawn  # only the confident region's edge

    slice_node = scene.AddNewNodeByClass("vtkMRMLSliceNode")
    slice_node.SetLayoutName("Red")
    composite = scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    composite.SetLayoutName("Red")
    set_layers(scene, slice_node, nodes.stiffness, nodes.validity, nodes.magnitude)
    assert composite.GetBackgroundVolumeID() == nodes.magnitude.GetID() and composite.GetForegroundVolumeID() == nodes.stiffness.GetID()
    assert composite.GetLabelVolumeID() == nodes.validity.GetID() and slice_node.GetUseLabelOutline()
    assert 0 < composite.GetForegroundOpacity() < 1

    style_roi(session.segmentation, session.roi_segment_id)
    seg_display = session.segmentation.GetDisplayNode()
    assert seg_display.GetOpacity2DFill() == 0 and seg_display.GetOpacity2DOutline() == 1
    assert session.segmentation.GetSegmentation().GetSegment(session.roi_segment_id).GetColor() != (1.0, 0.0, 1.0)


def test_a_study_with_a_stored_roi_opens_with_that_roi(scene, exam_dir, tmp_path):
    """The PACS worker stores its SEG into the study; the review of that study starts from it (the
    ROI the reported number was measured on), not from the reader's file or a new segmentation."""
    import shutil

    study = tmp_path / "study"
    shutil.copytree(exam_dir / "dicom", study / "mre")
    first = ReviewSession(scene)
    assert first.open(study, roi_file=exam_dir / "roi.seg.nrrd").kind == "file"
    exam = read_exam(study)
    mask = segment_mask(first.segmentation, first.roi_segment_id, first.nodes.stiffness)
    edited = mask.copy()
    edited[:, :, : edited.shape[2] // 2] = False  # something the reader's file does not hold
    set_roi_segment(first.segmentation, edited, exam.geometry.ijk_to_lps(), first.nodes.stiffness)
    _, outcome = first.export(study / "results", dicom=True)
    assert "SEG.dcm" in {p.name for p in outcome.written}

    second = ReviewSession(scene)
    origin = second.open(study)
    assert origin.kind == "stored"
    np.testing.assert_array_equal(segment_mask(second.segmentation, second.roi_segment_id, second.nodes.stiffness), edited)
    assert second.compute().mean_kpa == pytest.approx(first.last.measurement.mean_kpa, rel=1e-9)


def test_a_new_roi_is_cut_to_the_margins_asked_for(scene, exam_dir, tmp_path):
    """`review --roi-edge-mm/--roi-driver-mm`: the page's automatic ROI is the CLI's `segment` with the
    same margins, and the page says which margins it used when they are not the defaults."""
    from mrefibrosis.model.margin_settings import RoiMargins

    session = ReviewSession(scene)
    origin = session.open(exam_dir / "dicom", use_stored=False, settings=SegmenterSettings(margins=RoiMargins(0.0, 0.0)))
    assert origin.kind == "segmenter" and "margins 0 mm inside the liver, 0 mm from the driver" in origin.detail
    mask = segment_mask(session.segmentation, session.roi_segment_id, session.nodes.stiffness)
    argv = ["-q", "segment", str(exam_dir / "dicom"), "--out", str(tmp_path / "cli"), "--roi-edge-mm", "0", "--roi-driver-mm", "0"]
    assert cli_main(argv) == 0
    np.testing.assert_array_equal(mask, read_roi(tmp_path / "cli" / "roi.seg.nrrd", read_exam(exam_dir / "dicom").geometry))
    default = ReviewSession(scene)
    assert default.open(exam_dir / "dicom", use_stored=False).detail == "automatic ROI from the segmenter"
    assert segment_mask(default.segmentation, default.roi_segment_id, default.nodes.stiffness).sum() < mask.sum()


def test_the_legend_names_the_region_the_outline_shows(scene, exam_dir, tmp_path):
    """With a confidence series the white outline is the confident region; without one it is the
    scanner's processed region, and the legend must not call it confident."""
    import shutil

    from MREFibrosisReview.display import has_confidence_data, legend_text

    with_confidence = ReviewSession(scene)
    with_confidence.open(exam_dir / "dicom", roi_file=exam_dir / "roi.seg.nrrd")
    assert has_confidence_data(with_confidence.nodes.validity)
    assert "confident region" in legend_text(True)

    bare = tmp_path / "no_confidence"
    shutil.copytree(exam_dir / "dicom", bare)
    shutil.rmtree(bare / "series_0507")  # the simulated GE exam's confidence series
    without = ReviewSession(scene)
    without.open(bare, roi_file=exam_dir / "roi.seg.nrrd")
    assert not has_confidence_data(without.nodes.validity)
    words = legend_text(False)
    assert "processed region" in words and "confident" not in words
