"""The one canonical network input for every vendor: the confidence-masked grayscale elastogram.

As in the seed paper: stiffness windowed 0-8 kPa (window 400/800 in 10 Pa units), pixels below
the confidence threshold overwritten by a hatch, resized to the model size (bilinear). A model
trained with `--fit pad` first pads a non-square grid (Siemens-style 204 x 256) to a centred
square, so that a pixel is as wide as it is tall for the network on every vendor's grid
(`Preprocessing.fit`, `Canvas`). GE exams
(Stiffness + Confidence) and Siemens exams (masked or unmasked elastogram) are rendered the same
way from the exam's stiffness and confidence-valid mask, so the model sees one input style.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..reading.exam import Exam
from ..reading.hatch import draw_hatch
from .model_file import Preprocessing


def body_region(exam: Exam) -> np.ndarray:
    """Where the scanner processed the slice: valid pixels, closed and hole-filled per slice."""
    out = np.zeros(exam.valid.shape, bool)
    for k in range(exam.n_slices):
        out[k] = ndimage.binary_fill_holes(ndimage.binary_closing(exam.valid[k], iterations=3))
    return out


def windowed_elastogram(exam: Exam, pre: Preprocessing) -> np.ndarray:
    """Stiffness in the display window scaled to [0, 1], zero outside the processed region; no hatch yet."""
    lo, hi = pre.window_kpa
    img = np.clip((exam.stiffness_kpa - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)
    img[~exam.valid] = 0.0
    return img


def low_confidence_region(exam: Exam) -> np.ndarray | None:
    """Where the scanner would draw its hatch: inside the body, below the confidence threshold."""
    if exam.confidence_valid is None:
        return None
    return body_region(exam) & ~exam.confidence_valid


def extra_channels(exam: Exam, pre: Preprocessing) -> list[np.ndarray]:
    channels = []
    for name in pre.channels[1:]:
        if name == "magnitude":
            mag = exam.magnitude if exam.magnitude is not None else np.zeros(exam.stiffness_kpa.shape, np.float32)
            scale = np.percentile(mag, 99.5) if mag.any() else 1.0
            channels.append(np.clip(mag / max(scale, 1e-6), 0, 1).astype(np.float32))
    return channels


def canonical_input(exam: Exam, pre: Preprocessing) -> np.ndarray:
    """(slices, channels, rows, columns) float32 in [0, 1] on the exam's native grid."""
    img = windowed_elastogram(exam, pre)
    low = low_confidence_region(exam)
    if low is not None:
        img = draw_hatch(img, low, pre.hatch_value, pre.hatch_period_px, pre.hatch_width_px, pre.hatch_cross)
    return np.stack([img] + extra_channels(exam, pre), axis=1)


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of torch's bilinear resize with align_corners=False (half-pixel
    centres, negative coordinates clamped to 0), so that both runtimes see the same input."""
    scale = np.float32(n_in / n_out)  # torch computes the coordinates in float32
    src = np.maximum((np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), np.float32(0.0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


def resize_bilinear(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a (N, C, H, W) float32 array to (N, C, *shape), as F.interpolate does it."""
    r0, r1, wr = _bilinear_taps(x.shape[2], shape[0])
    c0, c1, wc = _bilinear_taps(x.shape[3], shape[1])
    rows = x[:, :, r0, :] * (1 - wr)[:, None] + x[:, :, r1, :] * wr[:, None]
    return (rows[..., c0] * (1 - wc) + rows[..., c1] * wc).astype(np.float32, copy=False)


@dataclass(frozen=True)
class Canvas:
    """The image the network's input is resized from: the exam grid itself ("stretch"), or the grid
    zero-padded to a centred square ("pad"); `crop` takes the exam grid back out of it."""

    rows: int
    columns: int
    top: int
    left: int
    grid: tuple[int, int]

    @staticmethod
    def for_grid(grid: tuple[int, int], fit: str) -> Canvas:
        r, c = int(grid[0]), int(grid[1])
        if fit == "stretch":
            return Canvas(r, c, 0, 0, (r, c))
        n = max(r, c)
        return Canvas(n, n, (n - r) // 2, (n - c) // 2, (r, c))

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.columns

    def place(self, x: np.ndarray) -> np.ndarray:
        """(..., rows, columns) of the exam grid into the canvas, zeros around it."""
        if self.shape == self.grid:
            return x
        out = np.zeros(x.shape[:-2] + self.shape, x.dtype)
        out[..., self.top : self.top + self.grid[0], self.left : self.left + self.grid[1]] = x
        return out

    def crop(self, x):
        """The exam grid out of a (..., rows, columns) canvas array or tensor."""
        return x[..., self.top : self.top + self.grid[0], self.left : self.left + self.grid[1]]


def to_model_input(x: np.ndarray, pre: Preprocessing) -> np.ndarray:
    """(N, C, H, W) on the exam grid to (N, C, size, size) as the network sees it."""
    canvas = Canvas.for_grid(x.shape[-2:], pre.fit)
    return resize_bilinear(np.ascontiguousarray(canvas.place(x)), (pre.input_size, pre.input_size))


def to_exam_grid(maps: np.ndarray, grid: tuple[int, int], pre: Preprocessing) -> np.ndarray:
    """(N, K, size, size) network maps back onto the exam grid: the inverse of to_model_input."""
    canvas = Canvas.for_grid(grid, pre.fit)
    return np.ascontiguousarray(canvas.crop(resize_bilinear(np.ascontiguousarray(maps, dtype=np.float32), canvas.shape)))


def to_model_size(x, size: int):
    """Bilinear resize of a (N, C, H, W) tensor to (N, C, size, size)."""
    import torch.nn.functional as F

    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def to_native_size(x, shape: tuple[int, int]):
    """Bilinear resize back to the exam grid; the inverse of to_model_size for binary masks."""
    import torch.nn.functional as F

    return F.interpolate(x, size=shape, mode="bilinear", align_corners=False)
