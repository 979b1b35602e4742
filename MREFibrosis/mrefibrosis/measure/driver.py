"""Where the driver touched the body, found from the wave amplitude, and how much of an ROI lies
right under it.

Why: the passive driver sits on the anterior body wall (domain doc section 1) and the waves start
there. Under it the field is the driver's near field, not a shear wave the inversion models, so a
confident patch there is not trusted; readers keep their ROIs away and call an exam indeterminate
when the only confident liver sits under the driver (section 6). No header records the position,
so it is read from the waves: the contact patch is the stretch of body wall where the smoothed
first-harmonic amplitude is highest. A slice whose wall shows no clear source (driver off, noise
only) gets no patch, and then no driver finding.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..reading.exam import Exam

BODY_FRACTION_OF_P99 = 0.1  # magnitude above this share of the slice's 99th percentile = body
SMOOTH_MM = 6.0  # the amplitude is averaged over about a wavelength's quarter before the search
WALL_MM = 15.0  # the driver acts on the body surface: its patch is searched this deep into the body
CONTACT_FRACTION = 0.8  # wall pixels within this share of the wall's peak amplitude form the patch
MIN_PEAK_OVER_MEDIAN = 2.0  # the wall's peak must stand this far above the body's median amplitude


def body_mask(exam: Exam) -> np.ndarray:
    """The body: bright on the magnitude images, or where the elastogram has values without them."""
    if exam.magnitude is None or exam.magnitude.shape != exam.valid.shape:
        return exam.stiffness_kpa > 0
    mag = np.nan_to_num(exam.magnitude.astype(np.float64))
    out = np.zeros(mag.shape, bool)
    for k in range(mag.shape[0]):
        top = np.percentile(mag[k], 99)
        if top > 0:
            out[k] = ndimage.binary_fill_holes(ndimage.binary_opening(mag[k] > BODY_FRACTION_OF_P99 * top, iterations=2))
    return out


def driver_contact(exam: Exam, only: np.ndarray | None = None) -> np.ndarray | None:
    """(slices, rows, columns) mask of the contact patch, empty on slices without a clear source (and
    on slices where `only`, a per-slice bool, is False); None when the exam has no wave or phase images."""
    amp = exam.wave_amplitude
    if amp is None or amp.shape != exam.valid.shape:
        return None
    spacing = (exam.geometry.row_spacing_mm, exam.geometry.column_spacing_mm)
    sigma = (SMOOTH_MM / spacing[0], SMOOTH_MM / spacing[1])
    body = body_mask(exam)
    out = np.zeros(amp.shape, bool)
    for k in range(amp.shape[0]):
        inside = body[k]
        if (only is not None and not only[k]) or inside.sum() < 100:
            continue
        a = np.nan_to_num(amp[k].astype(np.float64)) * inside
        smooth = ndimage.gaussian_filter(a, sigma) / np.maximum(ndimage.gaussian_filter(inside.astype(np.float64), sigma), 1e-6)
        wall = inside & (ndimage.distance_transform_edt(inside, sampling=spacing) <= WALL_MM)
        if not wall.any():
            continue
        peak = float(smooth[wall].max())
        if peak <= 0 or peak < MIN_PEAK_OVER_MEDIAN * float(np.median(smooth[inside])):
            continue
        patch = wall & (smooth >= CONTACT_FRACTION * peak)
        lab, _ = ndimage.label(patch)
        at_peak = lab[np.unravel_index(np.argmax(np.where(wall, smooth, -np.inf)), smooth.shape)]
        out[k] = lab == at_peak
    return out


def driver_share(exam: Exam, roi: np.ndarray, contact: np.ndarray, within_mm: float) -> float | None:
    """Share of ROI pixels closer than within_mm to the contact patch of their slice (None without ROI)."""
    if not roi.any():
        return None
    spacing = (exam.geometry.row_spacing_mm, exam.geometry.column_spacing_mm)
    near = 0
    for k in range(roi.shape[0]):
        if roi[k].any() and contact[k].any():
            near += int((roi[k] & (ndimage.distance_transform_edt(~contact[k], sampling=spacing) < within_mm)).sum())
    return near / int(roi.sum())
