"""Breath-hold mismatch between phase offsets (domain doc section 6): the reader finds the slices
whose offsets disagree on the magnitude images, the automatic ROI leaves them out, and an ROI on
them is flagged or indeterminate. Known answers: a plain correlation for two offsets, and the
simulator's own list of moved slices for both vendor styles, read back from the DICOM files."""

import numpy as np
import pytest

from mrefibrosis.measure.breath_hold import FLAG_OFFSETS_MISREGISTERED, misregistered_slices
from mrefibrosis.measure.qc import QcSettings
from mrefibrosis.measure.roi_stats import measure_roi
from mrefibrosis.model.inference import allowed_region
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.reading.offset_agreement import offset_agreement
from mrefibrosis.results.roi_files import read_roi
from mrefibrosis.synth.export import GE_SETTINGS, SIEMENS_SETTINGS, write_exam
from mrefibrosis.synth.simulate import simulate_exam


def _body(rng, shape=(48, 48)):
    img = np.zeros(shape)
    img[8:40, 6:42] = 100.0
    img[14:30, 12:28] = 60.0  # an organ inside the body
    return img + rng.normal(0, 2.0, shape)


def test_two_offsets_score_their_correlation_over_the_body():
    rng = np.random.default_rng(0)
    a, b = _body(rng), _body(rng)
    mean = (a + b) / 2
    body = mean > 0.2 * np.percentile(mean, 99)
    expected = np.corrcoef(a[body], b[body])[0, 1]  # with two offsets, "the others" is the other one
    assert offset_agreement(np.stack([a, b])) == pytest.approx(expected, rel=1e-9)
    assert expected > 0.95


def test_moved_anatomy_on_some_offsets_scores_low_and_one_image_scores_nothing():
    rng = np.random.default_rng(1)
    still = np.stack([_body(rng) for _ in range(4)])
    moved = still.copy()
    moved[1] = np.roll(moved[1], 8, axis=0)  # 8 px: 12.5 mm at 1.5625 mm
    moved[3] = np.roll(moved[3], 8, axis=0)
    assert offset_agreement(still) > 0.95
    assert offset_agreement(moved) < 0.7
    assert np.isnan(offset_agreement(still[:1]))
    assert np.isnan(offset_agreement(np.zeros((4, 48, 48))))
    # offsets of noise alone disagree too, but show no anatomy to judge by: no figure, no flag
    assert np.isnan(offset_agreement(rng.uniform(100, 1000, size=(4, 48, 48))))


@pytest.fixture(scope="module", params=["ge", "siemens"])
def moved_exam(request, tmp_path_factory):
    vendor = request.param
    settings = GE_SETTINGS if vendor == "ge" else SIEMENS_SETTINGS
    sim = simulate_exam(23, settings, n_slices=4, failure="breath_hold", liver_kpa=2.6, snr=20)
    assert 0 < len(sim.rejected_slices) < 4
    folder = tmp_path_factory.mktemp(f"breath-{vendor}")
    write_exam(folder, sim, vendor, f"bh-{vendor}")
    exam = read_exam(folder / "dicom")
    return exam, sim, read_roi(folder / "liver.seg.nrrd", exam.geometry)


def test_the_reader_finds_exactly_the_simulated_moved_slices(moved_exam):
    exam, sim, liver = moved_exam
    rejected = np.zeros(exam.n_slices, bool)
    rejected[sorted(sim.rejected_slices)] = True
    # the simulator's slices in the files' position order: matched by their true liver masks
    same = all(np.array_equal(sim.liver[k], liver[k]) for k in range(exam.n_slices))
    assert same or all(np.array_equal(sim.liver[k], liver[-1 - k]) for k in range(exam.n_slices))
    expected = rejected if same else rejected[::-1]
    assert exam.offset_agreement is not None and exam.offset_agreement.shape == (exam.n_slices,)
    np.testing.assert_array_equal(misregistered_slices(exam), expected)
    assert exam.offset_agreement[~expected].min() > 0.9


def test_automatic_roi_leaves_the_moved_slices_out_and_a_drawn_roi_is_flagged(moved_exam):
    exam, sim, liver = moved_exam
    bad = misregistered_slices(exam)
    assert not allowed_region(exam)[bad].any() and allowed_region(exam)[~bad].any()
    roi = liver & exam.valid & exam.confidence_valid

    whole = measure_roi(exam, roi, "seed")  # drawn over every slice: a number, with a warning
    assert whole.status == "ok" and FLAG_OFFSETS_MISREGISTERED in whole.flags and FLAG_OFFSETS_MISREGISTERED in whole.warnings
    names = ", ".join(str(k) for k in np.flatnonzero(bad))
    assert any("lies on slice" in m and names in m and "breath-hold mismatch" in m for m in whole.messages)

    only_bad = roi.copy()
    only_bad[~bad] = False
    m = measure_roi(exam, only_bad, "seed")
    assert m.status == "indeterminate" and m.mean_kpa is None and m.reason_flag == FLAG_OFFSETS_MISREGISTERED
    assert "lies only on" in m.reason and "breath-hold mismatch" in m.reason

    good_only = roi & ~bad[:, None, None]
    m = measure_roi(exam, good_only, "seed")  # the reader's way: a number, the left-out slices named
    assert m.status == "ok" and any("not measured" in msg for msg in m.messages)
    # the threshold is a setting: at -1 no slice is misregistered and no flag is raised
    assert FLAG_OFFSETS_MISREGISTERED not in measure_roi(exam, roi, "seed", qc=QcSettings(min_offset_agreement=-1.0)).flags


def test_every_slice_moved_is_indeterminate_and_no_per_offset_images_no_check(moved_exam):
    exam, _, liver = moved_exam
    roi = liver & exam.valid & exam.confidence_valid
    saved = exam.offset_agreement
    try:
        exam.offset_agreement = np.full(exam.n_slices, 0.1, np.float32)
        m = measure_roi(exam, roi, "seed")
        assert m.status == "indeterminate" and "every slice is misregistered" in m.reason
        exam.offset_agreement = None  # a magnitude series with one image a slice
        assert not misregistered_slices(exam).any()
        assert FLAG_OFFSETS_MISREGISTERED not in measure_roi(exam, roi, "seed").flags
    finally:
        exam.offset_agreement = saved
