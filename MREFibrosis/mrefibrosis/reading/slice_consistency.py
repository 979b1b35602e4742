"""Whether each elastogram slice is the slice its header says it is, and holds values like the others.

Why: a file's header can be wrong in ways that leave a readable exam whose number is silently off.
Two stiffness files with swapped positions, or a reversed series, move the ROI onto another slice's
values (-5 to -12 % in a mutation campaign); one slice whose values were changed (a unit step, a
constant, noise) moved the pooled mean by +86-91 %. The exam's other series are witnesses: the
confidence map of a slice has the same processed region as its elastogram, a Siemens-style masked
twin holds the same stored values outside its hatch, and the series of one acquisition number their
images in the same slice order. And the slices of one exam are alike: on the simulator's 100 held-out
exams a slice's body median lies within 0.87-1.17 of the other slices', its values correlate 0.97 or
more with their neighbours (real GE: correlation length 10 px, so about 0.99 at 1 px).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from .findings import FLAG_SLICE_ORDER, FLAG_SLICE_VALUES, FLAG_TWIN_REALIGNED, ReaderFinding
from .geometry import Geometry

# A slice's body median may differ from the other slices' by this factor before a warning (assumed;
# simulated exams stay within 0.87-1.17; a slice without waves, driver off, reads 0.46 of the others:
# physics, so a warning), and by the second before the exam is indeterminate (a unit step is 10, a
# 10-Pa intercept of 1000 moves 2 kPa to 12 kPa; no tissue makes a whole slice 4x the others).
MAX_SLICE_MEDIAN_RATIO = 2.0
MAX_PHYSICAL_SLICE_MEDIAN_RATIO = 4.0
# Neighbouring pixels of an elastogram correlate (0.97+ simulated, about 0.99 real): a slice far
# below while the others are above the second figure holds no inversion texture (noise).
MIN_NOISE_NEIGHBOUR_CORRELATION = 0.5
TEXTURED_NEIGHBOUR_CORRELATION = 0.8
MIN_PIXELS_TO_JUDGE = 200
# The processed region of a slice's confidence map is its elastogram's (IoU 0.98-1.0 simulated):
# another slice's region that matches clearly better is evidence of a swap; adjacent simulated
# slices match 0.975-0.995, real anatomy far less.
MIN_CROSS_SUPPORT_IOU = 0.98
SUPPORT_IOU_MARGIN = 0.01
# A masked twin repeats the plain map's stored values outside its thin hatch lines (75-100 %).
TWIN_ALIGNED_SHARE = 0.3
MAX_TWIN_SHIFT_PX = 2


def _slice_name(geom: Geometry, k: int) -> str:
    return f"slice {k + 1} ({geom.slice_locations_mm[k]:.1f} mm)"


# ------------------------------------------------------------------------------ header order
def _instance_ranks(headers: list[Dataset]) -> tuple[int, ...] | None:
    """The rank of each slice's InstanceNumber, slices in position order; None when not all distinct."""
    numbers = []
    for h in headers:
        try:
            numbers.append(int(h.get("InstanceNumber")))
        except (TypeError, ValueError):
            return None
    if len(set(numbers)) != len(numbers):
        return None
    return tuple(int(r) for r in np.argsort(np.argsort(numbers)))


def instance_order_findings(label: str, headers: list[Dataset], witnesses: list[tuple[str, list[Dataset]]]) -> list[ReaderFinding]:
    """A warning when the elastogram numbers its slices in another order than a one-image-a-slice
    series of the same acquisition (confidence, masked twin): swapped or reversed positions."""
    ours = _instance_ranks(headers)
    if ours is None or len(ours) < 2:
        return []
    for name, other in witnesses:
        theirs = _instance_ranks(other)
        if theirs is None or len(theirs) != len(ours) or theirs == ours:
            continue
        return [
            ReaderFinding(
                FLAG_SLICE_ORDER,
                f"{label}: its images are numbered in another slice order than {name}'s (swapped or reversed slice positions?); "
                "check the export before trusting the number",
            )
        ]
    return []


# ------------------------------------------------------------------------------ processed region
def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int(np.count_nonzero(a | b))
    return float(np.count_nonzero(a & b)) / union if union else 1.0


