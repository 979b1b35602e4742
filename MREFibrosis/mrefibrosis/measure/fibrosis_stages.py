"""Fibrosis staging from kPa with cut-offs stored as data (presets.json) with their citations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import StagingError

DEFAULT_PRESET = "seed"


@dataclass(frozen=True)
class Band:
    min_kpa: float
    stage: str
    at_least_f2: bool


@dataclass(frozen=True)
class Preset:
    name: str
    citation: str
    status: str  # verified / assumed
    frequency_hz: float
    bands: tuple[Band, ...]  # ascending min_kpa; the first starts at 0

    def stage_of(self, kpa: float) -> Band:
        """Half-open intervals: a value equal to a cut-off belongs to the higher stage."""
        chosen = self.bands[0]
        for band in self.bands:
            if kpa >= band.min_kpa:
                chosen = band
        return chosen


def _parse(name: str, raw: dict) -> Preset:
    try:
        bands = tuple(Band(float(b["min_kpa"]), str(b["stage"]), bool(b["at_least_f2"])) for b in raw["bands"])
        preset = Preset(name, str(raw["citation"]), str(raw["status"]), float(raw.get("frequency_hz", 60)), bands)
    except (KeyError, TypeError, ValueError) as exc:
        raise StagingError(f"preset '{name}' is malformed ({exc}); each needs citation, status and bands.") from None
    mins = [b.min_kpa for b in preset.bands]
    if not mins or mins[0] != 0 or mins != sorted(mins) or len(set(mins)) != len(mins):
        raise StagingError(f"preset '{name}': bands must start at 0 kPa and rise strictly.")
    return preset


def load_presets(extra_file: str | Path | None = None) -> dict[str, Preset]:
    text = resources.files(__package__).joinpath("presets.json").read_text(encoding="utf-8")
    raw = json.loads(text)["presets"]
    if extra_file is not None:
        try:
            raw.update(json.loads(Path(extra_file).read_text(encoding="utf-8"))["presets"])
        except (OSError, ValueError, KeyError) as exc:
            raise StagingError(f"cannot read presets from {extra_file} ({type(exc).__name__}); it must be JSON with a 'presets' object.") from None
    return {name: _parse(name, value) for name, value in raw.items()}


def get_preset(name_or_file: str | None = None) -> Preset:
    """A built-in preset by name, or the single preset of a user's JSON file."""
    name = name_or_file or DEFAULT_PRESET
    if name.endswith(".json"):
        user = load_presets(name)
        builtin = load_presets()
        own = [k for k in user if k not in builtin]
        if len(own) != 1:
            raise StagingError(f"{name} must define exactly one new preset.")
        return user[own[0]]
    presets = load_presets()
    if name not in presets:
        raise StagingError(f"unknown staging preset '{name}'; choose one of {', '.join(presets)} or give a JSON file.")
    return presets[name]


REPORTED_DECIMALS = 2


def stage_for(kpa: float, preset: Preset, frequency_hz: float | None) -> tuple[str | None, str | None]:
    """(stage, reason it is missing); staging is refused for a known non-matching frequency.

    The stage is taken from the kPa value as reported (2 decimals), so the printed number and the
    stage never disagree at a cut-off (float32 2.8 is 2.7999999).
    """
    if frequency_hz is not None and abs(frequency_hz - preset.frequency_hz) > 0.5:
        return None, f"driver frequency {frequency_hz:g} Hz; preset '{preset.name}' is for {preset.frequency_hz:g} Hz"
    return preset.stage_of(round(float(kpa), REPORTED_DECIMALS)).stage, None


def at_least_f2(label: str | None, kpa: float | None, preset: Preset) -> bool | None:
    """>= F2 from a stage label (a preset band name or F0..F4), else from the kPa value."""
    if label:
        for band in preset.bands:
            if band.stage == label:
                return band.at_least_f2
        lab = label.strip().upper()
        if lab in ("F0", "F1", "F0-F1"):
            return False
        if lab in ("F2", "F3", "F4", ">=F2"):
            return True
    if kpa is not None:
        return preset.stage_of(round(kpa, REPORTED_DECIMALS)).at_least_f2
    return None
