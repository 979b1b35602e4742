"""Confidence masks from burnt-in hatch lines: the line pattern is found exactly, and the recovered
mask matches the true one on patchy (realistic) confidence maps far better than closing the hatch."""

import numpy as np
import pytest
from scipy import ndimage

from mrefibrosis.reading.hatch import LineFamily, draw_hatch, estimate_period, fit_line_families, low_confidence_from_lines, low_confidence_region


def _patchy_exam(seed: int, shape=(3, 160, 200)):
    """A body ellipse with a patchy low-confidence map (smoothed noise), as the realistic simulator's."""
    rng = np.random.default_rng(seed)
    s, r, c = shape
    j, i = np.mgrid[0:r, 0:c]
    body = np.broadcast_to(((j - r / 2) / (0.45 * r)) ** 2 + ((i - c / 2) / (0.45 * c)) ** 2 < 1, shape)
    field = ndimage.gaussian_filter(rng.normal(size=shape), (0, 4, 4))
    low = body & (field < np.percentile(field[body], 55))
    stiffness = np.where(body, rng.integers(150, 400, shape), 0).astype(np.uint16)
    return body, low, stiffness


def _recall_precision(estimate_low, truth_low, body):
    est_conf, true_conf = body & ~estimate_low, body & ~truth_low
    tp = (est_conf & true_conf).sum()
    return tp / true_conf.sum(), tp / max(1, est_conf.sum())


@pytest.mark.parametrize("period,width,cross,phase", [(6, 1, True, 4), (8, 2, False, 3), (9, 1, False, 0), (10, 2, True, 1)])
def test_line_families_are_found_and_the_mask_recovered(period, width, cross, phase):
    body, low, stiffness = _patchy_exam(period)
    masked = draw_hatch(stiffness, low, 800, period, width, cross, phase)
    hatch = masked != stiffness
    families = fit_line_families(hatch)
    start = (-phase) % period  # draw_hatch puts lines where (t + phase) mod period < width
    expected = {LineFamily("diagonal", period, start, width)}
    if cross:
        expected.add(LineFamily("antidiagonal", period, start, width))
    assert set(families) == expected

    new = low_confidence_from_lines(hatch, body, families)
    old = low_confidence_region(hatch, estimate_period(hatch))
    r_new, p_new = _recall_precision(new, low, body)
    r_old, _ = _recall_precision(old, low, body)
    assert r_new > 0.85 and p_new > 0.85, (r_new, p_new)
    assert r_new > r_old + 0.05  # closing + widening loses much of a patchy confident area
    assert not (new & ~low & hatch).any()  # a drawn line pixel is never called confident


def test_an_irregular_hatch_is_not_taken_for_a_pattern():
    rng = np.random.default_rng(3)
    hatch = rng.random((2, 120, 120)) < 0.05
    assert fit_line_families(hatch) == []
    assert fit_line_families(np.zeros((1, 50, 50), bool)) == []