def support_swap_findings(geom: Geometry, label: str, support: np.ndarray, witness_name: str, witness_support: np.ndarray) -> list[ReaderFinding]:
    """Indeterminate when an elastogram slice's processed region is clearly another position's
    region in the witness (a confidence map): its pixels belong to another slice."""
    n = support.shape[0]
    if n < 2 or witness_support.shape != support.shape:
        return []
    wrong = []
    for k in range(n):
        own = _iou(support[k], witness_support[k])
        others = [(_iou(support[k], witness_support[j]), j) for j in range(n) if j != k]
        best, j = max(others)
        if best >= MIN_CROSS_SUPPORT_IOU and best > own + SUPPORT_IOU_MARGIN:
            wrong.append(f"{_slice_name(geom, k)} matches {witness_name} at {geom.slice_locations_mm[j]:.1f} mm")
    if not wrong:
        return []
    return [
        ReaderFinding(
            FLAG_SLICE_ORDER,
            f"{label}: {'; '.join(wrong)}: the elastogram's slice positions are swapped; indeterminate, re-export the exam",
            indeterminate=True,
        )
    ]


# ------------------------------------------------------------------------------ masked twin
@dataclass(frozen=True)
class TwinAlignment:
    masked: np.ndarray  # the masked twin on the plain map's pixels, slice by slice
    findings: list[ReaderFinding]
    usable: bool  # False: the twin matches the plain map at no small shift; its hatch cannot be taken from a difference


def _equal_share(a: np.ndarray, b: np.ndarray) -> float:
    both = (a > 0) & (b > 0)
    n = int(np.count_nonzero(both))
    return float(np.count_nonzero(a[both] == b[both])) / n if n >= 100 else 1.0


