"""One JSON file configures each service; unknown keys are refused so typos do not pass silently."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar, TypeVar

from ..errors import MREFibrosisError
from ..model.margin_settings import RoiMargins
from ..model.segmenter_settings import JSON_KEYS, SegmenterSettings

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


@dataclass
class ServiceConfig:
    """What the PACS worker and the DICOM receiver share: the segmenter (`SegmenterSettings`'s JSON
    keys, model checksum, runtime and precision included), the staging preset and how exams are
    read. Checked when the config is loaded, not at the first exam."""

    model: str | None = None
    model_sha256: str | None = None
    device: str = "auto"
    runtime: str = "auto"
    precision: str = "auto"
    tta: bool = False
    roi_margins_mm: dict = field(default_factory=dict)  # {"liver_edge_mm": 10, "driver_mm": 25}; missing keys: the defaults
    preset: str = "seed"
    read_options: dict = field(default_factory=dict)

    WHAT: ClassVar[str] = "service"

    @classmethod
    def load(cls: type[C], path) -> C:
        config = load_config(cls, path, cls.WHAT)
        config.segmenter_settings()
        return config

    def segmenter_settings(self) -> SegmenterSettings:
        try:
            return SegmenterSettings.from_json({k: getattr(self, k) for k in JSON_KEYS}, f"{self.WHAT} config")
        except ValueError as exc:
            raise MREFibrosisError(f"{exc} (see docs/pacs.md).") from None

    def margins(self) -> RoiMargins:
        return self.segmenter_settings().margins


C = TypeVar("C", bound=ServiceConfig)
