"""Each elastogram slice is the slice its header says and holds values like the exam's others
(reading/slice_consistency.py): swapped or reversed positions, a shifted masked twin, one slice
changed by a unit step, a constant or noise. Known answers on arrays, then whole exams through the
reader with the fuzz harness' own mutations (issue: -5 to -12 % and +86-91 % silently before)."""

import random
import shutil

import numpy as np
import pytest
from fixtures import make_ge_exam, make_siemens_exam
from fuzz_harness import (
    m_reverse_positions,
    m_slice_constant,
    m_slice_noise,
    m_slice_unit_step,
    m_swap_positions,
    m_swap_slice_pixels,
    m_twin_shift,
)

from mrefibrosis.pipeline import process_exam
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.reading.slice_consistency import align_twin, slice_value_findings
from mrefibrosis.results.roi_files import write_seg_nrrd

NEW_FLAGS = {"slice_order_doubtful", "slice_values_implausible", "masked_twin_realigned", "raw_images_missing"}


def _smooth_slices(n: int, seed: int = 0, rows: int = 64, cols: int = 64) -> np.ndarray:
    """Elastogram-like slices: smooth blobs around 2.5 kPa (neighbouring pixels correlate ~0.99)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    out = np.stack([ndimage.gaussian_filter(rng.normal(size=(rows, cols)), 4.0) for _ in range(n)])
    return (2.5 + 0.5 * out / out.std()).astype(np.float32)


class _Geom:
    """What the findings need from a Geometry: slice locations for their messages."""

    def __init__(self, n: int):
        self.slice_locations_mm = np.arange(n) * 11.0


@pytest.mark.parametrize(
    ("change", "fatal"),
    [
        (lambda s: s * 0.1, True),  # a unit step
        (lambda s: s * 10.0, True),
        (lambda s: np.full_like(s, 2.5), True),  # a constant at a plausible value
        (lambda s: np.random.default_rng(1).uniform(1.0, 4.0, s.shape).astype(np.float32), True),  # noise, same range
        (lambda s: s * 0.45, False),  # a slice without waves reads about half (driver off, simulated): physics, a warning
    ],
)
def test_a_slice_unlike_the_others_is_named(change, fatal):
    kpa = _smooth_slices(4)
    valid = np.ones(kpa.shape, bool)
    kpa[2] = change(kpa[2])
    (finding,) = slice_value_findings(_Geom(4), "series 500", kpa, valid)
    assert finding.flag == "slice_values_implausible" and finding.indeterminate is fatal
    assert "slice 3 (22.0 mm)" in finding.message and "slice 1 " not in finding.message


def test_slices_that_vary_like_a_real_exam_are_not_flagged():
    """Per-slice body medians of one exam vary: 0.87-1.17 of the others on 100 simulated exams; the
    real GE exam's body p25-p75 is 1.83-2.83 kPa. A 1.6x slice is still a liver exam."""
    kpa = _smooth_slices(8, seed=3)
    kpa[0] *= 1.6
    kpa[7] *= 0.7
    assert slice_value_findings(_Geom(8), "series 500", kpa, np.ones(kpa.shape, bool)) == []


def test_a_shifted_twin_is_moved_back_and_another_slices_twin_is_a_swap():
    rng = np.random.default_rng(2)
    plain = rng.integers(150, 700, size=(3, 40, 50)).astype(np.uint16)
    hatch = np.zeros(plain.shape[1:], bool)
    hatch[::6] = True
    masked = np.where(hatch, 800, plain).astype(np.uint16)
    shifted = masked.copy()
    shifted[1] = np.roll(masked[1], 1, axis=1)
    aligned = align_twin(_Geom(3), "series 14", plain, shifted)
    assert aligned.usable and [f.flag for f in aligned.findings] == ["masked_twin_realigned"]
    assert np.array_equal(aligned.masked[1][:, :-1], masked[1][:, :-1])  # the column moved out is unknown (0)
    swapped = masked[[0, 2, 1]]
    result = align_twin(_Geom(3), "series 14", plain, swapped)
    assert not result.usable and result.findings[0].flag == "slice_order_doubtful" and result.findings[0].indeterminate


