"""Slice-stack geometry in DICOM patient coordinates (LPS, millimetres).

MRE exams are a few thick axial slices, often with gaps and sometimes unevenly spaced, so the
geometry keeps every slice's own position; a regular grid (for .seg.nrrd files) is derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SeriesError


@dataclass(frozen=True)
class Geometry:
    """Where each pixel of a (slices, rows, columns) stack lies in patient space."""

    row_direction: np.ndarray  # unit vector along a row (increasing column index), IOP[0:3]
    column_direction: np.ndarray  # unit vector down a column (increasing row index), IOP[3:6]
    row_spacing_mm: float  # distance between adjacent rows, PixelSpacing[0]
    column_spacing_mm: float  # distance between adjacent columns, PixelSpacing[1]
    positions: np.ndarray  # (slices, 3) centre of the first pixel of each slice, sorted along the normal
    rows: int
    columns: int
    slice_thickness_mm: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_slices(self) -> int:
        return int(self.positions.shape[0])

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.n_slices, self.rows, self.columns)

    @property
    def normal(self) -> np.ndarray:
        n = np.cross(self.row_direction, self.column_direction)
        return n / np.linalg.norm(n)

    @property
    def slice_locations_mm(self) -> np.ndarray:
        """Signed distance of each slice along the normal, increasing with slice index."""
        return self.positions @ self.normal

    @property
    def slice_step_mm(self) -> float:
        """Mean distance between slice centres; the slice thickness (or 1 mm) for one slice."""
        if self.n_slices > 1:
            return float(np.mean(np.diff(self.slice_locations_mm)))
        return float(self.slice_thickness_mm or 1.0)

    @property
    def pixel_area_mm2(self) -> float:
        return self.row_spacing_mm * self.column_spacing_mm

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 matrix from (column i, row j, slice k) indices to LPS mm on the regular grid."""
        m = np.eye(4)
        m[:3, 0] = self.row_direction * self.column_spacing_mm
        m[:3, 1] = self.column_direction * self.row_spacing_mm
        m[:3, 2] = self.normal * self.slice_step_mm
        m[:3, 3] = self.positions[0]
        return m

    def pixel_centres_lps(self, k: int) -> np.ndarray:
        """(rows, columns, 3) LPS coordinates of the pixel centres of slice k, at its true position."""
        j, i = np.mgrid[0 : self.rows, 0 : self.columns]
        return (
            self.positions[k][None, None, :]
            + i[..., None] * (self.row_direction * self.column_spacing_mm)
            + j[..., None] * (self.column_direction * self.row_spacing_mm)
        )


def _unit(v: np.ndarray, what: str) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm < 1e-6:
        raise SeriesError(f"ImageOrientationPatient has a zero or invalid {what} vector; the series geometry is unusable.")
    return v / norm


def build_geometry(
    positions: list[np.ndarray],
    orientation: np.ndarray,
    pixel_spacing: tuple[float, float],
    rows: int,
    columns: int,
    slice_thickness: float | None,
    series_label: str,
) -> tuple[Geometry, np.ndarray]:
    """Validate per-slice geometry and return it with the order that sorts slices along the normal."""
    row_dir = _unit(np.asarray(orientation[:3], dtype=float), "row")
    col_dir = _unit(np.asarray(orientation[3:6], dtype=float), "column")
    if abs(float(row_dir @ col_dir)) > 1e-3:
        raise SeriesError(f"{series_label}: ImageOrientationPatient row and column vectors are not orthogonal.")
    dr, dc = float(pixel_spacing[0]), float(pixel_spacing[1])
    if not (np.isfinite(dr) and np.isfinite(dc)) or dr <= 0 or dc <= 0:
        raise SeriesError(f"{series_label}: PixelSpacing {dr} x {dc} mm is zero, negative or invalid.")
    pos = np.asarray(positions, dtype=float).reshape(-1, 3)
    if not np.all(np.isfinite(pos)):
        raise SeriesError(f"{series_label}: ImagePositionPatient holds non-finite values.")
    normal = np.cross(row_dir, col_dir)
    order = np.argsort(pos @ normal, kind="stable")
    pos = pos[order]
    notes: list[str] = []
    if len(pos) > 1:
        steps = np.diff(pos @ normal)
        if np.any(steps < 1e-3):
            raise SeriesError(
                f"{series_label}: two images share one slice position; the series mixes acquisitions. Select a single stiffness series with --stiffness-series."
            )
        in_plane = pos[1:] - pos[:-1] - np.outer(steps, normal)
        if np.max(np.linalg.norm(in_plane, axis=1)) > 0.5 * min(dr, dc) + 1e-3:
            notes.append("slices are shifted in-plane relative to each other; each slice keeps its own position")
        if np.max(steps) > 1.05 * np.min(steps) + 0.01:
            notes.append(f"uneven slice spacing ({np.min(steps):.2f} to {np.max(steps):.2f} mm)")
    thickness = None
    if slice_thickness is not None and np.isfinite(slice_thickness) and slice_thickness > 0:
        thickness = float(slice_thickness)
    geom = Geometry(
        row_direction=row_dir,
        column_direction=col_dir,
        row_spacing_mm=dr,
        column_spacing_mm=dc,
        positions=pos,
        rows=int(rows),
        columns=int(columns),
        slice_thickness_mm=thickness,
        notes=tuple(notes),
    )
    return geom, order
