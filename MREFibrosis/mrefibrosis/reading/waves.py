"""How strongly each pixel moved at the driver frequency: the first temporal harmonic of the
phase-offset (or wave) images, on the elastogram grid.

Why: readers keep ROIs away from the driver (domain doc sections 2 and 6), but no header says where
the driver sat. The waves start there, so the wave amplitude is largest at the contact patch on the
body wall; `measure.driver` finds the patch from this map. The map is relative (its unit is the
series' own), so neither the phase scaling nor the vendor matters; only its shape is used.
"""

from __future__ import annotations

import numpy as np

from . import classify as roles
from .exam import SeriesUse
from .findings import ReaderFinding
from .geometry import Geometry
from .optional_series import read_on_grid
from .raw_series import split_raw
from .series import SeriesInfo

MIN_TIME_POINTS = 3  # a first harmonic needs at least three samples of the cycle

# Processed wave images first (unwrapped by the scanner), then raw phase offsets.
WAVE_SOURCES = (roles.WAVE, roles.PHASE, roles.RAW_MRE)


def first_harmonic_amplitude(frames: np.ndarray) -> np.ndarray:
    """Amplitude of the first temporal harmonic of (time, rows, columns) frames sampled evenly over
    one cycle: A for A*cos(2 pi t / T + phi) + offset. A constant (the static phase) contributes 0."""
    t = frames.shape[0]
    if t < MIN_TIME_POINTS:
        return np.zeros(frames.shape[1:], np.float32)
    weights = np.exp(-2j * np.pi * np.arange(t) / t)
    return (2.0 / t * np.abs(np.tensordot(weights, frames.astype(np.float64), axes=1))).astype(np.float32)


def load_wave_amplitude(
    series: list[SeriesInfo], geom: Geometry, limits, used: list[SeriesUse], findings: list[ReaderFinding], witnesses: list | None = None
) -> np.ndarray | None:
    """The wave amplitude on the elastogram's grid, or None when no wave or phase series fits it.
    Optional like the magnitude: a damaged series is skipped with a warning, never fatal."""
    for role in WAVE_SOURCES:
        for s in series:
            if s.role != role or (s.rows, s.columns) != (geom.rows, geom.columns):
                continue
            split = split_raw(s, limits) if s.role == roles.RAW_MRE else None
            refs = split.phase if split is not None else s.instances
            if len(refs) < MIN_TIME_POINTS * geom.n_slices:
                continue
            amplitude = read_on_grid(
                s,
                refs,
                geom,
                limits,
                "wave images",
                used,
                findings,
                witnesses,
                combine_same_position=first_harmonic_amplitude,
                decoded=split.decoded if split is not None else None,
            )
            if amplitude is not None:
                return amplitude
    return None
