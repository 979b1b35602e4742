"""Direct (algebraic) Helmholtz inversion as MRE scanners do it.

First harmonic from the phase offsets, Gaussian smoothing, 5-point Laplacian, then a local
least-squares fit of G* lap(U) = -rho w^2 U in a small window. Confidence is the share of the local
wave signal that the fitted model explains (0-1): it falls with noise, wave nodes, edges and
long wavelengths (stiff tissue).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .waves import RHO, omega


def first_harmonic(phases: np.ndarray) -> np.ndarray:
    """Complex first harmonic of N equally spaced phase offsets, axis 0."""
    n = phases.shape[0]
    theta = 2.0 * np.pi * np.arange(n) / n
    return (2.0 / n) * np.tensordot(np.exp(-1j * theta), phases, axes=(0, 0))


def _laplacian(u: np.ndarray, spacing_m: float) -> np.ndarray:
    p = np.pad(u, 1, mode="edge")
    return (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4.0 * u) / (spacing_m * spacing_m)


def invert(
    u: np.ndarray,
    spacing_m: float,
    frequency_hz: float = 60.0,
    smooth_px: float = 1.2,
    window_px: int = 9,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (|G*| in Pa, confidence 0-1) for a complex wave field of one slice."""
    us = ndimage.gaussian_filter(u.real, smooth_px) + 1j * ndimage.gaussian_filter(u.imag, smooth_px)
    lap = _laplacian(us, spacing_m)
    k = RHO * omega(frequency_hz) ** 2
    box = lambda x: ndimage.uniform_filter(x, window_px, mode="nearest")  # noqa: E731
    num = box((us * np.conj(lap)).real) + 1j * box((us * np.conj(lap)).imag)
    den = box(np.abs(lap) ** 2)
    g = -k * num / np.maximum(den, 1e-30)
    # residual of the fitted model relative to the inertial term's energy
    sig = box(np.abs(k * us) ** 2)
    resid = sig - np.abs(k * num) ** 2 / np.maximum(den, 1e-30)
    confidence = np.clip(1.0 - resid / np.maximum(sig, 1e-30), 0.0, 1.0)
    return np.abs(g), confidence
