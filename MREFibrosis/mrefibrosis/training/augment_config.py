"""Augmentation settings, apart from the code that applies them so that reading a training
configuration (every CLI call builds the `train` options) never imports torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AugmentConfig:
    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift_fraction: float = 0.06
    stiffness_scale: tuple[float, float] = (0.75, 1.3)
    gamma: tuple[float, float] = (0.8, 1.25)
    noise_sd: float = 0.02
    hatch_periods: tuple[int, ...] = (5, 6, 7, 8, 9, 10, 12)
    hatch_widths: tuple[int, ...] = (1, 1, 2)
    hatch_value: tuple[float, float] = (0.85, 1.0)
    cross_probability: float = 0.7
    magnitude_dropout: float = 0.3  # share of slices trained without their magnitude image (all zeros)
