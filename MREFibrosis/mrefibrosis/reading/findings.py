"""What a careful reader notices about an exam's files before measuring it.

Why: some damage leaves a readable exam whose number is still wrong in a way nobody would see
(a lost slice shrinks the area, a per-slice rescale shifts one slice). Such findings travel with the
exam into the measurement, where they become warnings (the number stands, with a reason to look)
or make it indeterminate; `result.json`, the CSV and the SR carry them like every other flag.
"""

from __future__ import annotations

from dataclasses import dataclass

FLAG_SLICE_GAP = "slice_gap"
FLAG_DUPLICATE_IMAGES = "duplicate_images"
FLAG_RESCALE_VARIES = "rescale_varies_between_slices"
FLAG_CONFIDENCE_NOT_ALIGNED = "confidence_grid_differs"
FLAG_OPTIONAL_SERIES_SKIPPED = "optional_series_skipped"
FLAG_UNREADABLE_FILES = "unreadable_files_in_series"
FLAG_UNIT_DOUBTFUL = "stiffness_unit_doubtful"
FLAG_FREQUENCY_CONFLICT = "driver_frequency_conflict"
FLAG_SLICE_ORDER = "slice_order_doubtful"
FLAG_SLICE_VALUES = "slice_values_implausible"
FLAG_TWIN_REALIGNED = "masked_twin_realigned"
FLAG_RAW_IMAGES_MISSING = "raw_images_missing"

READER_WARNING_FLAGS = frozenset(
    {
        FLAG_SLICE_GAP,
        FLAG_DUPLICATE_IMAGES,
        FLAG_RESCALE_VARIES,
        FLAG_CONFIDENCE_NOT_ALIGNED,
        FLAG_OPTIONAL_SERIES_SKIPPED,
        FLAG_UNREADABLE_FILES,
        FLAG_UNIT_DOUBTFUL,
        FLAG_FREQUENCY_CONFLICT,
        FLAG_SLICE_ORDER,
        FLAG_SLICE_VALUES,
        FLAG_TWIN_REALIGNED,
        FLAG_RAW_IMAGES_MISSING,
    }
)


@dataclass(frozen=True)
class ReaderFinding:
    flag: str
    message: str
    indeterminate: bool = False
