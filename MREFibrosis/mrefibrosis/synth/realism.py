"""How much a (simulated) exam looks like a real scanner's: the texture figures of the domain doc,
section 5, computed on an exam as the engine reads it, and the bounds a realistic simulator must meet.

Why this exists: a model trained on exams that do not look like a real scanner's learns shortcuts
(one big confident region, soft tissue around the liver) that fail on real exams. The figures are
defined in the domain doc; this is the project's own implementation of those definitions, used by
`benchmarks/bench_realism.py` and the simulator's tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# The real GE MR-Touch exam (domain doc section 5).
REAL_GE = {
    "p5": 1.29,
    "p25": 1.83,
    "p50": 2.26,
    "p75": 2.83,
    "p95": 4.15,
    "corr_len_mm": 15.6,
    "grad_kpa_per_mm": 0.066,
    "valid_share": 0.12,
    "valid_left_share": 0.83,
    "valid_pieces_per_slice": 3.5,
    "valid_piece_cm2": 5.5,
    "liver_mag_over_body_p95": 0.68,
    "mag_offset_agreement": 0.643,
    "mag_offset_intensity_cv": 0.043,
}


def _relative(name: str, tolerance: float) -> tuple[float, float]:
    return REAL_GE[name] * (1 - tolerance), REAL_GE[name] * (1 + tolerance)


# Bounds on the median over exams that a realistic GE-style cohort must meet (issue #12).
BOUNDS = {
    "p5": _relative("p5", 0.25),
    "p25": _relative("p25", 0.25),
    "p50": _relative("p50", 0.20),
    "p75": _relative("p75", 0.25),
    "p95": _relative("p95", 0.25),
    "corr_len_mm": _relative("corr_len_mm", 0.30),
    "grad_kpa_per_mm": _relative("grad_kpa_per_mm", 0.35),
    "valid_share": (0.05, 0.20),
    "valid_left_share": (0.65, 0.95),
    "valid_pieces_per_slice": (2.0, 8.0),
    "valid_piece_cm2": _relative("valid_piece_cm2", 0.60),
    "liver_mag_over_body_p95": _relative("liver_mag_over_body_p95", 0.25),
    # how the phase offsets' magnitude images differ on slices that did not move (issue #30): the real
    # GE exam's slices span 0.62-0.76 and 0.017-0.072; a simulator whose offsets differ only by
    # thermal noise scores 0.95-0.99 and 0
    "mag_offset_agreement": (0.55, 0.80),
    "mag_offset_intensity_cv": (0.015, 0.08),
}
LABEL_ROWS = 20  # bottom rows that may hold a burnt-in text label on GE stiffness images
MIN_PIECE_CM2 = 1.0
MAX_LAG_PX = 60


def correlation_length_px(values: np.ndarray, body: np.ndarray) -> int:
    """Lag (pixels) at which the map's autocorrelation, averaged over the four axis directions, first
    falls below 0.5; the map is mean-removed over the body and zero outside it."""
    x = np.where(body, values - values[body].mean(), 0.0)
    spec = np.fft.rfft2(x, s=(2 * x.shape[0], 2 * x.shape[1]))
    ac = np.fft.irfft2(spec * np.conj(spec), s=(2 * x.shape[0], 2 * x.shape[1]))
    ac = ac / ac[0, 0]
    for lag in range(1, MAX_LAG_PX):
        if (ac[lag, 0] + ac[-lag, 0] + ac[0, lag] + ac[0, -lag]) / 4.0 < 0.5:
            return lag
    return MAX_LAG_PX


@dataclass
class SliceFigures:
    body_kpa: np.ndarray
    corr_len_mm: float
    grad_kpa_per_mm: float
    valid_share: float
    valid_left_share: float
    pieces: int
    piece_cm2: list
    mag_ratio: float | None


def slice_figures(
    kpa: np.ndarray, body: np.ndarray, confident: np.ndarray, spacing_mm: float, magnitude: np.ndarray | None = None, roi: np.ndarray | None = None
) -> SliceFigures:
    """Figures of one slice. `body` = pixels where the scanner reports stiffness."""
    body = body.copy()
    body[-LABEL_ROWS:, :] = False
    ok = body & confident
    gy, gx = np.gradient(np.where(body, kpa, np.nan))
    interior = ndimage.binary_erosion(body, iterations=3)
    grad = np.hypot(gx, gy)[interior]
    cols = np.flatnonzero(body.any(axis=0))
    middle = (cols[0] + cols[-1]) // 2 if cols.size else body.shape[1] // 2
    comp, n = ndimage.label(ok)
    areas = np.asarray(ndimage.sum(ok, comp, np.arange(1, n + 1))) * spacing_mm**2 / 100.0 if n else np.zeros(0)
    big = [float(a) for a in areas if a >= MIN_PIECE_CM2]
    ratio = None
    if magnitude is not None and roi is not None and roi.any() and body.any():
        ratio = float(np.median(magnitude[roi]) / np.percentile(magnitude[body], 95))
    return SliceFigures(
        body_kpa=kpa[body],
        corr_len_mm=correlation_length_px(kpa, body) * spacing_mm,
        grad_kpa_per_mm=float(np.nanmedian(grad)) / spacing_mm if grad.size else float("nan"),
        valid_share=float(ok.sum() / max(body.sum(), 1)),
        valid_left_share=float(ok[:, :middle].sum() / max(ok.sum(), 1)),
        pieces=len(big),
        piece_cm2=big,
        mag_ratio=ratio,
    )


def exam_figures(
    kpa: np.ndarray, body: np.ndarray, confident: np.ndarray, spacing_mm: float, magnitude: np.ndarray | None = None, roi: np.ndarray | None = None
) -> dict:
    """The twelve elastogram and magnitude figures of one exam ((slices, rows, cols) arrays): percentiles over all body pixels,
    medians over slices (pieces: median over all pieces)."""
    per = [
        slice_figures(kpa[k], body[k], confident[k], spacing_mm, None if magnitude is None else magnitude[k], None if roi is None else roi[k])
        for k in range(kpa.shape[0])
    ]
    values = np.concatenate([s.body_kpa for s in per])
    p = np.percentile(values, [5, 25, 50, 75, 95]) if values.size else [float("nan")] * 5
    pieces = [a for s in per for a in s.piece_cm2]
    ratios = [s.mag_ratio for s in per if s.mag_ratio is not None]
    return {
        "p5": float(p[0]),
        "p25": float(p[1]),
        "p50": float(p[2]),
        "p75": float(p[3]),
        "p95": float(p[4]),
        "corr_len_mm": float(np.median([s.corr_len_mm for s in per])),
        "grad_kpa_per_mm": float(np.median([s.grad_kpa_per_mm for s in per])),
        "valid_share": float(np.median([s.valid_share for s in per])),
        "valid_left_share": float(np.median([s.valid_left_share for s in per])),
        "valid_pieces_per_slice": float(np.median([s.pieces for s in per])),
        "valid_piece_cm2": float(np.median(pieces)) if pieces else 0.0,
        "liver_mag_over_body_p95": float(np.median(ratios)) if ratios else float("nan"),
    }


def _median_of_slices(values) -> float:
    finite = np.asarray(values, float)[np.isfinite(np.asarray(values, float))] if values is not None else np.zeros(0)
    return float(np.median(finite)) if finite.size else float("nan")


def figures_of_exam(exam, roi: np.ndarray | None = None) -> dict:
    """The fourteen figures of an exam as the engine read it (`mrefibrosis.reading.exam.Exam`), with the
    reader's ROI for the magnitude figure; the offset figures are the medians over slices of the
    engine's own per-slice figures (`reading.offset_agreement`, the domain doc's definitions)."""
    confident = exam.confidence_valid if exam.confidence_valid is not None else np.zeros_like(exam.valid)
    figures = exam_figures(exam.stiffness_kpa, exam.valid, confident, exam.geometry.row_spacing_mm, exam.magnitude, roi)
    figures["mag_offset_agreement"] = _median_of_slices(exam.offset_agreement)
    figures["mag_offset_intensity_cv"] = _median_of_slices(exam.offset_intensity_cv)
    return figures


def cohort_medians(per_exam: list[dict]) -> dict:
    """Median of each figure over exams (exams without a value for a figure are left out)."""
    out = {}
    for name in REAL_GE:
        vals = [f[name] for f in per_exam if f.get(name) is not None and np.isfinite(f[name])]
        out[name] = float(np.median(vals)) if vals else float("nan")
    return out


def within_bounds(figures: dict) -> dict[str, bool]:
    """Which figures lie inside their bounds."""
    return {name: bool(lo <= figures.get(name, float("nan")) <= hi) for name, (lo, hi) in BOUNDS.items()}
