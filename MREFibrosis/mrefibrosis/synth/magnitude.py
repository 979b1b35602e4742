"""GRE magnitude image effects of the receive chain and of breathing."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from . import anatomy as A
from .tissue import smooth_noise

COIL_DEPTH_MM = 70.0  # how fast the surface coils' sensitivity falls off with depth


def coil_shading(labels: np.ndarray, spacing_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Receive-coil sensitivity: bright near the anterior and posterior coil arrays, darker in the
    body's centre, with a slow random variation."""
    body = labels != A.AIR
    rows = np.nonzero(body.any(axis=1))[0]
    top, bottom = (rows[0], rows[-1]) if rows.size else (0, labels.shape[0] - 1)
    y = np.arange(labels.shape[0], dtype=float)[:, None] * spacing_mm
    ant = float(rng.uniform(0.35, 0.6)) * np.exp(-(y - top * spacing_mm).clip(0) / COIL_DEPTH_MM)
    post = float(rng.uniform(0.2, 0.4)) * np.exp(-(bottom * spacing_mm - y).clip(0) / COIL_DEPTH_MM)
    return (0.8 + ant + post) * (1.0 + 0.06 * smooth_noise(rng, labels.shape, 40))


def breathing_ghosts(image: np.ndarray, strength: float, shift_rows: int) -> np.ndarray:
    """Faint copies of the body displaced along the phase-encoding (anterior-posterior) axis, as
    residual breathing during a breath-hold leaves them on GRE images."""
    ghost = np.roll(image, shift_rows, axis=0) + np.roll(image, -shift_rows, axis=0)
    return image + 0.5 * strength * ndimage.gaussian_filter(ghost, 1.0)
