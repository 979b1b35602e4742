"""Optional series read onto the elastogram's grid (magnitude, wave images): never fatal.

Why one place: an exam must still be measured when an optional series is damaged or lies on another
grid, so each of them is read the same way: decoded, placed on the elastogram's slices, recorded as
used, or skipped with a reader warning.
"""

from __future__ import annotations

import numpy as np

from ..errors import MREFibrosisError
from .exam import SeriesUse
from .findings import FLAG_OPTIONAL_SERIES_SKIPPED, ReaderFinding
from .geometry import Geometry
from .series import InstanceRef, SeriesInfo
from .slice_witnesses import Witness
from .stacks import align_to, load_stack


def read_on_grid(
    s: SeriesInfo,
    refs: list[InstanceRef],
    geom: Geometry,
    limits,
    what: str,
    used: list[SeriesUse],
    findings: list[ReaderFinding],
    witnesses: list[Witness] | None = None,
    **load_options,
) -> np.ndarray | None:
    """The series' images on the elastogram's slices as float32, or None when it cannot be used; the
    slice positions it holds are added to `witnesses` (slice completeness)."""
    found = read_with_figures_on_grid(s, refs, geom, limits, what, used, findings, witnesses, **load_options)
    return found[0] if found is not None else None


def read_with_figures_on_grid(
    s: SeriesInfo,
    refs: list[InstanceRef],
    geom: Geometry,
    limits,
    what: str,
    used: list[SeriesUse],
    findings: list[ReaderFinding],
    witnesses: list[Witness] | None = None,
    **load_options,
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """`read_on_grid` with the per-slice figures of `load_stack(figure_of_same_position=...)` on the
    same slices (None without that option)."""
    try:
        st = load_stack(s, limits, instances=refs, **load_options)
    except MREFibrosisError as exc:
        findings.append(ReaderFinding(FLAG_OPTIONAL_SERIES_SKIPPED, f"{what} not used: {exc}"))
        return None
    match = align_to(geom, st)
    if any(m is None for m in match):
        return None
    used.append(SeriesUse(s.role, s.series_number, s.description, len(refs)))
    if witnesses is not None:
        witnesses.append(Witness(s.label, st.geometry.positions))
    figures = np.array([st.figures[m] for m in match], np.float32) if st.figures is not None else None
    return np.stack([st.stored[m] for m in match]).astype(np.float32), figures