def _shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """image moved by (dy, dx) pixels; uncovered pixels are 0 (no value)."""
    out = np.zeros_like(image)
    rows, cols = image.shape
    src = image[max(0, -dy) : rows - max(0, dy), max(0, -dx) : cols - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


def twin_match(plain_slice: np.ndarray, masked: np.ndarray, k: int) -> tuple[int, tuple[int, int], float]:
    """(masked slice, shift, equal share) that repeats `plain_slice` best: slice k as stored, else
    slice k moved by up to MAX_TWIN_SHIFT_PX, else another slice as stored."""
    share = _equal_share(plain_slice, masked[k]) if k < masked.shape[0] else 0.0
    if share >= TWIN_ALIGNED_SHARE:
        return k, (0, 0), share
    candidates = [(share, k, (0, 0))]
    if k < masked.shape[0]:
        candidates += [
            (_equal_share(plain_slice, _shifted(masked[k], dy, dx)), k, (dy, dx))
            for dy in range(-MAX_TWIN_SHIFT_PX, MAX_TWIN_SHIFT_PX + 1)
            for dx in range(-MAX_TWIN_SHIFT_PX, MAX_TWIN_SHIFT_PX + 1)
            if (dy, dx) != (0, 0)
        ]
    candidates += [(_equal_share(plain_slice, masked[j]), j, (0, 0)) for j in range(masked.shape[0]) if j != k]
    best, j, shift = max(candidates, key=lambda c: c[0])
    return j, shift, best


def is_twin(plain: np.ndarray, masked: np.ndarray) -> bool:
    """Whether every plain slice is repeated by a masked slice (in place, shifted by a pixel or two,
    or at another position): a masked twin, however damaged, not a repeat acquisition."""
    return all(twin_match(plain[k], masked, k)[2] >= TWIN_ALIGNED_SHARE for k in range(plain.shape[0]))


def align_twin(geom: Geometry, label: str, plain: np.ndarray, masked: np.ndarray) -> TwinAlignment:
    """The masked twin slice by slice on the plain map: as stored when it repeats the plain values;
    moved back when it does so only at a shift of a pixel or two (a twin 1 px off hid 91 % of an ROI
    behind 'hatch' before); another slice's twin is a swap (indeterminate)."""
    out = masked.copy()
    moved, unmatched, swapped = [], [], []
    for k in range(plain.shape[0]):
        j, shift, share = twin_match(plain[k], masked, k)
        if share < TWIN_ALIGNED_SHARE:
            unmatched.append(_slice_name(geom, k))
        elif j != k:
            swapped.append(f"{_slice_name(geom, k)} (its twin lies at {geom.slice_locations_mm[j]:.1f} mm)")
        elif shift != (0, 0):
            out[k] = _shifted(masked[k], *shift)
            moved.append(f"{_slice_name(geom, k)} by {shift[0]:+d} rows, {shift[1]:+d} columns")
    findings = []
    if moved:
        findings.append(ReaderFinding(FLAG_TWIN_REALIGNED, f"{label}: the masked twin is shifted against the elastogram; realigned on {', '.join(moved)}"))
    if swapped:
        findings.append(
            ReaderFinding(
                FLAG_SLICE_ORDER,
                f"{label}: the elastogram and its masked twin disagree on which slice lies where ({', '.join(swapped)}): "
                "slice positions are swapped; indeterminate, re-export the exam",
                indeterminate=True,
            )
        )
    return TwinAlignment(out, findings, usable=not unmatched and not swapped)


# ------------------------------------------------------------------------------ values per slice
def _neighbour_correlation(values: np.ndarray, mask: np.ndarray) -> float:
    pairs_a, pairs_b = [], []
    for a, b, ma, mb in (
        (values[:, :-1], values[:, 1:], mask[:, :-1], mask[:, 1:]),
        (values[:-1, :], values[1:, :], mask[:-1, :], mask[1:, :]),
    ):
        both = ma & mb
        pairs_a.append(a[both])
        pairs_b.append(b[both])
    x, y = np.concatenate(pairs_a).astype(np.float64), np.concatenate(pairs_b).astype(np.float64)
    if x.size < MIN_PIXELS_TO_JUDGE or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def slice_value_findings(geom: Geometry, label: str, kpa: np.ndarray, valid: np.ndarray, max_ratio: float = MAX_SLICE_MEDIAN_RATIO) -> list[ReaderFinding]:
    """A finding when one slice's values are unlike the exam's other slices: its median off by more
    than `max_ratio` (a warning; beyond what tissue does, indeterminate), constant or without the
    inversion's texture (noise; indeterminate)."""
    n = kpa.shape[0]
    judged = [k for k in range(n) if np.count_nonzero(valid[k]) >= MIN_PIXELS_TO_JUDGE]
    if len(judged) < 2:
        return []
    medians = {k: float(np.median(kpa[k][valid[k]])) for k in judged}
    spreads = {k: float(np.percentile(kpa[k][valid[k]], 75) - np.percentile(kpa[k][valid[k]], 25)) for k in judged}
    texture = {k: _neighbour_correlation(kpa[k], valid[k]) for k in judged}
    odd, fatal = [], False
    for k in judged:
        others = [j for j in judged if j != k]
        ref_median = float(np.median([medians[j] for j in others]))
        ref_spread = float(np.median([spreads[j] for j in others]))
        ref_texture = float(np.nanmedian([texture[j] for j in others])) if any(np.isfinite(texture[j]) for j in others) else float("nan")
        why = None
        ratio = medians[k] / ref_median if ref_median > 0 else 1.0
        if ref_spread > 0 and spreads[k] <= 1e-3 * ref_spread:
            why, fatal = f"constant values ({medians[k]:.3g} kPa)", True
        elif ref_texture >= TEXTURED_NEIGHBOUR_CORRELATION and texture[k] < MIN_NOISE_NEIGHBOUR_CORRELATION:
            why, fatal = f"no stiffness texture (neighbouring pixels correlate {texture[k]:.2f}, {ref_texture:.2f} in the other slices): noise", True
        elif not (1.0 / max_ratio <= ratio <= max_ratio):
            why = f"median {medians[k]:.3g} kPa against {ref_median:.3g} kPa in the other slices"
            fatal |= not (1.0 / MAX_PHYSICAL_SLICE_MEDIAN_RATIO <= ratio <= MAX_PHYSICAL_SLICE_MEDIAN_RATIO)
        if why:
            odd.append(f"{_slice_name(geom, k)}: {why}")
    if not odd:
        return []
    if len(odd) > len(judged) // 2:  # no majority to hold them against: say that the slices disagree
        odd = [f"{len(odd)} of {len(judged)} slices differ from each other ({'; '.join(odd)})"]
    verdict = "indeterminate, check the export" if fatal else "a failed inversion or a changed export; check that slice"
    return [ReaderFinding(FLAG_SLICE_VALUES, f"{label}: values unlike the exam's other slices on {'; '.join(odd)}: {verdict}", indeterminate=fatal)]
