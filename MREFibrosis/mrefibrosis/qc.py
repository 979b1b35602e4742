"""Quality checks a careful reader makes before reporting a number (domain doc section 6).

Why: the most common MRE failure, liver iron overload, collapses the liver's GRE signal while the
confidence map may still show false patches, so an ROI can be drawn and a number computed that
means nothing. Readers look at the magnitude images first: a liver darker than it should be relative
to the rest of the body means the exam is indeterminate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .exam import Exam

FLAG_DARK_LIVER = "liver_dark_on_magnitude"

# Median ROI magnitude / 95th percentile of the body's magnitude. Evidence: the real GE exam reads
# 0.68 over the reader's ROI; simulated normal livers 0.6-0.75; simulated iron overload (liver
# signal x 0.06) under 0.12. The default sits well between them (assumed: not yet checked against
# patients with measured R2*), and can be changed per call.
DARK_LIVER_RATIO = 0.25
BODY_FRACTION_OF_P99 = 0.1  # magnitude above this share of the slice's 99th percentile = body


@dataclass(frozen=True)
class QcSettings:
    dark_liver_ratio: float = DARK_LIVER_RATIO


def liver_brightness(exam: Exam, roi: np.ndarray) -> float | None:
    """Median over slices of (median magnitude in the ROI / 95th percentile of the body's magnitude);
    None without magnitude images or ROI."""
    if exam.magnitude is None or exam.magnitude.shape != roi.shape or not roi.any():
        return None
    ratios = []
    for k in range(roi.shape[0]):
        if not roi[k].any():
            continue
        mag = np.nan_to_num(exam.magnitude[k].astype(np.float64))
        top = np.percentile(mag, 99)
        body = mag > BODY_FRACTION_OF_P99 * top
        if top <= 0 or not body.any():
            continue
        ratios.append(float(np.median(mag[roi[k]]) / np.percentile(mag[body], 95)))
    return float(np.median(ratios)) if ratios else None


def dark_liver_reason(exam: Exam, roi: np.ndarray, settings: QcSettings = QcSettings()) -> str | None:
    """One-line reason when the ROI is too dark on the magnitude images to trust its stiffness."""
    ratio = liver_brightness(exam, roi)
    if ratio is None or ratio >= settings.dark_liver_ratio:
        return None
    return (f"liver dark on the magnitude images ({ratio:.2f} of the body's bright tissue, under "
            f"{settings.dark_liver_ratio:g}): likely iron overload, indeterminate")
