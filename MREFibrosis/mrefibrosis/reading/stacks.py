"""Decode a series into a (slices, rows, columns) stack placed in patient space."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from ..errors import PixelDataError, SeriesError
from .dicom_files import PixelLimits, read_pixels
from .geometry import Geometry, build_geometry
from .series import InstanceRef, SeriesInfo


@dataclass
class Stack:
    """Stored (not rescaled) pixel values of one series, sorted along the slice normal."""

    info: SeriesInfo
    stored: np.ndarray  # (slices, rows, columns), original dtype where possible
    geometry: Geometry
    headers: list[Dataset]  # one per slice, same order
    figures: np.ndarray | None = None  # (slices, figures) from load_stack's figure_of_same_position


@dataclass
class _Plane:
    position: np.ndarray
    orientation: np.ndarray
    spacing: tuple[float, float]
    thickness: float | None
    image: np.ndarray
    header: Dataset
    instance_number: int
    figure: tuple[float, ...] = ()


MAX_ABS_POSITION_MM = 1e5  # a scanner's field of view is well under a metre
PIXEL_SPACING_RANGE_MM = (0.01, 100.0)


def _floats(value, n: int, what: str, label: str) -> np.ndarray:
    try:
        arr = np.array([float(v) for v in value], dtype=float)
    except Exception:
        raise SeriesError(f"{label}: {what} holds an invalid number; the geometry cannot be used.") from None
    if arr.shape != (n,):
        raise SeriesError(f"{label}: {what} must hold {n} numbers, found {arr.size}.")
    if not np.all(np.isfinite(arr)):
        raise SeriesError(f"{label}: {what} holds a non-finite number; the geometry cannot be used.")
    return arr


def _optional_float(value) -> float | None:
    try:
        v = None if value in (None, "") else float(value)
    except Exception:
        return None
    return v if v is not None and np.isfinite(v) else None


def _plane_geometry(position, orientation, spacing, label: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """One image's position, orientation and pixel spacing, each checked before any use."""
    for name, value in (("ImagePositionPatient", position), ("ImageOrientationPatient", orientation), ("PixelSpacing", spacing)):
        if value in (None, ""):
            raise SeriesError(f"{label}: an image lacks {name}; without it the ROI cannot be placed or its area computed.")
    pos = _floats(position, 3, "ImagePositionPatient", label)
    ori = _floats(orientation, 6, "ImageOrientationPatient", label)
    sp = _floats(spacing, 2, "PixelSpacing", label)
    if np.max(np.abs(pos)) > MAX_ABS_POSITION_MM:
        raise SeriesError(f"{label}: ImagePositionPatient lies over {MAX_ABS_POSITION_MM / 1000:g} m from the scanner centre; the geometry is corrupt.")
    lo, hi = PIXEL_SPACING_RANGE_MM
    if np.any(sp < lo) or np.any(sp > hi):
        raise SeriesError(f"{label}: PixelSpacing {sp[0]:g} x {sp[1]:g} mm is outside {lo:g}-{hi:g} mm; the areas would be meaningless, re-export the series.")
    return pos, ori, (float(sp[0]), float(sp[1]))


def _first_item(seq):
    try:
        return seq[0] if seq else None
    except Exception:
        return None


