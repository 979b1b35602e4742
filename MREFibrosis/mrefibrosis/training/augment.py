"""Augmentations that keep anatomy plausible: no left-right flip (the liver stays on the patient's
right), small rotations/scales/shifts, stiffness-scale and contrast changes, noise, and hatch
patterns of other periods, widths and phases as different scanners and viewers draw them."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..model.model_file import Preprocessing
from ..model.preprocess import Canvas, to_model_size
from ..reading.hatch import draw_hatch
from .augment_config import AugmentConfig
from .slices import ExamSlices

__all__ = ["AugmentConfig", "batch_tensors", "random_affine", "render_slice", "target_maps"]


def render_slice(ex: ExamSlices, s: int, pre: Preprocessing, rng: np.random.Generator | None, aug: AugmentConfig | None) -> np.ndarray:
    """(C, H, W) network input on the native grid; with rng+aug the intensity and hatch are varied."""
    img = ex.image[s].copy()
    el = img[0]
    if rng is not None and aug is not None:
        body = el > 0
        el = np.where(body, np.clip(el * rng.uniform(*aug.stiffness_scale), 0, 1) ** rng.uniform(*aug.gamma), 0.0).astype(np.float32)
        el = np.where(body, np.clip(el + rng.normal(0, aug.noise_sd, el.shape), 0, 1), 0.0).astype(np.float32)
        period = int(rng.choice(aug.hatch_periods))
        width = int(min(rng.choice(aug.hatch_widths), period - 1))
        cross = bool(rng.random() < aug.cross_probability)
        value = float(rng.uniform(*aug.hatch_value))
        phase = int(rng.integers(0, period))
    else:
        period, width, cross, value, phase = pre.hatch_period_px, pre.hatch_width_px, pre.hatch_cross, pre.hatch_value, 0
    if ex.low_confidence is not None:
        el = draw_hatch(el, ex.low_confidence[s], value, period, width, cross, phase)
    img[0] = el
    if rng is not None and aug is not None and img.shape[0] > 1 and rng.random() < aug.magnitude_dropout:
        img[1:] = 0.0  # as an exam without magnitude images is rendered: one model serves both
    return img


def target_maps(ex: ExamSlices, s: int, outputs: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(targets (K, H, W), known (K,)): the ROI, then the liver where the manifest gives it; an
    unknown liver is left out of the loss rather than taught as background."""
    maps, known = [ex.target[s]], [1.0]
    if "liver" in outputs:
        has = ex.liver is not None
        maps.append(ex.liver[s] if has else np.zeros_like(ex.target[s]))
        known.append(1.0 if has else 0.0)
    return np.stack(maps).astype(np.float32), np.asarray(known, np.float32)


def batch_tensors(
    exams: list[ExamSlices],
    items: list[tuple[int, int]],
    pre: Preprocessing,
    rng: np.random.Generator | None,
    aug: AugmentConfig | None,
    outputs: tuple[str, ...] = ("roi",),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, y, known) at the model size; placed and resized like inference, targets thresholded back
    to 0/1; known (N, K) marks which target maps exist for each slice."""
    xs, ys, ks = [], [], []
    for e, s in items:
        ex = exams[e]
        canvas = Canvas.for_grid(ex.image.shape[-2:], pre.fit)
        x = torch.from_numpy(canvas.place(render_slice(ex, s, pre, rng, aug)))[None]
        y, known = target_maps(ex, s, outputs)
        xs.append(to_model_size(x, pre.input_size))
        ys.append(to_model_size(torch.from_numpy(canvas.place(y))[None], pre.input_size))
        ks.append(torch.from_numpy(known)[None])
    x, y = torch.cat(xs), torch.cat(ys)
    if rng is not None and aug is not None:
        x, y = random_affine(x, y, rng, aug)
    return x, (y >= 0.5).float(), torch.cat(ks)


def random_affine(x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, aug: AugmentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    n = x.shape[0]
    theta = np.zeros((n, 2, 3), np.float32)
    for i in range(n):
        a = np.deg2rad(rng.uniform(-aug.rotate_deg, aug.rotate_deg))
        sc = rng.uniform(*aug.scale)
        tx, ty = rng.uniform(-aug.shift_fraction, aug.shift_fraction, 2) * 2
        theta[i] = [[np.cos(a) / sc, -np.sin(a) / sc, tx], [np.sin(a) / sc, np.cos(a) / sc, ty]]
    grid = F.affine_grid(torch.from_numpy(theta), list(x.shape), align_corners=False)
    return (
        F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False),
        F.grid_sample(y, grid, mode="bilinear", padding_mode="zeros", align_corners=False),
    )
