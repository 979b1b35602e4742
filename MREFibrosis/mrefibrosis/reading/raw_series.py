"""The GE MR-Touch raw series split into its phase and magnitude images by what each image holds.

Why: the real GE exam stores phase first and magnitude second in instance order (domain doc section
1), but that order is an assumption a re-export or a PACS renumbering breaks: magnitude numbered
first made the real exam `indeterminate: liver dark on the magnitude images` (a wrong reason), an
interleaved numbering dropped the magnitude without a note, one missing image averaged a phase image
into a magnitude slice (a false breath-hold alarm). The images tell themselves apart: phase is
radians x 1000, signed, about half of its pixels negative (wraps at +-3142); magnitude is an
intensity, never negative. Headers help where they say it (ComplexImageComponent, ImageType P/M).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from ..errors import MREFibrosisError
from .dicom_files import read_pixels
from .findings import FLAG_RAW_IMAGES_MISSING, ReaderFinding
from .series import InstanceRef, SeriesInfo

PHASE = "phase"
MAGNITUDE = "magnitude"
MIN_NEGATIVE_SHARE_OF_PHASE = 0.05  # of the non-zero pixels; a magnitude image has none
PHASE_TOKENS = frozenset({"P", "PHASE"})
MAGNITUDE_TOKENS = frozenset({"M", "MAGNITUDE"})


@dataclass
class RawSplit:
    phase: list[InstanceRef]
    magnitude: list[InstanceRef]
    how: str  # "content" or "instance order" (no image held a negative value: the content cannot tell)
    findings: list[ReaderFinding] = field(default_factory=list)
    # each image as decoded for the split, so the magnitude and the wave amplitude are built from it
    # without reading and decoding the files again
    decoded: dict = field(default_factory=dict, repr=False)


def _kind_from_header(ds: Dataset) -> str | None:
    component = str(ds.get("ComplexImageComponent", "") or "").strip().upper()
    if component in ("PHASE", "MAGNITUDE"):
        return PHASE if component == "PHASE" else MAGNITUDE
    tokens = {str(t).strip().upper() for t in (ds.get("ImageType", []) or [])}
    if tokens & PHASE_TOKENS and not tokens & MAGNITUDE_TOKENS:
        return PHASE
    if tokens & MAGNITUDE_TOKENS and not tokens & PHASE_TOKENS:
        return MAGNITUDE
    return None


def _kind_from_values(values: np.ndarray) -> str | None:
    nonzero = values[values != 0]
    if nonzero.size == 0:
        return None
    return PHASE if float(np.mean(nonzero < 0)) >= MIN_NEGATIVE_SHARE_OF_PHASE else MAGNITUDE


def _position_key(ds: Dataset) -> tuple | None:
    try:
        return tuple(round(float(v), 1) for v in ds.ImagePositionPatient)
    except Exception:
        return None


def _order_halves(s: SeriesInfo) -> tuple[list[InstanceRef], list[InstanceRef]]:
    ordered = sorted(s.instances, key=lambda r: (r.instance_number is None, r.instance_number or 0))
    return ordered[: len(ordered) // 2], ordered[len(ordered) // 2 :]


def split_raw(s: SeriesInfo, limits) -> RawSplit:
    """(phase, magnitude) images of a raw MRE series, each image judged by its header, else by its
    values; images that cannot be judged or read are left out and counted in a finding. Computed
    once per series (the magnitude and the wave amplitude both ask)."""
    if isinstance(s.split_cache, RawSplit):
        return s.split_cache
    phase, magnitude, unknown = [], [], 0
    positions: dict[str, Counter] = {PHASE: Counter(), MAGNITUDE: Counter()}
    signed_seen = header_said = False
    decoded = {}
    for ref in s.instances:
        try:
            ds, values = read_pixels(ref.path, limits, known=ref.known)
        except MREFibrosisError:
            unknown += 1
            continue
        decoded[ref.path] = (ds, values)
        said = _kind_from_header(ds)
        header_said |= said is not None
        kind = said or _kind_from_values(np.asarray(values))
        signed_seen |= bool(np.any(np.asarray(values) < 0))
        if kind is None:
            unknown += 1
            continue
        (phase if kind == PHASE else magnitude).append(ref)
        positions[kind][_position_key(ds)] += 1
    if not signed_seen and not header_said:
        # unsigned storage: every image looks like a magnitude; fall back to the order GE writes
        first, second = _order_halves(s)
        split = RawSplit(first, second, "instance order", decoded=decoded)
    else:
        split = RawSplit(phase, magnitude, "content", decoded=decoded)
        split.findings = _missing_findings(s, positions, unknown)
    s.split_cache = split
    return split


def _missing_findings(s: SeriesInfo, positions: dict[str, Counter], unknown: int) -> list[ReaderFinding]:
    """Every slice holds as many phase as magnitude images, and as many as the other slices."""
    counts = [n for per_kind in positions.values() for n in per_kind.values()]
    if not counts:
        return []
    expected = max(counts)
    short = []
    for kind, per_position in positions.items():
        for key, n in per_position.items():
            if n < expected:
                where = f"{key[2]:.1f} mm" if key is not None and len(key) == 3 else "a slice"
                short.append(f"{expected - n} {kind} image(s) at {where}")
    if set(positions[PHASE]) != set(positions[MAGNITUDE]):
        short.append("slices with phase images but no magnitude images or the reverse")
    if unknown:
        short.append(f"{unknown} image(s) neither phase nor magnitude or unreadable")
    if not short:
        return []
    return [ReaderFinding(FLAG_RAW_IMAGES_MISSING, f"{s.label}: raw images are missing ({'; '.join(short)}); those slices average fewer offsets")]
