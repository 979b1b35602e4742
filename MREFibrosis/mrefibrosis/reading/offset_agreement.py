"""How alike the magnitude images of one slice's phase offsets are: the sign of a breath-hold
mismatch between offsets (domain doc section 6).

Why: an MRE slice is encoded over several phase offsets, each acquired in its own part of the
breath-hold. When the patient breathes between them, the liver sits elsewhere on some offsets, the
waves computed from all offsets are misregistered, and the inversion may still report confident
stiffness. A reader sees it on the magnitude images, which move with the anatomy: this figure is
what the engine sees of it. The decision (a threshold) is the QC's (`measure.breath_hold`).
"""

from __future__ import annotations

import numpy as np

BODY_SHARE_OF_P99 = 0.2  # pixels brighter than this share of the mean image's 99th percentile are the body
# Anatomy is smooth: neighbouring pixels of a GRE magnitude image correlate (simulated exams 0.9 and
# more); images of noise alone do not (about 0). Offsets of noise would "disagree" like moved anatomy,
# so a slice whose images show no structure gets no figure.
MIN_NEIGHBOUR_CORRELATION = 0.5


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else float("nan")


def _neighbour_correlation(image: np.ndarray, body: np.ndarray) -> float:
    """Correlation of each body pixel with its right-hand neighbour: ~0 for noise, near 1 for anatomy."""
    both = body[:, :-1] & body[:, 1:]
    return _correlation(image[:, :-1][both], image[:, 1:][both])


def offset_agreement(frames: np.ndarray) -> float:
    """(offsets, rows, columns) magnitude images of one slice -> the lowest correlation of one offset
    with the mean of the others over the body (1 = identical anatomy; NaN with fewer than 2 offsets,
    no body or no anatomy). Noise lowers every offset alike (about 0.9-0.99 at the SNR of clinical
    GRE-MRE); anatomy moved by a few millimetres on some offsets drops it far below."""
    frames = np.asarray(frames, np.float64)
    if frames.ndim != 3 or frames.shape[0] < 2:
        return float("nan")
    mean = frames.mean(axis=0)
    top = np.percentile(mean, 99)
    body = mean > BODY_SHARE_OF_P99 * top
    if top <= 0 or body.sum() < 16:
        return float("nan")
    if not all(_neighbour_correlation(f, body) >= MIN_NEIGHBOUR_CORRELATION for f in frames):
        return float("nan")  # no anatomy to compare: noise, or images without structure
    total = frames.sum(axis=0)
    scores = [_correlation(frames[o][body], (total - frames[o])[body]) for o in range(frames.shape[0])]
    return float(np.min(scores))  # NaN when an offset's image is flat
