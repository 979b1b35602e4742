"""The verdict on one measurement: a number a reader may report, with or without named warnings, or
`indeterminate` with the one-line reason a reader would write instead of a number."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    INDETERMINATE = "indeterminate"


# Flags that say the number stands but deserves a look (the rest make the exam indeterminate).
WARNING_FLAGS = {
    "roi_outside_confidence": "part of the ROI lies below the confidence threshold",
    "roi_invalid_pixels_excluded": "ROI pixels without a valid stiffness value were left out",
    "no_confidence_data": "no confidence map: ROI confidence could not be checked",
    "driver_frequency_unknown": "driver frequency not in the headers: 60 Hz assumed for staging",
    "stage_refused_frequency": "not staged: the cut-offs are for another driver frequency",
    "roi_at_liver_edge": "much of the ROI lies near the liver edge",
    "tta_disagreement": "the automatic ROI changes when the image is flipped",
    "small_confident_liver": "little confident liver area",
}


def status_text(status: Status, reason: str | None, warnings: list[str]) -> str:
    """'ok', 'ok with warnings: a, b' or 'indeterminate: reason' — the same words in every output."""
    if status is Status.INDETERMINATE:
        return f"indeterminate: {reason}" if reason else "indeterminate"
    return f"ok with warnings: {', '.join(warnings)}" if warnings else "ok"
