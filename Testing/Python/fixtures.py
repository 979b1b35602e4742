"""Small GE-style and Siemens-style MRE exams built with pydicom, with the arrays they hold.

Expected values in tests are computed from these arrays with plain numpy, independently of the
engine's reader and measurement code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrefibrosis.reading.hatch import draw_hatch
from mrefibrosis.synth.vendor_dicom import StudyContext, axial_stack, write_ge_exam, write_siemens_exam


@dataclass
class GEFixture:
    path: Path
    stiffness_pa: np.ndarray  # (S, R, C) in slice-position order (ascending along the normal)
    confidence: np.ndarray  # x1000
    magnitude: np.ndarray  # (S, offsets, R, C)
    stack: object
    liver: np.ndarray  # bool region of the synthetic liver


def _body(rows, cols, cy, cx, ry, rx):
    j, i = np.mgrid[0:rows, 0:cols]
    return ((j - cy) / ry) ** 2 + ((i - cx) / rx) ** 2 <= 1.0


def make_ge_exam(root: Path, n_slices: int = 4, rows: int = 64, cols: int = 64, seed: int = 1, study_key: str = "ge") -> GEFixture:
    rng = np.random.default_rng(seed)
    body = _body(rows, cols, rows / 2, cols / 2, rows * 0.42, cols * 0.46)
    liver = _body(rows, cols, rows * 0.45, cols * 0.33, rows * 0.22, cols * 0.2)
    stiff = np.zeros((n_slices, rows, cols), np.int16)
    conf = np.zeros((n_slices, rows, cols), np.int16)
    for k in range(n_slices):
        s = rng.integers(1500, 6000, size=(rows, cols))
        s[liver] = rng.integers(1800, 3200, size=int(liver.sum()))
        s[~body] = 0
        s[body & (rng.random((rows, cols)) < 0.02)] = 32766
        stiff[k] = s
        c = rng.integers(300, 940, size=(rows, cols))
        patch = _body(rows, cols, rows * 0.45, cols * 0.33, rows * 0.15, cols * 0.13)
        c[patch] = rng.integers(950, 1001, size=int(patch.sum()))
        c[~body] = 0
        conf[k] = c
    mag = rng.integers(100, 1000, size=(n_slices, 4, rows, cols)).astype(np.int16)
    phase = rng.integers(-3000, 3000, size=(n_slices, 4, rows, cols)).astype(np.int16)
    stack = axial_stack(n_slices, rows, cols, 1.5625 * 256 / cols, 10.0, 1.0)
    ctx = StudyContext(key=f"{study_key}-{seed}", manufacturer="GE MEDICAL SYSTEMS", model="OPTIMA MR360", patient_id="PID-SECRET-123", patient_name="DOE^JANE")
    write_ge_exam(root, ctx, stack, stiff, conf, magnitude=mag, phase_mrad=phase)
    # axial_stack places slice k at decreasing z; the reader sorts by increasing position along the normal
    order = np.argsort(stack.positions[:, 2])
    return GEFixture(root, stiff[order], conf[order], mag[order], stack, liver)


@dataclass
class SiemensFixture:
    path: Path
    elastogram_10pa: np.ndarray
    masked_10pa: np.ndarray
    low_confidence: np.ndarray
    liver: np.ndarray


def make_siemens_exam(
    root: Path,
    n_slices: int = 4,
    rows: int = 204,
    cols: int = 256,
    seed: int = 2,
    twin: bool = True,
    neutral_names: bool = False,
    hatch_value: int = 800,
    period: int = 8,
    color: bool = False,
) -> SiemensFixture:
    rng = np.random.default_rng(seed)
    body = _body(rows, cols, rows / 2, cols / 2, rows * 0.45, cols * 0.47)
    liver = _body(rows, cols, rows * 0.45, cols * 0.32, rows * 0.25, cols * 0.2)
    high = _body(rows, cols, rows * 0.45, cols * 0.32, rows * 0.18, cols * 0.14)
    el = np.zeros((n_slices, rows, cols), np.uint16)
    for k in range(n_slices):
        e = rng.integers(150, 700, size=(rows, cols))
        e[liver] = rng.integers(180, 320, size=int(liver.sum()))
        e[~body] = 0
        el[k] = e
    low = np.broadcast_to(body & ~high, el.shape).copy()
    masked = draw_hatch(el, low, hatch_value, period=period, width=1, cross=True)
    stack = axial_stack(n_slices, rows, cols, 1.875, 8.0, 2.0)
    ctx = StudyContext(key=f"siemens-{seed}", manufacturer="SIEMENS", model="MAGNETOM Aera")
    names = {"elastogram": "Series A", "masked": "Series B"} if neutral_names else None
    mag = rng.integers(50, 900, size=(n_slices, 4, rows, cols)).astype(np.uint16)
    rgb = np.stack([el.clip(0, 255)] * 3, axis=-1).astype(np.uint8) if color else None
    write_siemens_exam(root, ctx, stack, el if twin else el[:0], masked, magnitude=mag, color=rgb, names=names) if twin else None
    if not twin:
        write_siemens_exam(root, ctx, stack, masked, None, magnitude=mag, color=rgb, names={"elastogram": "ELASTOGRAM_GRAY_CONF95_MASKED"})
    order = np.argsort(stack.positions[:, 2])
    return SiemensFixture(root, el[order], masked[order], low[order], liver)


def plant_driver_source(exam, row: int = 40, col: int = 100) -> None:
    """Make `exam` (a 256 x 256 grid) a body square (rows and columns 40-219) whose wave amplitude
    falls with distance from a point source at (row, col) on its top wall: a driver whose contact
    patch is a known stretch of the wall, so distances can be counted."""
    shape = exam.valid.shape
    exam.magnitude = np.zeros(shape, np.float32)
    exam.magnitude[:, 40:220, 40:220] = 100.0
    rr, cc = np.mgrid[: shape[1], : shape[2]]
    field = 1.0 / (1.0 + np.hypot(rr - row, cc - col) / 10.0)
    exam.wave_amplitude = np.repeat(field[None].astype(np.float32), shape[0], axis=0)
