"""The ground-truth reader: what a careful radiologist draws on a simulated exam, and when they
report `indeterminate` instead of a number (domain doc sections 2 and 6)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..measure.roi_stats import MIN_AREA_CM2
from . import anatomy as A
from .synth_exam import SynthExam

READER_EDGE_MM = 10.0
READER_VESSEL_MM = 5.0
READER_DRIVER_MM = 35.0
MIN_PIECE_CM2 = 1.0

# Failures a reader recognises on the other images and reports as indeterminate whatever the
# confidence map shows (it may show false patches): a dark liver on the magnitude images, flat
# wave images. Breath-hold mismatch is recognised per slice (those slices are left out).
READER_REASONS = {
    "iron_overload": "liver dark on the magnitude images (likely iron overload): phase is noise",
    "driver_off": "no shear waves on the wave images (driver not attached or off)",
}


def reader_roi(exam: SynthExam, valid: np.ndarray | None = None) -> np.ndarray:
    """What a careful reader draws: liver, >= 95 % confidence, >= 1 cm inside the liver edge, away from
    vessels, gallbladder and the driver, pieces under 1 cm2 dropped; nothing on an exam or slice the
    reader rejects as a technical failure."""
    st = exam.settings
    px = st.spacing_mm
    roi = np.zeros(exam.labels.shape, bool)
    if exam.failure in READER_REASONS:
        return roi
    min_px = MIN_PIECE_CM2 * 100.0 / (px * px)
    for k in range(exam.labels.shape[0]):
        lab = exam.labels[k]
        liver = lab == A.LIVER
        if not liver.any() or k in exam.rejected_slices:
            continue
        inside = ndimage.distance_transform_edt(liver) * px >= READER_EDGE_MM
        tubes = (lab == A.VESSEL) | (lab == A.GALLBLADDER)
        away = ndimage.distance_transform_edt(~tubes) * px >= READER_VESSEL_MM
        far = ndimage.distance_transform_edt(~exam.driver[k]) * px >= READER_DRIVER_MM
        r = inside & away & far & (exam.confidence[k] >= st.confidence_threshold)
        if valid is not None:
            r &= valid[k]
        comp, n = ndimage.label(r)
        if n:
            sizes = ndimage.sum(r, comp, index=np.arange(1, n + 1))
            r = np.isin(comp, 1 + np.flatnonzero(sizes >= min_px))
        roi[k] = r
    return roi


def reader_decision(exam: SynthExam, roi: np.ndarray) -> tuple[bool, str | None]:
    """(indeterminate?, one-line reason) as the careful reader would report this exam."""
    if exam.failure in READER_REASONS:
        return True, READER_REASONS[exam.failure]
    area = float(roi.sum() * exam.settings.spacing_mm**2 / 100.0)
    if area < MIN_AREA_CM2:  # the engine's own "no numbers from a few pixels" rule
        why = {
            "ascites": "ascites damps the waves: no confident liver area",
            "very_stiff": "waves too long in a very stiff liver: no confident liver area",
            "breath_hold": "breath-hold mismatch between offsets: no confident liver area",
        }.get(exam.failure or "", "no confident liver area away from the edge and the driver")
        return True, why
    return False, None
