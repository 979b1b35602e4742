"""Annotated exams as training slices on their native grid, ready for hatch rendering and resizing.

The hatch is not burnt in here: training redraws it with varied period, width and phase so the
model does not learn one scanner's pattern, while validation draws it exactly as inference does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import MREFibrosisError
from ..model.inference import allowed_region
from ..model.margin_settings import RoiMargins
from ..model.model_file import Preprocessing
from ..model.preprocess import extra_channels, low_confidence_region, windowed_elastogram
from ..model.roi_margins import away_from_driver, pixel_spacing_mm
from ..reading.exam_loader import ReadOptions, read_exam
from ..results.roi_files import read_roi
from .manifest import ManifestRow

log = logging.getLogger("mrefibrosis")


@dataclass
class ExamSlices:
    """One exam: per-slice arrays (slices, rows, columns); `allowed` is where a prediction may count."""

    row: ManifestRow
    image: np.ndarray  # (S, C, H, W) float32, channel 0 without hatch
    low_confidence: np.ndarray | None  # (S, H, W) bool
    target: np.ndarray  # (S, H, W) bool
    allowed: np.ndarray  # (S, H, W) bool: valid and confident pixels
    pixel_area_mm2: float
    liver: np.ndarray | None = None  # (S, H, W) bool: the whole liver, when the manifest gives it
    away_from_driver: np.ndarray | None = None  # (S, H, W) bool: the default driver margin (validation post-processes as inference)
    spacing_mm: tuple[float, float] = (1.0, 1.0)  # rows, columns

    @property
    def n_slices(self) -> int:
        return self.image.shape[0]


def load_exam_slices(row: ManifestRow, pre: Preprocessing, options: ReadOptions = ReadOptions()) -> ExamSlices:
    exam = read_exam(row.exam_dir, options)
    target = read_roi(row.roi_path, exam.geometry) if row.roi_path is not None else np.zeros(exam.valid.shape, bool)
    liver = read_roi(row.liver_path, exam.geometry) if row.liver_path is not None else None
    image = np.stack([windowed_elastogram(exam, pre)] + extra_channels(exam, pre), axis=1)
    away = away_from_driver(exam, RoiMargins().driver_mm)
    return ExamSlices(row, image, low_confidence_region(exam), target, allowed_region(exam), exam.geometry.pixel_area_mm2, liver, away, pixel_spacing_mm(exam))


def load_many(rows: list[ManifestRow], pre: Preprocessing, options: ReadOptions = ReadOptions(), progress=None) -> list[ExamSlices]:
    """Loads every exam; an unreadable one stops the run with its manifest line (fix the data, not the model)."""
    out = []
    for i, row in enumerate(rows):
        try:
            out.append(load_exam_slices(row, pre, options))
        except MREFibrosisError as exc:
            raise MREFibrosisError(f"manifest line {row.line} ({row.name}): {exc}") from None
        if progress:
            progress(i + 1, len(rows))
    return out


def slice_index(exams: list[ExamSlices]) -> list[tuple[int, int]]:
    return [(e, s) for e, ex in enumerate(exams) for s in range(ex.n_slices)]
