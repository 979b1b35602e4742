"""Slices whose phase offsets were acquired with the anatomy in another place (breath-hold mismatch
between offsets, domain doc section 6): the automatic ROI leaves them out, an ROI drawn on them is
flagged, and the result is indeterminate when it lies on nothing else or when most of the exam is
left out.

Why two criteria, and why these thresholds (the evidence is in docs/qc-rules.md):
- **In-plane shift** of one offset against the others (`Exam.offset_shift_mm`) above
  `MAX_OFFSET_SHIFT_MM` (6 mm, a quarter of the liver's shear wavelength at 2 kPa and 60 Hz: beyond
  it the moved offsets' waves are more than 90 degrees out of step and the first harmonic no longer
  adds up). On the real GE exam the 5 lower slices are registered to within 1.1 mm and 3 superior
  slices drift by 2.8-4.9 mm; the reader measured all 8 and the engine's number over them agrees
  with the reader's to 0.4 %, so drift of that size is not an alarm.
- **Decorrelation well beyond the exam's own floor** (`Exam.offset_agreement`): anatomy moved
  through the slice is other anatomy in the same place, which the shift cannot see. A fixed
  threshold on the correlation cannot work (real GE 0.62-0.76 on still slices, real 3 T Siemens
  0.90-0.97, simulator without offset physics 0.95-0.99), so a slice is flagged only when its
  decorrelation (1 - agreement) is both `OFFSET_DECORRELATION_RATIO` times the median of the exam's
  slices and `OFFSET_DECORRELATION_EXCESS` above it. It needs at least 3 slices with figures.
"""

from __future__ import annotations

import numpy as np

from ..reading.exam import Exam
from .qc import QcFinding, QcSettings

FLAG_OFFSETS_MISREGISTERED = "offsets_misregistered"
BREATH_HOLD_REASON = "the anatomy moved between their phase offsets (breath-hold mismatch)"
MIN_SLICES_FOR_FLOOR = 3


def decorrelation_excess(agreement: np.ndarray) -> tuple[np.ndarray, float]:
    """(per-slice decorrelation 1 - agreement, the exam's floor: its median) with NaN where a slice has
    no figure; the floor is NaN with fewer than MIN_SLICES_FOR_FLOOR figures."""
    d = 1.0 - np.asarray(agreement, float)
    finite = d[np.isfinite(d)]
    return d, float(np.median(finite)) if finite.size >= MIN_SLICES_FOR_FLOOR else float("nan")


def misregistered(agreement: np.ndarray | None, shift_mm: np.ndarray | None, qc: QcSettings = QcSettings()) -> np.ndarray:
    """The rule on per-slice figures (NaN = no figure): shifted beyond `max_offset_shift_mm`, or
    decorrelated well beyond the exam's floor. Arrays of the exam's slices; either may be None."""
    n = len(agreement) if agreement is not None else len(shift_mm) if shift_mm is not None else 0
    bad = np.zeros(n, bool)
    if shift_mm is not None:
        shift = np.asarray(shift_mm, float)
        bad |= np.isfinite(shift) & (shift > qc.max_offset_shift_mm)
    if agreement is not None:
        d, floor = decorrelation_excess(agreement)
        if np.isfinite(floor):
            with np.errstate(invalid="ignore"):
                bad |= np.isfinite(d) & (d >= qc.offset_decorrelation_ratio * floor) & (d - floor >= qc.offset_decorrelation_excess)
    return bad


def misregistered_slices(exam: Exam, qc: QcSettings = QcSettings()) -> np.ndarray:
    """(slices,) bool: the slices whose phase offsets were acquired with the anatomy moved; all False
    without per-offset images."""
    if exam.offset_agreement is None and exam.offset_shift_mm is None:
        return np.zeros(exam.n_slices, bool)
    return misregistered(exam.offset_agreement, exam.offset_shift_mm, qc)


def _names(slices: np.ndarray) -> str:
    idx = np.flatnonzero(slices)
    return ("slice " if idx.size == 1 else "slices ") + ", ".join(str(int(k)) for k in idx)  # as the CSV's slice column


def misregistration_findings(exam: Exam, roi: np.ndarray, qc: QcSettings = QcSettings()) -> list[QcFinding]:
    """A warning naming the misregistered slices; indeterminate when
    the ROI lies only on them, or when they are most of the exam (then what is left is not the exam
    the reader asked for)."""
    bad = misregistered_slices(exam, qc)
    if not bad.any():
        return []
    why = BREATH_HOLD_REASON
    drawn = int(roi.sum())
    on_bad = int(roi[bad].sum())
    n, k = exam.n_slices, int(bad.sum())
    if bad.all():
        return [QcFinding(FLAG_OFFSETS_MISREGISTERED, f"every slice is misregistered: {why}; indeterminate", True)]
    if k / n > qc.max_share_slices_left_out:
        return [QcFinding(FLAG_OFFSETS_MISREGISTERED, f"{k} of {n} slices are misregistered ({_names(bad)}): {why}; indeterminate", True)]
    if drawn and on_bad == drawn:
        return [QcFinding(FLAG_OFFSETS_MISREGISTERED, f"the ROI lies only on {_names(bad)}: {why}; indeterminate", True)]
    if on_bad:
        return [QcFinding(FLAG_OFFSETS_MISREGISTERED, f"{on_bad / drawn:.0%} of the ROI lies on {_names(bad)}: {why}", False)]
    return [QcFinding(FLAG_OFFSETS_MISREGISTERED, f"{_names(bad)} not measured: {why}", False)]
