"""A simulated GE-style exam with the real GE MR-Touch exam's figures (domain doc section 5): 8 complete
slices whose every series announces ImagesInAcquisition = 64, phase offsets that correlate only
0.4-0.8 and differ in brightness by about 4 %, and the 2 most superior slices drifting about 3 mm between
offsets. A reader measures it whole; so must every front end, with no warning and no rule firing:
the command line (reader's ROI and automatic), the Slicer Lib's Compute on real MRML, and the review
page's session. Before #30 the breath-hold rule threw away most of its slices and slice_gap fired."""

import json

import numpy as np
import pytest

from mrefibrosis.cli import main as cli_main
from mrefibrosis.measure.breath_hold import FLAG_OFFSETS_MISREGISTERED, misregistered_slices
from mrefibrosis.measure.qc import FLAG_DARK_LIVER, FLAG_LIVER_EDGE, FLAG_SMALL_CONFIDENT_LIVER, FLAG_TTA, FLAG_UNDER_DRIVER
from mrefibrosis.measure.roi_stats import FLAG_FREQ_UNKNOWN, FLAG_NO_CONFIDENCE, FLAG_OUTSIDE_CONFIDENCE, FLAG_SMALL_AREA, measure_roi
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.reading.findings import READER_WARNING_FLAGS
from mrefibrosis.results.roi_files import read_roi
from mrefibrosis.synth.export import GE_SETTINGS, write_exam
from mrefibrosis.synth.realism import BOUNDS
from mrefibrosis.synth.simulate import simulate_exam

SEED = 47  # drifts about 3 mm on its 2 upper slices, offsets correlate 0.41-0.76 (median 0.72): the real exam's picture


@pytest.fixture(scope="module")
def real_like(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real-like")
    sim = simulate_exam(SEED, GE_SETTINGS, n_slices=8, failure=None, liver_kpa=2.06)
    write_exam(folder, sim, "ge", "real-like")
    return folder


def test_the_exam_reproduces_the_real_offset_figures(real_like):
    import pydicom

    exam = read_exam(real_like / "dicom")
    assert exam.n_slices == 8
    first = pydicom.dcmread(next((real_like / "dicom").rglob("*.dcm")), stop_before_pixels=True)
    assert int(first.ImagesInAcquisition) == 64 and int(first.NumberOfTemporalPositions) == 4
    lo, hi = BOUNDS["mag_offset_agreement"]
    assert lo <= float(np.median(exam.offset_agreement)) <= hi and float(np.min(exam.offset_agreement)) < 0.7
    lo, hi = BOUNDS["mag_offset_intensity_cv"]
    assert lo <= float(np.median(exam.offset_intensity_cv)) <= hi
    assert 1.5 < float(np.max(exam.offset_shift_mm)) < 5.0  # the upper slices drift, as on the real exam
    assert not exam.findings  # complete slices: no slice_gap from ImagesInAcquisition = 64


# Every rule that could fire on a reader's ROI of a normal exam, one by one (docs/qc-rules.md).
RULES = sorted(
    READER_WARNING_FLAGS
    | {
        FLAG_OFFSETS_MISREGISTERED,
        FLAG_DARK_LIVER,
        FLAG_SMALL_AREA,
        FLAG_NO_CONFIDENCE,
        FLAG_OUTSIDE_CONFIDENCE,
        FLAG_FREQ_UNKNOWN,
        FLAG_SMALL_CONFIDENT_LIVER,
        FLAG_LIVER_EDGE,
        FLAG_TTA,
        FLAG_UNDER_DRIVER,
    }
)


@pytest.fixture(scope="module")
def reader_measurement(real_like):
    exam = read_exam(real_like / "dicom")
    roi = read_roi(real_like / "roi.seg.nrrd", exam.geometry)
    liver = read_roi(real_like / "liver.seg.nrrd", exam.geometry)
    return exam, measure_roi(exam, roi, "seed", liver=liver, tta_agreement=1.0)


@pytest.mark.parametrize("rule", RULES)
def test_no_rule_fires_on_the_reader_roi(reader_measurement, rule):
    exam, m = reader_measurement
    assert rule not in m.flags, m.messages
    assert not misregistered_slices(exam).any()


def test_the_command_line_measures_it_whole_with_no_warning(real_like, tmp_path):
    truth = json.loads((real_like / "truth.json").read_text())
    assert cli_main(["-q", "measure", str(real_like / "dicom"), "--roi", str(real_like / "roi.seg.nrrd"), "--out", str(tmp_path / "roi")]) == 0
    result = json.loads((tmp_path / "roi" / "result.json").read_text())
    assert result["status_detail"] == "ok" and result["flags"] == []
    assert result["mean_kpa"] == pytest.approx(truth["reader_kpa"], rel=1e-6)
    assert result["coverage"]["slices_total"] == 8

    assert cli_main(["-q", "measure", str(real_like / "dicom"), "--out", str(tmp_path / "auto")]) == 0
    auto = json.loads((tmp_path / "auto" / "result.json").read_text())
    assert auto["status"] == "ok" and FLAG_OFFSETS_MISREGISTERED not in auto["flags"] and "slice_gap" not in auto["flags"]
    assert auto["mean_kpa"] == pytest.approx(truth["reader_kpa"], rel=0.05)
    assert auto["coverage"]["slices_left_out"] == {}


def test_slicer_compute_and_the_review_page_say_ok(real_like, scene, tmp_path):
    from MREFibrosisLib import MREFibrosisLogic
    from MREFibrosisReview.session import ReviewSession

    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, real_like / "dicom")
    seg = logic.import_roi_file(scene, nodes.stiffness, real_like / "roi.seg.nrrd")
    result, _ = logic.compute(scene, nodes.stiffness, seg)
    assert result.status_text == "ok" and result.measurement.flags == []

    session = ReviewSession(scene)
    session.open(real_like / "dicom", roi_file=real_like / "roi.seg.nrrd")
    view = session.compute()
    assert view.verdict == "ok" and view.warnings == [] and view.mean_kpa == pytest.approx(result.measurement.mean_kpa, rel=1e-9)
