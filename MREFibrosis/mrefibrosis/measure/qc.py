"""Quality checks a careful reader makes before reporting a number (domain doc section 6).

Why: the most common MRE failure, liver iron overload, collapses the liver's GRE signal while the
confidence map may still show false patches, so an ROI can be drawn and a number computed that
means nothing. Readers look at the magnitude images first: a liver darker than it should be relative
to the rest of the body means the exam is indeterminate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..reading.exam import Exam
from .driver import BODY_FRACTION_OF_P99, driver_contact, driver_share
from .reader_margins import DRIVER_MM, EDGE_MM

FLAG_DARK_LIVER = "liver_dark_on_magnitude"

# Median ROI magnitude / 95th percentile of the body's magnitude. Evidence: the real GE exam reads
# 0.68 over the reader's ROI; simulated normal livers 0.6-0.75; simulated iron overload (liver
# signal x 0.06) under 0.12. The default sits well between them (assumed: not yet checked against
# patients with measured R2*), and can be changed per call.
DARK_LIVER_RATIO = 0.25


# With a liver-aware segmenter (its predicted liver passed in). Evidence: domain doc section 6 — a
# reader reports indeterminate when the confident liver area is tiny or sits only at the liver edge.
# Simulated measurable exams keep >= 20 cm2 of confident liver and a median edge share under 10 %;
# the numbers below are assumed, not yet checked on patients.
MIN_CONFIDENT_LIVER_CM2 = 5.0  # below: indeterminate
LOW_CONFIDENT_LIVER_CM2 = 15.0  # below: warning
EDGE_SHARE_WARN = 0.5  # share of the ROI closer than EDGE_MM to the predicted liver edge: warning
EDGE_SHARE_FAIL = 0.9  # ... indeterminate
TTA_AGREEMENT_WARN = 0.7  # Dice between the plain and the shifted prediction: below it, a warning
DRIVER_SHARE_WARN = 0.5
DRIVER_SHARE_FAIL = 0.9
# Breath-hold mismatch between phase offsets (the rule and its evidence in breath_hold.py and
# docs/qc-rules.md): an offset shifted in-plane by more than this against the others ...
MAX_OFFSET_SHIFT_MM = 6.0
# ... or a slice whose offsets decorrelate this many times, and this much more, than the exam's median
OFFSET_DECORRELATION_RATIO = 3.0
OFFSET_DECORRELATION_EXCESS = 0.4
# Share of an ROI's pixels below the confidence threshold above which a warning is raised. Evidence:
# the reader's ROI on the real GE exam has 82 % of its pixels at >= 95 % confidence (domain doc
# section 1), so a few pixels outside are how readers draw (assumed; a site may lower it).
MAX_SHARE_OUTSIDE_CONFIDENCE = 0.25
# When QC leaves out more than this share of the exam's slices, the rest is not the exam: indeterminate
MAX_SHARE_SLICES_LEFT_OUT = 0.5

FLAG_SMALL_CONFIDENT_LIVER = "small_confident_liver"
FLAG_LIVER_EDGE = "roi_at_liver_edge"
FLAG_TTA = "tta_disagreement"
FLAG_UNDER_DRIVER = "roi_under_driver"


@dataclass(frozen=True)
class QcSettings:
    dark_liver_ratio: float = DARK_LIVER_RATIO
    min_confident_liver_cm2: float = MIN_CONFIDENT_LIVER_CM2
    low_confident_liver_cm2: float = LOW_CONFIDENT_LIVER_CM2
    edge_mm: float = EDGE_MM
    edge_share_warn: float = EDGE_SHARE_WARN
    edge_share_fail: float = EDGE_SHARE_FAIL
    tta_agreement_warn: float = TTA_AGREEMENT_WARN
    driver_mm: float = DRIVER_MM
    driver_share_warn: float = DRIVER_SHARE_WARN
    driver_share_fail: float = DRIVER_SHARE_FAIL
    max_offset_shift_mm: float = MAX_OFFSET_SHIFT_MM
    offset_decorrelation_ratio: float = OFFSET_DECORRELATION_RATIO
    offset_decorrelation_excess: float = OFFSET_DECORRELATION_EXCESS
    max_share_slices_left_out: float = MAX_SHARE_SLICES_LEFT_OUT
    max_share_outside_confidence: float = MAX_SHARE_OUTSIDE_CONFIDENCE


@dataclass(frozen=True)
class QcFinding:
    flag: str
    message: str
    indeterminate: bool


def confident_liver_cm2(exam: Exam, liver: np.ndarray) -> float:
    """Area of the predicted liver with valid, confident stiffness, summed over slices."""
    region = liver & exam.valid
    if exam.confidence_valid is not None:
        region &= exam.confidence_valid
    return float(region.sum() * exam.geometry.pixel_area_mm2 / 100.0)


def edge_share(exam: Exam, roi: np.ndarray, liver: np.ndarray, edge_mm: float) -> float | None:
    """Share of ROI pixels closer than edge_mm to the predicted liver's edge (None without ROI)."""
    if not roi.any():
        return None
    near = 0
    spacing = (exam.geometry.row_spacing_mm, exam.geometry.column_spacing_mm)
    for k in range(roi.shape[0]):
        if roi[k].any():
            depth = ndimage.distance_transform_edt(liver[k], sampling=spacing)
            near += int((roi[k] & (depth < edge_mm)).sum())
    return near / int(roi.sum())