def _planes_of(ds: Dataset, image: np.ndarray, label: str, instance_number: int) -> list[_Plane]:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = _first_item(ds.get("SharedFunctionalGroupsSequence")) or Dataset()
    images = image.reshape((-1,) + image.shape[-2:]) if image.ndim >= 2 else image
    if images.ndim != 3 or images.shape[0] != frames:
        raise PixelDataError(f"{label}: the image holds {images.shape[0] if images.ndim == 3 else 0} frames but NumberOfFrames says {frames}.")
    if frames == 1 and not any(_first_item(item.get(g)) is not None for item in per_frame for g in ("PlanePositionSequence",)):
        # classic single-frame image (functional groups, if any, hold no geometry)
        pos, ori, sp = _plane_geometry(ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient"), ds.get("PixelSpacing"), label)
        return [_Plane(pos, ori, sp, _optional_float(ds.get("SliceThickness")), images[0], ds, instance_number)]
    # Enhanced multi-frame: geometry lives in functional groups.
    if len(per_frame) != frames:
        raise SeriesError(f"{label}: multi-frame image without per-frame positions; cannot place its slices.")
    planes = []
    for f in range(frames):
        item = per_frame[f]

        def group(name: str, item=item):
            own = _first_item(item.get(name))
            return own if own is not None else _first_item(shared.get(name))

        pos, ori, meas = group("PlanePositionSequence"), group("PlaneOrientationSequence"), group("PixelMeasuresSequence")
        if pos is None or ori is None or meas is None:
            raise SeriesError(f"{label}: frame {f + 1} lacks plane position, orientation or pixel spacing.")
        p, o, sp = _plane_geometry(pos.get("ImagePositionPatient"), ori.get("ImageOrientationPatient"), meas.get("PixelSpacing"), label)
        planes.append(_Plane(p, o, sp, _optional_float(meas.get("SliceThickness")), images[f], ds, instance_number * 10000 + f))
    return planes


def load_stack(
    info: SeriesInfo,
    limits: PixelLimits,
    instances: list[InstanceRef] | None = None,
    average_same_position: bool = False,
    combine_same_position: Callable[[np.ndarray], np.ndarray] | None = None,
    figure_of_same_position: Callable[[np.ndarray], tuple[float, ...]] | None = None,
    decoded: dict | None = None,
) -> Stack:
    """Decode the series; images sharing a position are averaged (magnitude), combined in acquisition
    order by `combine_same_position` ((time, rows, columns) -> (rows, columns): wave images), or
    refused (maps). `figure_of_same_position` ((time, rows, columns) -> a tuple of floats, the same
    length for any input) describes each position's images before they are combined (Stack.figures,
    (slices, figures): how alike and how far apart a slice's offsets are). `decoded` (path -> (header,
    values)) holds images already decoded (the raw series' split), used instead of the files."""
    label = info.label
    planes: list[_Plane] = []
    refs = instances if instances is not None else info.instances
    if not refs:
        raise SeriesError(f"{label}: no images.")
    for n, ref in enumerate(refs):
        ds, arr = decoded[ref.path] if decoded and ref.path in decoded else read_pixels(ref.path, limits, known=ref.known)
        if arr.ndim == 3 and int(ds.get("SamplesPerPixel", 1) or 1) == 3:
            raise PixelDataError(f"{label}: colour (RGB) images cannot be measured; select the grayscale elastogram series.")
        planes.extend(_planes_of(ds, arr, label, ref.instance_number if ref.instance_number is not None else n))
    first = planes[0]
    for p in planes[1:]:
        if p.image.shape != first.image.shape:
            raise SeriesError(f"{label}: images of different sizes ({first.image.shape} and {p.image.shape}) in one series.")
        if np.max(np.abs(p.orientation - first.orientation)) > 1e-3:
            raise SeriesError(f"{label}: images with different orientations in one series; select one stack.")
        if np.max(np.abs(np.subtract(p.spacing, first.spacing))) > 1e-4:
            raise SeriesError(f"{label}: images with different pixel spacings in one series.")
    if average_same_position or combine_same_position is not None:
        planes = _combine_same_position(planes, first.orientation, combine_same_position or _mean_over_time, figure_of_same_position)
    rows, cols = first.image.shape
    geom, order = build_geometry([p.position for p in planes], first.orientation, first.spacing, rows, cols, first.thickness, label)
    stored = np.stack([planes[i].image for i in order])
    figures = np.array([planes[i].figure for i in order]) if figure_of_same_position is not None else None
    return Stack(info=info, stored=stored, geometry=geom, headers=[planes[i].header for i in order], figures=figures)


def _mean_over_time(frames: np.ndarray) -> np.ndarray:
    return frames.mean(axis=0)


def _combine_same_position(
    planes: list[_Plane],
    orientation: np.ndarray,
    combine: Callable[[np.ndarray], np.ndarray],
    figure: Callable[[np.ndarray], tuple[float, ...]] | None = None,
) -> list[_Plane]:
    normal = np.cross(orientation[:3], orientation[3:6])
    groups: dict[int, list[_Plane]] = {}
    for p in planes:
        groups.setdefault(int(round(float(p.position @ normal) * 10)), []).append(p)
    out = []
    for members in groups.values():
        members = sorted(members, key=lambda m: m.instance_number)  # acquisition order of the time points
        frames = np.stack([m.image.astype(np.float32) for m in members])
        combined = combine(frames).astype(np.float32)
        m0 = members[0]
        value = tuple(figure(frames)) if figure is not None else ()
        out.append(_Plane(m0.position, m0.orientation, m0.spacing, m0.thickness, combined, m0.header, m0.instance_number, value))
    return out


def align_to(reference: Geometry, stack: Stack) -> list[int | None]:
    """Index of the stack slice that lies on each reference slice (same grid), or None."""
    g = stack.geometry
    if (g.rows, g.columns) != (reference.rows, reference.columns):
        return [None] * reference.n_slices
    if np.max(np.abs(g.row_direction - reference.row_direction)) > 1e-3 or np.max(np.abs(g.column_direction - reference.column_direction)) > 1e-3:
        return [None] * reference.n_slices
    for mine, theirs in ((g.row_spacing_mm, reference.row_spacing_mm), (g.column_spacing_mm, reference.column_spacing_mm)):
        if abs(mine - theirs) > 1e-3 * theirs:  # same size, other spacing: the pixels do not coincide
            return [None] * reference.n_slices
    tol = 0.5 * min(reference.row_spacing_mm, reference.column_spacing_mm)
    out: list[int | None] = []
    for k in range(reference.n_slices):
        d = np.linalg.norm(g.positions - reference.positions[k], axis=1)
        j = int(np.argmin(d))
        out.append(j if d[j] <= tol else None)
    return out
