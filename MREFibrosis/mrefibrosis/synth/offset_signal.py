"""Why one phase offset's GRE magnitude image differs from the next on a real scanner, from the
physics of the acquisition rather than as a filter on the output.

Each phase offset of an MRE slice is its own acquisition, some hundred milliseconds apart within the
breath-hold. On the real GE MR-Touch exam (domain doc section 5) the offsets of slices that did not
move correlate only 0.62-0.76 with each other and their body brightness varies by about 4 %; an
offset that differs from the others only by thermal noise correlates 0.95-0.99. What makes the
difference, each drawn per exam and applied per offset:

- **intravoxel dephasing**: the motion-encoding gradients turn the wave's displacement into phase;
  where that phase changes across a voxel (in-plane over 1.6 mm and, more, through the 8-10 mm
  slice, where the wave travels partly out of the plane) the spins dephase and the signal drops as
  sinc(phase gradient x voxel / 2). The phase differs per offset, so the dark bands move;
- **flow and pulsation**: blood in the aorta, the vena cava and the hepatic and portal vessels gives
  inflow signal that changes with the cardiac phase each offset happens to be acquired in, and its
  pulsation leaves ghosts of the vessels along the phase-encoding (anterior-posterior) axis;
- **pulsatile tissue motion**: the heart and aorta move the liver a little, differently at each
  offset's cardiac phase; the motion-encoding gradients turn that motion into phase too, and the
  signal changes in smooth patches from offset to offset around its average over the cycle;
- **residual breathing ghosts** of a different strength on each offset;
- **receiver scaling**: the receive chain's gain is set per acquisition (a few per cent).
Thermal noise is added afterwards by the caller (it also sets the phase noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import anatomy as A
from .magnitude import breathing_ghosts
from .tissue import smooth_noise

# Ranges of the per-exam draws (assumed; chosen so that a GE-style cohort's offset figures fall inside
# the real exam's bounds: lowest agreement 0.55-0.80, brightness CV 0.015-0.08).
THROUGH_PLANE_TILT = (0.1, 0.3)  # through-plane wavenumber relative to the in-plane one
FLOW_VARIATION = (0.2, 0.5)  # SD of a vessel's inflow signal factor between offsets
PULSATION_GHOSTS = (0.1, 0.35)  # SD of the amplitude of a vessel's pulsation ghosts between offsets
GAIN_CV = (0.015, 0.05)
PULSATILE_MODULATION = (0.08, 0.2)  # SD of the smooth signal change from pulsatile tissue motion
PULSATILE_SCALE_PX = 12.0  # its patches' size (pixels)
PULSATILE_RANGE = (0.6, 1.4)  # never a signal void nor more than 40 % brighter (real p5 1.29 kPa)
GHOST_VARIATION = (0.0, 2.0)  # range of the breathing ghosts' strength per offset, times the exam's


@dataclass(frozen=True)
class OffsetSignal:
    """One exam's draws of what changes between offsets."""

    tilt: float
    flow_variation: float
    pulsation: float
    gain_cv: float
    pulsatile: float
    ghost: float  # the exam's breathing-ghost strength
    ghost_shift_rows: int

    @classmethod
    def draw(cls, rng: np.random.Generator, ghost: float, ghost_shift_rows: int) -> OffsetSignal:
        return cls(
            tilt=float(rng.uniform(*THROUGH_PLANE_TILT)),
            flow_variation=float(rng.uniform(*FLOW_VARIATION)),
            pulsation=float(rng.uniform(*PULSATION_GHOSTS)),
            gain_cv=float(rng.uniform(*GAIN_CV)),
            pulsatile=float(rng.uniform(*PULSATILE_MODULATION)),
            ghost=ghost,
            ghost_shift_rows=ghost_shift_rows,
        )


@dataclass(frozen=True)
class OffsetDraw:
    """What one offset of one slice happened to get."""

    pulsatile: np.ndarray  # smooth signal factor around 1
    inflow: float  # vessel signal factor
    vessel_ghosts: tuple[float, float]  # signed amplitudes of the first and second pulsation ghosts
    breathing_ghost: float  # strength of this offset's breathing ghosts
    gain: float


def _centred(values: np.ndarray) -> np.ndarray:
    """Draws for the offsets of one slice with their mean over the offsets removed: the offsets sample
    the cardiac cycle, so their average is the time-averaged signal a single long acquisition gets."""
    return values - values.mean(axis=0, keepdims=True)


def slice_draws(rng: np.random.Generator, signal: OffsetSignal, n_offsets: int, shape: tuple[int, int]) -> list[OffsetDraw]:
    """The per-offset variations of one slice."""
    fields = _centred(np.stack([smooth_noise(rng, shape, PULSATILE_SCALE_PX) for _ in range(n_offsets)]))
    inflow = 1.0 + signal.flow_variation * _centred(rng.normal(size=n_offsets))
    ghosts = signal.pulsation * _centred(rng.normal(size=(n_offsets, 2)))
    return [
        OffsetDraw(
            pulsatile=np.clip(1.0 + signal.pulsatile * fields[o], *PULSATILE_RANGE),
            inflow=float(np.clip(inflow[o], 0.1, 2.0)),
            vessel_ghosts=(float(ghosts[o, 0]), float(ghosts[o, 1])),
            breathing_ghost=signal.ghost * float(rng.uniform(*GHOST_VARIATION)),
            gain=max(0.5, 1.0 + signal.gain_cv * float(rng.normal())),
        )
        for o in range(n_offsets)
    ]


def dephasing(phase: np.ndarray, thickness_px: float, tilt: float) -> np.ndarray:
    """Signal left after intravoxel dephasing of one offset's encoded phase (radians): the mean of
    exp(i phase) over a voxel whose phase changes linearly, in-plane and through the slice."""
    gy, gx = np.gradient(phase)
    g = np.hypot(gx, gy)  # radians per pixel
    # np.sinc(x) = sin(pi x) / (pi x); a linear phase ramp of total width w keeps sin(w/2) / (w/2)
    return np.abs(np.sinc(g / (2 * np.pi))) * np.abs(np.sinc(tilt * g * thickness_px / (2 * np.pi)))


def _vessel_ghosts(vessel_signal: np.ndarray, amplitudes: tuple[float, float], step_rows: int) -> np.ndarray:
    """Pulsation ghosts: copies of the vessels' signal repeated along the phase-encoding axis; they are
    complex, so on a magnitude image they brighten or darken what they fall on (signed amplitudes)."""
    out = np.zeros_like(vessel_signal)
    for n, a in enumerate(amplitudes, start=1):
        out += a * (np.roll(vessel_signal, n * step_rows, axis=0) + np.roll(vessel_signal, -n * step_rows, axis=0))
    return out


def offset_image(
    magnitude: np.ndarray,
    labels: np.ndarray,
    encoded_phase: np.ndarray,
    thickness_px: float,
    signal: OffsetSignal,
    draw: OffsetDraw,
) -> np.ndarray:
    """Noise-free magnitude of one phase offset: `magnitude` is the tissue's GRE signal with coil
    shading, `encoded_phase` this offset's wave phase (radians) on the same anatomy."""
    vessels = labels == A.VESSEL
    image = magnitude * dephasing(encoded_phase, thickness_px, signal.tilt) * draw.pulsatile
    image = np.where(vessels, image * draw.inflow, image)
    step = max(1, signal.ghost_shift_rows // 2)
    image = np.maximum(image + _vessel_ghosts(magnitude * vessels, draw.vessel_ghosts, step), 0.0)
    image = breathing_ghosts(image, draw.breathing_ghost, signal.ghost_shift_rows)
    return image * draw.gain
