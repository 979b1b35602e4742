"""One JSON file configures each service; unknown keys are refused so typos do not pass silently."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

from ..errors import MREFibrosisError

T = TypeVar("T")


def load_config(cls: type[T], path, what: str) -> T:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MREFibrosisError(f"cannot read {what} config {path} ({type(exc).__name__}); it must be a JSON file.") from None
    if not isinstance(raw, dict):
        raise MREFibrosisError(f"{what} config {path} must be a JSON object; see docs/pacs.md.")
    unknown = set(raw) - {f.name for f in fields(cls)}
    if unknown:
        raise MREFibrosisError(f"unknown keys in {path}: {', '.join(sorted(unknown))}; see docs/pacs.md.")
    return cls(**raw)


def roi_margins(values: dict):
    """The automatic ROI's margins from a config's `roi_margins_mm` (model/roi_margins.py); a bad
    value is one config error."""
    from ..model.roi_margins import RoiMargins

    try:
        return RoiMargins.from_json(values)
    except ValueError as exc:
        raise MREFibrosisError(f"{exc} (config key roi_margins_mm; see docs/pacs.md).") from None
