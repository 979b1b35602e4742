"""The exam object every front end passes around: stiffness in kPa, masks and geometry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from .findings import ReaderFinding
from .geometry import Geometry


def exam_key_for(study_uid: str) -> str:
    """Stable, non-identifying key for logs, tables and file names (never the raw UID)."""
    return hashlib.sha256(study_uid.encode("utf-8", "replace")).hexdigest()[:16]


@dataclass
class SeriesUse:
    """Which series supplied which part of the exam (shown by `inspect`, stored in result.json)."""

    role: str
    series_number: int | None
    description: str
    n_images: int


@dataclass
class Exam:
    """One MRE exam on its elastogram grid; arrays are (slices, rows, columns) in slice-position order."""

    exam_key: str
    vendor: str
    geometry: Geometry
    stiffness_kpa: np.ndarray  # float32
    valid: np.ndarray  # bool: measurable stiffness (not background, 32766, hatch, NaN)
    confidence_valid: np.ndarray | None  # bool: confidence >= threshold; None when the exam has no confidence data
    confidence: np.ndarray | None = None  # float32 0-1 when a confidence map exists
    magnitude: np.ndarray | None = None  # float32, mean over phase offsets
    # per slice, how the magnitude images of the phase offsets differ (reading.offset_agreement): the
    # lowest correlation of one offset with the others, the largest in-plane shift between two offsets
    # in mm, the variation of their brightness; NaN where a slice has no figure,
    # None without per-offset images
    offset_agreement: np.ndarray | None = None
    offset_shift_mm: np.ndarray | None = None
    offset_intensity_cv: np.ndarray | None = None
    wave_amplitude: np.ndarray | None = None  # float32, relative: first temporal harmonic of the wave/phase images (finds the driver)
    driver_frequency_hz: float | None = None
    unit_source: str = ""
    confidence_source: str = ""
    confidence_threshold: float = 0.95
    series_used: list[SeriesUse] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: list[ReaderFinding] = field(default_factory=list)  # damage a reader would flag (become warnings)
    identifiers: dict[str, str] = field(default_factory=dict)  # PatientID etc.; only written on request
    source_headers: list = field(default_factory=list, repr=False)  # elastogram headers per slice, for DICOM results

    @property
    def n_slices(self) -> int:
        return self.geometry.n_slices

    def summary(self) -> dict:
        """Non-identifying description for logs and result.json."""
        return {
            "exam_key": self.exam_key,
            "vendor": self.vendor,
            "slices": self.n_slices,
            "rows": self.geometry.rows,
            "columns": self.geometry.columns,
            "pixel_spacing_mm": [self.geometry.row_spacing_mm, self.geometry.column_spacing_mm],
            "slice_locations_mm": [round(float(x), 3) for x in self.geometry.slice_locations_mm],
            "driver_frequency_hz": self.driver_frequency_hz,
            "unit_source": self.unit_source,
            "confidence_source": self.confidence_source,
            "confidence_threshold": self.confidence_threshold,
            "series": [vars(s) for s in self.series_used],
            "notes": list(self.notes),
            "findings": [{"flag": f.flag, "message": f.message, "indeterminate": f.indeterminate} for f in self.findings],
        }