# ------------------------------------------------------------------ whole exams
@pytest.fixture()
def sim_ge(simulated_ge_exam, tmp_path):
    """A writable copy of the realistic simulated GE exam, its reader ROI and clean measurement."""
    folder = tmp_path / "sim"
    shutil.copytree(simulated_ge_exam / "dicom", folder)
    roi = simulated_ge_exam / "roi.seg.nrrd"
    clean = process_exam(folder, roi).measurement
    assert clean.status == "ok" and not NEW_FLAGS & set(clean.flags)
    return folder, roi, clean


@pytest.fixture()
def siemens(tmp_path):
    fx = make_siemens_exam(tmp_path / "sie", seed=22, rows=96, cols=128)
    roi_file = tmp_path / "sie-roi.seg.nrrd"
    write_seg_nrrd(roi_file, ~fx.low_confidence & fx.liver[None], read_exam(fx.path).geometry)
    clean = process_exam(fx.path, roi_file).measurement
    assert clean.status == "ok" and not NEW_FLAGS & set(clean.flags)
    return fx.path, roi_file, clean


@pytest.mark.parametrize("mutate", [m_swap_positions, m_reverse_positions, m_swap_slice_pixels])
def test_swapped_or_reversed_slices_make_a_realistic_exam_indeterminate(sim_ge, mutate):
    folder, roi, _ = sim_ge
    mutate(folder, random.Random(4))
    m = process_exam(folder, roi).measurement
    assert m.status == "indeterminate" and m.reason_flag == "slice_order_doubtful"


@pytest.mark.parametrize("mutate", [m_swap_positions, m_reverse_positions, m_swap_slice_pixels])
def test_swapped_slices_against_the_masked_twin_are_indeterminate(siemens, mutate):
    """Reversed positions were refused as 'a repeat acquisition' before (the twin's values no longer
    matched in place): they are one acquisition whose slices disagree."""
    folder, roi, _ = siemens
    mutate(folder, random.Random(5))
    m = process_exam(folder, roi).measurement
    assert m.status == "indeterminate" and m.reason_flag == "slice_order_doubtful"


def test_swapped_positions_on_an_exam_without_anatomy_are_still_a_warning(tmp_path):
    """The small GE fixture has the same body on every slice and noise for stiffness: only the
    instance numbering tells (the confidence series numbers its slices in the other order)."""
    fx = make_ge_exam(tmp_path / "ge", seed=21)
    m_swap_positions(fx.path, random.Random(1))
    (finding,) = [f for f in read_exam(fx.path).findings if f.flag == "slice_order_doubtful"]
    assert not finding.indeterminate and "Confidence" in finding.message


@pytest.mark.parametrize("shift_seed", [0, 1, 3])
def test_a_twin_shifted_by_a_pixel_is_realigned_and_measures_as_before(siemens, shift_seed):
    """A twin 1 px off used to turn 91 % of the ROI into 'hatch' and stay ok."""
    folder, roi, clean = siemens
    m_twin_shift(folder, random.Random(shift_seed))
    m = process_exam(folder, roi).measurement
    assert m.status == "ok" and "masked_twin_realigned" in m.flags and "roi_outside_confidence" not in m.flags
    assert m.mean_kpa == pytest.approx(clean.mean_kpa, rel=0.01) and m.pooled.area_cm2 == pytest.approx(clean.pooled.area_cm2, rel=0.02)


@pytest.mark.parametrize("mutate", [m_slice_unit_step, m_slice_constant, m_slice_noise])
def test_one_slice_with_changed_values_makes_the_exam_indeterminate_naming_the_slice(sim_ge, mutate):
    folder, roi, _ = sim_ge
    described = mutate(folder, random.Random(6))
    assert "not applied" not in described
    m = process_exam(folder, roi).measurement
    assert m.status == "indeterminate" and m.reason_flag == "slice_values_implausible" and "slice " in m.reason


def test_a_clean_realistic_exam_raises_none_of_these_findings(simulated_ge_exam):
    exam = read_exam(simulated_ge_exam / "dicom")
    assert not NEW_FLAGS & {f.flag for f in exam.findings}
