"""Tissue properties at 60 Hz and on the GRE magnitude images, per tissue label.

Why these values: the real GE body map reads 1-4 kPa throughout (domain doc section 5), because fat
and muscle are not soft (MRE literature: subcutaneous fat about 3 kPa and resting muscle 3.9-6.2 kPa
at higher frequencies, somewhat lower at 60 Hz; spleen 3.6 +- 0.6 kPa with the driver on the right;
kidney 3-4 kPa). Fluids (blood, bile, ascites) carry almost no shear modulus and damp strongly.
Each patient draws its own values around these means, and each organ gets a smooth internal
variation, so that no two exams share a texture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from . import anatomy as A

# label: (mean |G*| kPa, between-patient SD kPa, loss ratio G''/G')
MECHANICS_60HZ = {
    A.AIR: (1.0, 0.0, 3.0),
    A.FAT: (2.1, 0.3, 0.35),
    A.MUSCLE: (3.0, 0.4, 0.3),
    A.BONE: (25.0, 0.0, 0.1),
    A.VESSEL: (0.3, 0.0, 1.0),
    A.GALLBLADDER: (0.2, 0.0, 1.0),
    A.SPLEEN: (3.6, 0.5, 0.3),
    A.STOMACH: (2.0, 0.3, 0.45),
    A.KIDNEY: (3.3, 0.4, 0.3),
    A.GAS: (0.5, 0.0, 2.0),
    A.ASCITES: (0.05, 0.0, 2.0),
    A.VISCERA: (2.0, 0.3, 0.4),
}
# How strongly the spleen follows the liver (portal hypertension stiffens it), kPa per kPa.
SPLEEN_PER_LIVER_KPA = 0.35
ORGAN_HETEROGENEITY = 0.08  # SD of a smooth within-organ variation
LIVER_HETEROGENEITY = 0.10  # fibrosis is patchy
SLICE_TO_SLICE = 0.06  # SD of a per-slice liver factor

# Relative GRE magnitude (TE about 20 ms at 1.5 T, near in-phase): fat brightest, liver between
# muscle and spleen, inflowing blood bright, gas and cortical bone dark.
GRE_INTENSITY = {
    A.AIR: 0.0,
    A.FAT: 0.92,
    A.MUSCLE: 0.42,
    A.BONE: 0.25,
    A.LIVER: 0.66,
    A.VESSEL: 0.85,
    A.GALLBLADDER: 0.8,
    A.SPLEEN: 0.74,
    A.STOMACH: 0.5,
    A.KIDNEY: 0.68,
    A.GAS: 0.03,
    A.ASCITES: 0.85,
    A.VISCERA: 0.56,
}
IRON_OVERLOAD_LIVER_FACTOR = 0.06  # T2* well under the echo time
IRON_OVERLOAD_SPLEEN_FACTOR = 0.4


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_px: float) -> np.ndarray:
    """Zero-mean, unit-SD Gaussian random field with correlation length about sigma_px."""
    f = ndimage.gaussian_filter(rng.normal(size=shape), sigma_px)
    return f / (f.std() + 1e-12)


@dataclass(frozen=True)
class PatientMechanics:
    """Per-patient |G*| (kPa) of every tissue other than the liver, and the liver's loss ratio."""

    kpa: dict
    loss: dict
    liver_loss: float


def draw_mechanics(rng: np.random.Generator, liver_kpa: float) -> PatientMechanics:
    kpa, loss = {}, {}
    for t, (mean, sd, eta) in MECHANICS_60HZ.items():
        kpa[t] = float(max(0.3 * mean, mean + sd * rng.normal()))
        loss[t] = eta
    kpa[A.SPLEEN] += SPLEEN_PER_LIVER_KPA * max(liver_kpa - 2.0, 0.0)
    return PatientMechanics(kpa=kpa, loss=loss, liver_loss=float(rng.uniform(0.2, 0.3)))


def shear_modulus(labels: np.ndarray, mech: PatientMechanics, liver_kpa: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(|G*| kPa, loss ratio) maps of one slice: per-tissue values with smooth organ texture."""
    mag = np.zeros(labels.shape)
    eta = np.zeros(labels.shape)
    organ_texture = 1.0 + ORGAN_HETEROGENEITY * smooth_noise(rng, labels.shape, 8)
    for t, g in mech.kpa.items():
        sel = labels == t
        mag[sel] = g * organ_texture[sel] if t not in (A.AIR, A.BONE) else g
        eta[sel] = mech.loss[t]
    liver = labels == A.LIVER
    field = liver_kpa * (1.0 + SLICE_TO_SLICE * rng.normal()) * (1.0 + LIVER_HETEROGENEITY * smooth_noise(rng, labels.shape, 10))
    mag[liver] = np.clip(field, 0.5 * liver_kpa, 2.0 * liver_kpa)[liver]
    eta[liver] = mech.liver_loss
    return mag, eta


def gre_intensity(labels: np.ndarray, iron_overload: bool) -> np.ndarray:
    """Noise-free relative GRE magnitude of each pixel before coil shading."""
    lut = np.zeros(max(GRE_INTENSITY) + 1)
    for t, v in GRE_INTENSITY.items():
        lut[t] = v
    if iron_overload:
        lut[A.LIVER] *= IRON_OVERLOAD_LIVER_FACTOR
        lut[A.SPLEEN] *= IRON_OVERLOAD_SPLEEN_FACTOR
    return lut[labels]
