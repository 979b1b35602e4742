"""QC flags in words a reader understands, for screens (the review page, the Slicer panel).

Why here: the codes (`roi_outside_confidence`) stay the machine-readable truth in result.json and
measurements.csv, where sites filter on them; a person reading a screen gets one sentence each,
the same sentence in every front end. docs/qc-rules.md says how each is decided.
"""

from __future__ import annotations

FLAG_WORDS: dict[str, str] = {
    "roi_outside_confidence": "over a quarter of the ROI lies outside the confident (>= 95 %) region",
    "roi_invalid_pixels_excluded": "ROI pixels without a stiffness value were left out",
    "roi_area_below_minimum": "the ROI is smaller than 1 cm2",
    "no_confidence_data": "the exam has no confidence map, so confidence could not be checked",
    "driver_frequency_unknown": "the driver frequency is unknown, so no stage is given",
    "stage_refused_frequency": "the staging preset does not apply at this driver frequency",
    "liver_dark_on_magnitude": "the liver is dark on the magnitude image (iron overload?)",
    "small_confident_liver": "little of the liver is confidently measured",
    "roi_at_liver_edge": "most of the ROI lies within 10 mm of the liver edge",
    "roi_under_driver": "most of the ROI lies under the driver",
    "tta_disagreement": "the segmenter disagrees with itself on a shifted image",
    "offsets_misregistered": "the breath-holds of the phase offsets do not line up",
    "slice_gap": "a slice is missing from the elastogram",
    "duplicate_images": "the export holds the same image twice",
    "rescale_varies_between_slices": "the value scaling differs between slices",
    "confidence_grid_differs": "the confidence map is on another grid than the elastogram",
    "optional_series_skipped": "an optional series could not be used",
    "unreadable_files_in_series": "some files of the exam could not be read",
    "stiffness_unit_doubtful": "the stiffness unit is doubtful",
    "driver_frequency_conflict": "the series state different driver frequencies",
    "slice_order_doubtful": "the slice order is doubtful",
    "slice_values_implausible": "one slice's values differ markedly from the others",
    "masked_twin_realigned": "the masked elastogram was shifted back into place",
    "raw_images_missing": "raw phase or magnitude images are missing",
}


def flag_words(flag: str) -> str:
    """The sentence for a flag; an unknown code (a newer engine's) is shown readable, not hidden."""
    return FLAG_WORDS.get(flag, flag.replace("_", " "))


def warnings_in_words(flags: list[str]) -> list[str]:
    """Each warning once, in words, in the engine's order."""
    return [flag_words(f) for f in dict.fromkeys(flags)]