def _share_finding(flag: str, share: float | None, warn: float, fail: float, within: str, where: str) -> list[QcFinding]:
    """A warning when `share` of the ROI lies too close to something a reader avoids, indeterminate
    when nearly all of it does (domain doc section 6: "sits only at the liver edge or the driver")."""
    if share is None or share < warn:
        return []
    failed = share >= fail
    message = f"{share:.0%} of the ROI lies within {within}" + (f": the confident area sits only {where}" if failed else "")
    return [QcFinding(flag, message, failed)]


def segmentation_findings(
    exam: Exam,
    roi: np.ndarray,
    liver: np.ndarray | None,
    tta_agreement: float | None,
    settings: QcSettings = QcSettings(),
    contact: np.ndarray | None = None,
) -> list[QcFinding]:
    """What a reader checks on an ROI: not right under the driver; for an automatic ROI also enough
    confident liver, an ROI not hugging the liver edge, and (with TTA) a prediction that does not
    change when the image is moved by 3 % of its width. `contact`: the exam's `driver_contact` when
    the segmenter already found it (each slice's patch depends on that slice alone)."""
    found = []
    if not roi.any():
        contact = None
    elif contact is None:
        contact = driver_contact(exam, only=roi.any(axis=(1, 2)))
    share = driver_share(exam, roi, contact, settings.driver_mm) if contact is not None else None
    found += _share_finding(
        FLAG_UNDER_DRIVER, share, settings.driver_share_warn, settings.driver_share_fail, f"{settings.driver_mm:g} mm of the driver", "under the driver"
    )
    if liver is not None:
        area = confident_liver_cm2(exam, liver)
        if area < settings.min_confident_liver_cm2:
            found.append(
                QcFinding(
                    FLAG_SMALL_CONFIDENT_LIVER,
                    f"confident liver area {area:.1f} cm2 is under {settings.min_confident_liver_cm2:g} cm2: no reliable measurement",
                    True,
                )
            )
        elif area < settings.low_confident_liver_cm2:
            found.append(QcFinding(FLAG_SMALL_CONFIDENT_LIVER, f"confident liver area only {area:.1f} cm2", False))
        share = edge_share(exam, roi, liver, settings.edge_mm)
        found += _share_finding(
            FLAG_LIVER_EDGE, share, settings.edge_share_warn, settings.edge_share_fail, f"{settings.edge_mm:g} mm of the liver edge", "at the edge"
        )
    if tta_agreement is not None and tta_agreement < settings.tta_agreement_warn:
        found.append(QcFinding(FLAG_TTA, f"the ROI changes when the image is moved by 3 % of its width (agreement {tta_agreement:.2f})", False))
    return found


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
    return (
        f"liver dark on the magnitude images ({ratio:.2f} of the body's bright tissue, under "
        f"{settings.dark_liver_ratio:g}): likely iron overload, indeterminate"
    )
