"""A simulated exam with its ground truth, and the settings it was simulated with."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import anatomy as A


@dataclass
class SynthSettings:
    rows: int = 256
    cols: int = 256
    spacing_mm: float = 1.5625
    thickness_mm: float = 10.0
    step_mm: float = 11.0
    frequency_hz: float = 60.0
    offsets: int = 4
    confidence_threshold: float = 0.95


@dataclass
class SynthExam:
    seed: int
    settings: SynthSettings
    stage_drawn: str
    liver_kpa_true: float
    loss_ratio: float
    snr: float
    amplitude_rad: float  # median wave amplitude 10-40 mm from the driver (0 with the driver off)
    failure: str | None
    labels: np.ndarray  # (S, R, C) tissue labels of the reference breath-hold
    true_kpa: np.ndarray  # (S, R, C) |G*|
    stiffness_kpa: np.ndarray  # (S, R, C) scanner inversion |G*|
    confidence: np.ndarray  # (S, R, C) 0-1
    magnitude: np.ndarray  # (S, offsets, R, C) 0..~1.4
    phase_rad: np.ndarray  # (S, offsets, R, C), unwrapped
    wave: np.ndarray  # (S, 8, R, C) first-harmonic wave images, radians
    body: np.ndarray  # (S, R, C) where the scanner reports stiffness
    driver: np.ndarray  # (S, R, C)
    gt_roi: np.ndarray = field(default=None)  # (S, R, C) reader-like ROI
    levels: list = field(default_factory=list)
    rejected_slices: frozenset = frozenset()  # slices a reader leaves out (breath-hold mismatch)

    @property
    def liver(self) -> np.ndarray:
        """True liver mask (S, R, C) of the reference breath-hold."""
        return self.labels == A.LIVER
