"""The simulator looks like a real scanner's export: texture figures near the real GE exam's, the
project's figures equal to the shared reference tool's, failure modes with their ground truth,
GRE magnitude contrast, and the true liver mask."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import read_roi
from mrefibrosis.synth import anatomy as A
from mrefibrosis.synth.cohort import generate_cohort
from mrefibrosis.synth.export import GE_SETTINGS
from mrefibrosis.synth.realism import REAL_GE, cohort_medians, correlation_length_px, figures_of_exam, within_bounds
from mrefibrosis.synth.simulate import FAILURES, simulate_exam

SHARED_TOOL = Path(__file__).resolve().parents[3] / "shared" / "tools" / "mre_texture_stats.py"


@pytest.fixture(scope="module")
def ge_cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("realism")
    generate_cohort(root, 3, seed=31, vendor="ge", stage_mix=None, workers=1)
    return sorted(root.glob("exam_*"))


def _figures(folder):
    exam = read_exam(folder / "dicom")
    return figures_of_exam(exam, read_roi(folder / "roi.seg.nrrd", exam.geometry))


def test_texture_figures_of_a_small_cohort_inside_the_bounds(ge_cohort):
    """All fourteen figures (median over three exams, as the realism benchmark computes them) inside
    the bounds around the real GE exam: no soft tissue around the liver, blobs of about 1.5 cm,
    confident patches rather than one region, a liver of realistic brightness."""
    per_exam = [_figures(folder) for folder in ge_cohort]
    medians = cohort_medians(per_exam)
    inside = within_bounds(medians)
    assert all(inside.values()), {k: round(medians[k], 3) for k, ok in inside.items() if not ok}
    assert min(f["p50"] for f in per_exam) > 1.5, "a body that reads soft: the old shortcut is back"


def test_project_figures_equal_the_reference_tool(ge_cohort):
    if not SHARED_TOOL.exists():
        pytest.skip("../shared/tools/mre_texture_stats.py not beside the project")
    spec = importlib.util.spec_from_file_location("mre_texture_stats", SHARED_TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    folder = ge_cohort[1]
    theirs = tool.texture_stats(folder / "dicom", folder / "roi.seg.nrrd")
    ours = _figures(folder)
    for name in REAL_GE:
        assert ours[name] == pytest.approx(theirs[name], rel=0.01, abs=0.002), name


def test_correlation_length_of_known_fields():
    """White noise decorrelates at lag 1; Gaussian-smoothed noise (sigma s) has the autocorrelation
    exp(-r^2 / 4 s^2), which falls below 0.5 past r = 2 s sqrt(ln 2) = 9.99 px for s = 6."""
    from scipy import ndimage

    rows = cols = 256
    body = np.ones((rows, cols), bool)
    rng = np.random.default_rng(0)
    assert correlation_length_px(rng.normal(size=(rows, cols)), body) == 1
    smooth = ndimage.gaussian_filter(rng.normal(size=(rows, cols)), 6.0, mode="wrap")
    assert correlation_length_px(smooth, body) in (9, 10, 11)


def test_confident_patches_also_outside_the_liver():
    e = simulate_exam(31, GE_SETTINGS, n_slices=3, failure=None, liver_kpa=2.2, snr=30)
    confident = e.body & (e.confidence >= 0.95)
    outside = confident & (e.labels != A.LIVER)
    assert outside.sum() > 0.05 * confident.sum()
    assert (confident & e.liver).sum() > 0.3 * confident.sum()  # most of it in the liver, as on the real exam


def test_magnitude_contrast_and_iron_overload():
    def medians(e):
        mag = e.magnitude.mean(axis=1)
        return {t: float(np.median(mag[e.labels == t])) for t in (A.LIVER, A.MUSCLE, A.FAT, A.SPLEEN)}

    normal = medians(simulate_exam(5, GE_SETTINGS, n_slices=2, failure=None, snr=30))
    assert normal[A.MUSCLE] < normal[A.LIVER] < normal[A.FAT]
    iron = medians(simulate_exam(5, GE_SETTINGS, n_slices=2, failure="iron_overload", snr=30))
    assert iron[A.LIVER] < 0.5 * iron[A.MUSCLE]  # the reader's cue: a dark liver


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failure_modes_carry_their_truth(failure, tmp_path):
    from mrefibrosis.synth.export import write_exam

    e = simulate_exam(12, GE_SETTINGS, n_slices=3, failure=failure, snr=25)
    truth = write_exam(tmp_path / "exam", e, "ge", f"fail-{failure}")
    assert truth["failure"] == failure
    if failure in ("iron_overload", "driver_off"):
        assert truth["status"] == "indeterminate" and truth["indeterminate_reason"]
        assert truth["reader_kpa"] is None and not e.gt_roi.any()
    if failure == "driver_off":
        assert e.amplitude_rad == 0
        assert np.percentile(np.abs(e.wave[:, 0][e.body]), 99) < 0.3  # only noise in the phase
    if failure == "very_stiff":
        assert e.liver_kpa_true >= 7.0
    if failure == "breath_hold":
        assert e.rejected_slices and not any(e.gt_roi[k].any() for k in e.rejected_slices)
    if truth["status"] == "indeterminate":
        assert truth["indeterminate_reason"]
    else:
        assert truth["indeterminate_reason"] is None and truth["roi_area_cm2"] >= 1.0


def test_truth_has_the_liver_mask(ge_cohort):
    folder = ge_cohort[0]
    exam = read_exam(folder / "dicom")
    liver = read_roi(folder / "liver.seg.nrrd", exam.geometry)
    roi = read_roi(folder / "roi.seg.nrrd", exam.geometry)
    truth = json.loads((folder / "truth.json").read_text())
    assert liver.sum() > 3 * max(roi.sum(), 1)
    assert not (roi & ~liver).any()  # the reader's ROI lies inside the liver
    cols = np.nonzero(liver)[2]
    assert cols.mean() < exam.geometry.columns / 2  # patient right = image left
    assert truth["status"] in ("ok", "indeterminate")
