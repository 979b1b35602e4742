"""Colour rendering of elastograms, shared by the simulator's colour series and the DICOM overlay."""

from __future__ import annotations

import numpy as np


def colour_elastogram(kpa: np.ndarray, top_kpa: float = 8.0) -> np.ndarray:
    """A jet-like colour map of 0-top kPa as uint8 RGB; zero stays black."""
    t = np.clip(np.asarray(kpa, float) / top_kpa, 0, 1)
    r = np.clip(1.5 - np.abs(4 * t - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * t - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * t - 1), 0, 1)
    rgb = (np.stack([r, g, b], -1) * 255).astype(np.uint8)
    rgb[np.asarray(kpa) <= 0] = 0
    return rgb
