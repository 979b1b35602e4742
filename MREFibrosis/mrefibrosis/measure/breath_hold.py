"""Slices whose phase offsets disagree on the magnitude images (breath-hold mismatch between
offsets, domain doc section 6): the automatic ROI leaves them out, and an ROI drawn on them is
flagged, or indeterminate when it lies on nothing else.

Why: the waves of such a slice mix anatomy from two positions, and the scanner's inversion may
still call its stiffness confident. A reader who sees the liver move between offsets leaves the
slice out. Evidence for the threshold (`reading.offset_agreement`, the lowest correlation of one
offset with the mean of the others): on the simulated training cohort (seed 1000, 240 exams of both
vendor styles) the 1,155 slices of exams without a breath-hold mismatch scored 0.908-0.997 (the
noisier Siemens-style magnitudes lowest), the 21 slices with anatomy moved by 10-20 mm on half their
offsets -0.23 to 0.34, and the other slices of those exams 0.937 or more. The default (0.7,
`qc.MIN_OFFSET_AGREEMENT`) sits in the gap, nearer the good slices because motion through the slice
(the usual kind on patients) changes the anatomy less than the simulated shift. It is assumed, not
checked on patients, and can be changed per call (`QcSettings.min_offset_agreement`).
"""

from __future__ import annotations

import numpy as np

from ..reading.exam import Exam
from .qc import MIN_OFFSET_AGREEMENT, QcFinding

FLAG_OFFSETS_MISREGISTERED = "offsets_misregistered"


def misregistered_slices(exam: Exam, min_agreement: float = MIN_OFFSET_AGREEMENT) -> np.ndarray:
    """(slices,) bool: the slices whose phase offsets disagree; all False without per-offset images."""
    if exam.offset_agreement is None:
        return np.zeros(exam.n_slices, bool)
    agreement = np.asarray(exam.offset_agreement, float)
    return np.isfinite(agreement) & (agreement < min_agreement)


def _names(slices: np.ndarray) -> str:
    idx = np.flatnonzero(slices)
    return ("slice " if idx.size == 1 else "slices ") + ", ".join(str(int(k)) for k in idx)


def misregistration_findings(exam: Exam, roi: np.ndarray, min_agreement: float = MIN_OFFSET_AGREEMENT) -> list[QcFinding]:
    """A warning naming the misregistered slices; indeterminate when the ROI lies only on them, or
    when every slice is misregistered (then no ROI can be measured)."""
    bad = misregistered_slices(exam, min_agreement)
    if not bad.any():
        return []
    why = "their phase offsets disagree on the magnitude images (breath-hold mismatch)"
    drawn = int(roi.sum())
    on_bad = int(roi[bad].sum())
    if bad.all():
        return [QcFinding(FLAG_OFFSETS_MISREGISTERED, f"every slice is misregistered: {why}; indeterminate", True)]
    if drawn and on_bad == drawn:
        return [QcFinding(FLAG_OFFSETS_MISREGISTERED, f"the ROI lies only on {_names(bad)}: {why}; indeterminate", True)]
    if on_bad:
        return [QcFinding(FLAG_OFFSETS_MISREGISTERED, f"{on_bad / drawn:.0%} of the ROI lies on {_names(bad)}: {why}", False)]
    return [QcFinding(FLAG_OFFSETS_MISREGISTERED, f"{_names(bad)} not measured: {why}", False)]
