"""Slice completeness from the exam's own series: a position that the confidence, magnitude, raw or
wave series holds and the elastogram does not is a lost elastogram slice.

Why not ImagesInAcquisition: on the real GE MR-Touch exam every series carries ImagesInAcquisition =
64 and NumberOfTemporalPositions = 4, the raw acquisition's image count (8 slices x 4 offsets x phase
and magnitude), not the number of stiffness slices (domain doc section 5); read as a slice count it
calls every complete real exam incomplete. The other series of the same acquisition are witnesses
that mean what they say: each lies on the slices that were acquired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .findings import FLAG_SLICE_GAP, ReaderFinding
from .geometry import Geometry


@dataclass(frozen=True)
class Witness:
    """The slice positions (LPS mm, one row a slice) another series of the exam lies on."""

    label: str
    positions: np.ndarray


def positions_off_grid(reference: Geometry, witness: Witness) -> np.ndarray:
    """The witness's slice locations (mm along the reference normal) that no reference slice lies on."""
    tol = 0.5 * min(reference.row_spacing_mm, reference.column_spacing_mm)
    normal = reference.normal
    off = [p for p in np.atleast_2d(witness.positions) if np.min(np.linalg.norm(reference.positions - p, axis=1)) > tol]
    return np.array([float(p @ normal) for p in off])


def missing_slice_findings(reference: Geometry, label: str, witnesses: list[Witness]) -> list[ReaderFinding]:
    """A slice_gap finding naming the positions other series hold and the elastogram lacks."""
    missing: dict[float, list[str]] = {}
    for w in witnesses:
        for loc in positions_off_grid(reference, w):
            missing.setdefault(round(float(loc), 1), []).append(w.label)
    if not missing:
        return []
    where = ", ".join(f"{loc:.1f} mm ({' and '.join(sorted(set(names)))})" for loc, names in sorted(missing.items()))
    n = len(missing)
    return [
        ReaderFinding(
            FLAG_SLICE_GAP,
            f"{label}: {n} slice position{'s' if n > 1 else ''} of the exam {'are' if n > 1 else 'is'} missing from the elastogram "
            f"(held by {where}): a slice is missing or unreadable",
        )
    ]
