"""A contact sheet of a synthetic exam: magnitude, elastogram, confidence / hatched image, ROI."""

from __future__ import annotations

import os

import numpy as np
from scipy import ndimage


def _gray(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    g = np.clip((np.asarray(a, float) - lo) / (hi - lo), 0, 1)
    return np.repeat((g * 255).astype(np.uint8)[..., None], 3, axis=-1)


def sheet(
    magnitude: np.ndarray,
    elastogram_kpa: np.ndarray,
    third: np.ndarray,
    third_range: tuple[float, float],
    roi: np.ndarray,
    titles: list[str],
    max_slices: int = 4,
) -> np.ndarray:
    """RGB array: one row per slice, columns magnitude | elastogram 0-8 kPa | third | ROI on elastogram."""
    rows = []
    for k in range(min(max_slices, elastogram_kpa.shape[0])):
        m = _gray(magnitude[k], 0, np.percentile(magnitude[k], 99.5) + 1e-6)
        e = _gray(elastogram_kpa[k], 0, 8)
        t = _gray(third[k], *third_range)
        o = e.copy()
        edge = roi[k] & ~ndimage.binary_erosion(roi[k])
        o[roi[k]] = (0.6 * o[roi[k]] + 0.4 * np.array([255, 120, 0])).astype(np.uint8)
        o[edge] = [255, 60, 0]
        gap = np.full((m.shape[0], 4, 3), 40, np.uint8)
        rows.append(np.concatenate([m, gap, e, gap, t, gap, o], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 40, np.uint8))
    img = np.concatenate(rows[:-1], axis=0)
    header = np.full((18, img.shape[1], 3), 0, np.uint8)
    return np.concatenate([header, img], axis=0), titles


def save_png(path: str | os.PathLike, image: np.ndarray, titles: list[str]) -> None:
    from PIL import Image, ImageDraw

    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    w = (image.shape[1]) // 4
    for n, t in enumerate(titles):
        draw.text((n * w + 4, 3), t, fill=(255, 255, 255))
    tmp = f"{path}.partial.png"
    pil.save(tmp)
    os.replace(tmp, path)
