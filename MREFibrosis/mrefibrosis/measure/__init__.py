"""Stiffness over an ROI as readers report it: per-slice and pooled statistics, the verdict (status,
reason, warnings), the reader's quality checks, and fibrosis staging presets kept as data."""

from .fibrosis_stages import Preset, at_least_f2, get_preset, load_presets, stage_for
from .qc import QcSettings
from .roi_stats import MIN_AREA_CM2, Measurement, SliceMeasurement, Stats, measure_roi
from .status import Status, status_text

__all__ = [
    "MIN_AREA_CM2",
    "Measurement",
    "Preset",
    "QcSettings",
    "SliceMeasurement",
    "Stats",
    "Status",
    "at_least_f2",
    "get_preset",
    "load_presets",
    "measure_roi",
    "stage_for",
    "status_text",
]
