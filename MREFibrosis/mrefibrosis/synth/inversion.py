"""Scanner-like direct (algebraic) Helmholtz inversion with directional filtering.

What MR-Touch-style processing does, and why each step matters for the map's look:
1. the first temporal harmonic of the phase offsets (the 60 Hz wave field);
2. a radial band-pass in k-space that keeps wavelengths a liver can produce: in regions without
   usable waves, band-passed noise has its own dominant wavelength, so the inversion reads it as
   tissue of 1-4 kPa. That is why a real body map is blobby and plausible everywhere;
3. directional filters (traveling-wave decomposition into several directions), so that waves
   crossing from different directions (reflections, mode conversion) do not cancel the Laplacian;
4. per direction, the local wavenumber from the energy ratio of lap(U) and U in a small window
   (local frequency estimation), |G*| = rho w^2 / |k|^2, combined across directions with the local
   wave energy as weight;
5. confidence = the share of the local wave signal that the fitted model explains, combined the
   same way; it falls with noise, nodes, interference, edges and long wavelengths.
The local fit window and the pass band set the correlation length of the map (about 1.5 cm on the
real scanner).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .waves import RHO, omega


@dataclass(frozen=True)
class InversionSettings:
    """Scanner processing parameters (assumed: vendors do not publish theirs)."""

    low_cut_mm: float = 70.0  # longest wavelength kept
    high_cut_mm: float = 18.5  # shortest wavelength kept (Butterworth -3 dB points)
    confidence_cut_mm: float = 11.5  # the fit is judged against the data up to this wavelength
    order: int = 4
    directions: int = 4
    window_sigma_px: float = 1.6  # Gaussian local-fit window
    confidence_sigma_px: float = 4.0  # Gaussian window of the goodness-of-fit
    noise_floor: float = 1e-3  # relative to the slice's peak wave energy


def first_harmonic(phases: np.ndarray) -> np.ndarray:
    """Complex first harmonic of N equally spaced phase offsets, axis 0."""
    n = phases.shape[0]
    theta = 2.0 * np.pi * np.arange(n) / n
    return (2.0 / n) * np.tensordot(np.exp(-1j * theta), phases, axes=(0, 0))


def _k_grid(shape: tuple[int, int], spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    ky = 2 * np.pi * np.fft.fftfreq(shape[0], d=spacing_m)
    kx = 2 * np.pi * np.fft.fftfreq(shape[1], d=spacing_m)
    return np.meshgrid(ky, kx, indexing="ij")


def _bandpass(k: np.ndarray, s: InversionSettings, high_cut_mm: float) -> np.ndarray:
    k_lo = 2 * np.pi / (s.low_cut_mm * 1e-3)
    k_hi = 2 * np.pi / (high_cut_mm * 1e-3)
    high_pass = 1.0 / (1.0 + (k_lo / np.maximum(k, 1e-9)) ** (2 * s.order))
    low_pass = 1.0 / (1.0 + (k / k_hi) ** (2 * s.order))
    return high_pass * low_pass


def _directional(spectrum: np.ndarray, directional: np.ndarray, k2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The field of one travelling direction and its spectral Laplacian."""
    part = spectrum * directional
    return np.fft.ifft2(part), np.fft.ifft2(-k2 * part)


def invert(u: np.ndarray, spacing_m: float, frequency_hz: float = 60.0, settings: InversionSettings = InversionSettings()) -> tuple[np.ndarray, np.ndarray]:
    """(|G*| in Pa, confidence 0-1) of one slice from its complex wave field (radians)."""
    s = settings
    pad = 32  # zero padding so that the FFT filters do not wrap around the frame
    up = np.pad(u, pad)
    ky, kx = _k_grid(up.shape, spacing_m)
    k2 = kx * kx + ky * ky
    k = np.sqrt(k2)
    raw = np.fft.fft2(up)
    spectrum = raw * _bandpass(k, s, s.high_cut_mm)
    measured = raw * _bandpass(k, s, s.confidence_cut_mm)
    angle = np.arctan2(ky, kx)
    k_rho = RHO * omega(frequency_hz) ** 2
    win = lambda x: ndimage.gaussian_filter(x, s.window_sigma_px, mode="nearest")  # noqa: E731
    cwin = lambda x: ndimage.gaussian_filter(x, s.confidence_sigma_px, mode="nearest")  # noqa: E731
    g_sum = np.zeros(up.shape)
    c_sum = np.zeros(up.shape)
    w_sum = np.zeros(up.shape)
    for d in range(s.directions):
        # half-plane cos^2 filter: keeps waves traveling within +-90 degrees of direction d
        phi = 2 * np.pi * d / s.directions
        c = np.cos(angle - phi)
        directional = np.where(c > 0, c * c, 0.0)
        ud, lap = _directional(spectrum, directional, k2)
        # local frequency from the energy ratio of lap(U) and U: |G*| = rho w^2 / |k|^2 with
        # |k|^4 = <|lap U|^2> / <|U|^2>. Unlike a least-squares quotient it is not pulled towards
        # zero where noise decorrelates U and lap(U), so wave-free regions read as band-passed noise
        # (1-4 kPa), as on real maps.
        den = win(np.abs(lap) ** 2)
        sig = win(np.abs(ud) ** 2)
        g = k_rho * np.sqrt(sig / np.maximum(den, 1e-30))
        # explained share of the measured wave signal (less filtered, so noise counts against the
        # fit) = squared normalised correlation of U and lap(U)
        um, lap_m = _directional(measured, directional, k2)
        cross_m = um * np.conj(lap_m)
        num_m = cwin(cross_m.real) + 1j * cwin(cross_m.imag)
        conf = np.clip(np.abs(num_m) ** 2 / np.maximum(cwin(np.abs(lap_m) ** 2) * cwin(np.abs(um) ** 2), 1e-30), 0.0, 1.0)
        g_sum += sig * g  # weighted by the direction's local wave energy
        c_sum += sig * conf
        w_sum += sig
    floor = s.noise_floor * w_sum.max()
    w = np.maximum(w_sum, floor)
    g_out = g_sum / w
    conf_out = c_sum / w * (w_sum / w)
    return g_out[pad:-pad, pad:-pad], conf_out[pad:-pad, pad:-pad]
