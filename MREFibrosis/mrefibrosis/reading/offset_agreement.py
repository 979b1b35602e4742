"""How the magnitude images of one slice's phase offsets differ: the evidence for a breath-hold
mismatch between offsets (domain doc sections 5 and 6). The decision is the QC's
(`measure.breath_hold`); this module only measures.

Why two figures and not one: each offset is its own acquisition, and on a real scanner offsets that
did not move still differ a great deal (noise, inflow and pulsation in the vessels, dephasing by
the wave's own phase gradients, receiver gain): the real GE MR-Touch exam's offsets correlate only
0.62-0.76 on slices registered to within 1 mm, a real 3 T Siemens acquisition 0.90-0.97, the
project's simulator without those effects 0.95-0.99. So the correlation alone cannot tell motion
from noise, and a fixed threshold on it throws good slices away. What tells them apart:

- **the shift** between two offsets, the largest pair (cross-correlation of edge maps, sub-pixel): noise, flow and dephasing change brightness but leave the anatomy's edges where they
  are; motion moves them;
- **the correlation relative to the exam's own floor**: an offset acquired with the anatomy moved
  through the slice shows other anatomy in place, so its correlation falls well below that of the
  exam's other slices, which share the scanner, field strength, coil and patient.
"""

from __future__ import annotations

import numpy as np

BODY_SHARE_OF_P99 = 0.2  # pixels brighter than this share of the mean image's 99th percentile are the body
# Anatomy is smooth: neighbouring pixels of a GRE magnitude image correlate (0.6 and more on real and
# simulated exams); images of noise alone do not (about 0). A slice whose images show no structure
# gets no figures: there is nothing whose position could be compared.
MIN_NEIGHBOUR_CORRELATION = 0.5
EDGE_SIGMA_PX = 1.5  # smoothing of the edge maps the shift is measured on
MAX_SHIFT_PX = 16  # search range of the shift (25 mm at 1.56 mm pixels; breathing ghosts lie further away)
FIGURE_NAMES = ("agreement", "shift_px", "intensity_cv")
NO_FIGURES = (float("nan"),) * len(FIGURE_NAMES)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else float("nan")


def _neighbour_correlation(image: np.ndarray, body: np.ndarray) -> float:
    """Correlation of each body pixel with its right-hand neighbour: ~0 for noise, near 1 for anatomy."""
    both = body[:, :-1] & body[:, 1:]
    return _correlation(image[:, :-1][both], image[:, 1:][both])


def _parabolic_peak(minus: float, centre: float, plus: float) -> float:
    """Sub-pixel offset of a peak from three samples around it (-0.5..0.5)."""
    denom = minus - 2.0 * centre + plus
    return float(np.clip(0.5 * (minus - plus) / denom, -0.5, 0.5)) if denom < 0 else 0.0


def _edge_spectrum(image: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Spectrum of an image's edge map (gradient magnitude after a Gaussian), times a smooth window."""
    from scipy import ndimage

    edges = ndimage.gaussian_gradient_magnitude(np.asarray(image, np.float64), EDGE_SIGMA_PX)
    return np.fft.rfft2((edges - np.average(edges, weights=weight)) * weight)


def _peak_shift_px(spec_a: np.ndarray, spec_b: np.ndarray, shape: tuple[int, int], max_px: int) -> float:
    """Length of the translation at the peak of two spectra's cross-correlation (sub-pixel)."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    cross = spec_a * np.conj(spec_b) * np.exp(-2.0 * np.pi**2 * (ky**2 + kx**2))  # a 1 px Gaussian on the surface
    surface = np.fft.irfft2(cross, s=shape)
    lags = np.r_[0 : max_px + 1, -max_px:0]
    window = surface[np.ix_(lags % shape[0], lags % shape[1])]
    iy, ix = np.unravel_index(int(np.argmax(window)), window.shape)
    dy, dx = float(lags[iy]), float(lags[ix])
    if 0 < iy < window.shape[0] - 1 and lags[iy - 1] + 1 == lags[iy] == lags[iy + 1] - 1:
        dy += _parabolic_peak(window[iy - 1, ix], window[iy, ix], window[iy + 1, ix])
    if 0 < ix < window.shape[1] - 1 and lags[ix - 1] + 1 == lags[ix] == lags[ix + 1] - 1:
        dx += _parabolic_peak(window[iy, ix - 1], window[iy, ix], window[iy, ix + 1])
    return float(np.hypot(dy, dx))


def image_shift_px(moving: np.ndarray, reference: np.ndarray, weight: np.ndarray, max_px: int = MAX_SHIFT_PX) -> float:
    """Length (pixels, sub-pixel) of the in-plane translation between two images: the peak of the
    cross-correlation of their edge maps (gradient magnitude after a 1.5 px Gaussian), times `weight`
    (a smooth window). Edges move with the anatomy; what changes a still offset's brightness (noise,
    inflow, pulsation, gain) changes them little. Whitened phase correlation or plain intensity
    correlation read shifts of 6-8 mm (up to 33 mm) on still simulated offsets with realistic
    per-offset variation; edge maps read at most 4.7 mm there (docs/qc-rules.md)."""
    return _peak_shift_px(_edge_spectrum(moving, weight), _edge_spectrum(reference, weight), np.shape(moving), max_px)


def largest_pair_shift_px(frames: np.ndarray, max_px: int = MAX_SHIFT_PX) -> float:
    """The largest translation between any two of a slice's offsets (the domain doc's definition)."""
    weight = np.outer(np.hanning(frames.shape[1]), np.hanning(frames.shape[2]))
    spectra = [_edge_spectrum(f, weight) for f in frames]
    shape = frames.shape[1:]
    return max(_peak_shift_px(spectra[i], spectra[j], shape, max_px) for i in range(len(spectra)) for j in range(i + 1, len(spectra)))


def _body(mean: np.ndarray) -> np.ndarray | None:
    top = np.percentile(mean, 99)
    body = mean > BODY_SHARE_OF_P99 * top
    return body if top > 0 and body.sum() >= 16 else None


def offset_figures(frames: np.ndarray) -> tuple[float, float, float]:
    """(offsets, rows, columns) magnitude images of one slice -> (agreement, shift_px, intensity_cv):
    - agreement: the lowest correlation of one offset with the sum of the others over the body
      (mean image > 0.2 x its 99th percentile; the domain doc's definition, section 5);
    - shift_px: the largest translation between two of the offsets (a smooth window over the whole
      image, not the body mask, whose edge would be the same in both and pull towards no shift);
    - intensity_cv: coefficient of variation of the offsets' mean brightness over the body.
    All NaN with fewer than 2 offsets, no body, or images without anatomy (noise)."""
    frames = np.asarray(frames, np.float64)
    if frames.ndim != 3 or frames.shape[0] < 2:
        return NO_FIGURES
    body = _body(frames.mean(axis=0))
    if body is None or not all(_neighbour_correlation(f, body) >= MIN_NEIGHBOUR_CORRELATION for f in frames):
        return NO_FIGURES
    total = frames.sum(axis=0)
    agreement = float(np.min([_correlation(frames[o][body], (total - frames[o])[body]) for o in range(frames.shape[0])]))
    shift = largest_pair_shift_px(frames)
    means = frames[:, body].mean(axis=1)
    return agreement, float(shift), float(means.std() / means.mean())


def offset_agreement(frames: np.ndarray) -> float:
    """The agreement figure of `offset_figures` alone (1 = identical anatomy)."""
    return offset_figures(frames)[0]
