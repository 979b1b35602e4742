"""The automatic ROI's margins as a value: validated, compared, and written to JSON, without scipy.

Why apart from roi_margins.py (which applies them with distance transforms): every front end's
settings carry the margins, and the command line builds them while parsing, before it knows whether
it will segment at all; this module costs no import time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..measure.reader_margins import DRIVER_MM, EDGE_MM


def checked_mm(value: float, name: str = "margin") -> float:
    """A margin width as given, or ValueError: 0 (off) to 100 mm."""
    if not math.isfinite(value) or value < 0 or value > 100:
        raise ValueError(f"{name} must be between 0 and 100 mm, not {value}")
    return value


@dataclass(frozen=True)
class RoiMargins:
    liver_edge_mm: float = EDGE_MM  # the ROI stays this deep inside the predicted liver (needs a liver-aware model)
    driver_mm: float = DRIVER_MM  # ... and this far from the driver's contact patch (needs wave or phase images)

    def __post_init__(self) -> None:
        for name in ("liver_edge_mm", "driver_mm"):
            checked_mm(getattr(self, name), name)

    def to_json(self) -> dict:
        return {"liver_edge_mm": self.liver_edge_mm, "driver_mm": self.driver_mm}

    @staticmethod
    def from_json(values: dict, where: str = "roi_margins_mm") -> RoiMargins:
        """From a service's JSON config; missing keys keep their defaults. Raises ValueError with a
        line that names the key."""
        if not isinstance(values, dict):
            raise ValueError(f'{where} must be an object such as {{"liver_edge_mm": 10, "driver_mm": 25}}')
        unknown = set(values) - {"liver_edge_mm", "driver_mm"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {', '.join(sorted(unknown))}; use liver_edge_mm and driver_mm")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values.values()):
            raise ValueError(f"{where}: margins are numbers of mm from 0 (off) to 100")
        try:
            return RoiMargins(**{k: float(v) for k, v in values.items()})
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None


NO_MARGINS = RoiMargins(0.0, 0.0)
