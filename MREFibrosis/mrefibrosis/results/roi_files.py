"""ROIs in and out: Slicer .seg.nrrd, plain labelmaps (.nrrd, .nii.gz) and DICOM SEG.

Every ROI is mapped onto the elastogram grid by physical position (nearest neighbour), so an ROI
drawn on another grid, cropped by Slicer to its extent, or stored in RAS still lands where it was
drawn.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MREFibrosisError, RoiError
from ..reading.geometry import Geometry

LIVER_SCT = "10200004"
ROI_SEGMENT_ID = "mre_liver_roi"
ROI_SEGMENT_NAME = "Liver MRE ROI"
LIVER_TERMINOLOGY = (
    "Segmentation category and type - 3D Slicer General Anatomy list~SCT^123037004^Anatomical Structure"
    "~SCT^10200004^Liver~^^~Anatomic codes - DICOM master list~^^~^^"
)
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class RoiVolume:
    """A binary mask indexed (i, j, k) with the matrix that maps those indices to LPS mm."""

    mask: np.ndarray  # bool, axes (i, j, k)
    ijk_to_lps: np.ndarray  # 4x4
    source: str


def resample_to_exam(roi: RoiVolume | list[RoiVolume], geometry: Geometry) -> np.ndarray:
    """Nearest-neighbour lookup of each elastogram pixel centre in the ROI (slices, rows, columns)."""
    volumes = roi if isinstance(roi, list) else [roi]
    out = np.zeros(geometry.shape, dtype=bool)
    for vol in volumes:
        inv = np.linalg.inv(vol.ijk_to_lps)
        size = np.array(vol.mask.shape)
        for k in range(geometry.n_slices):
            pts = geometry.pixel_centres_lps(k).reshape(-1, 3)
            ijk = pts @ inv[:3, :3].T + inv[:3, 3]
            idx = np.floor(ijk + 0.5 + 1e-6).astype(np.int64)
            inside = np.all((idx >= 0) & (idx < size), axis=1)
            hit = np.zeros(len(pts), dtype=bool)
            ii = idx[inside]
            hit[inside] = vol.mask[ii[:, 0], ii[:, 1], ii[:, 2]]
            out[k] |= hit.reshape(geometry.rows, geometry.columns)
    return out


# ---------------------------------------------------------------------------------------- reading


def _nrrd_affine(header: dict, spatial_axes: list[int]) -> np.ndarray:
    space = str(header.get("space", "left-posterior-superior")).lower()
    directions = np.asarray(header["space directions"], dtype=object)
    rows = [np.asarray(directions[a], dtype=float) for a in spatial_axes]
    m = np.eye(4)
    for n, d in enumerate(rows):
        m[:3, n] = d
    m[:3, 3] = np.asarray(header.get("space origin", [0, 0, 0]), dtype=float)
    if space in ("right-anterior-superior", "ras"):
        m = _RAS_TO_LPS @ m
    elif space not in ("left-posterior-superior", "lps"):
        raise RoiError(f"NRRD space '{space}' is not supported; save the ROI from 3D Slicer (LPS or RAS).")
    return m


def _pick_segment(header: dict) -> tuple[int, int, str]:
    """(layer, label value, segment id) of the liver ROI segment: by our ID, then liver code, then first."""
    segments = []
    n = 0
    while f"Segment{n}_ID" in header:
        tags = str(header.get(f"Segment{n}_Tags", ""))
        segments.append(
            (
                str(header.get(f"Segment{n}_ID")),
                int(header.get(f"Segment{n}_Layer", 0) or 0),
                int(header.get(f"Segment{n}_LabelValue", 1) or 1),
                tags,
            )
        )
        n += 1
    if not segments:
        return -1, -1, ""
    for want in (lambda s: s[0] == ROI_SEGMENT_ID, lambda s: f"^{LIVER_SCT}^" in s[3]):
        for seg in segments:
            if want(seg):
                return seg[1], seg[2], seg[0]
    return segments[0][1], segments[0][2], segments[0][0]


def read_nrrd_roi(path: Path) -> RoiVolume:
    import nrrd

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, header = nrrd.read(str(path))
    except Exception as exc:
        raise RoiError(f"{path.name}: not a readable NRRD file ({type(exc).__name__}); save the ROI again from 3D Slicer.") from None
    if "space directions" not in header:
        raise RoiError(f"{path.name}: NRRD without 'space directions'; the ROI has no position and cannot be aligned.")
    directions = header["space directions"]
    spatial = [
        a for a, d in enumerate(directions) if d is not None and not (isinstance(d, float) and np.isnan(d)) and not np.all(np.isnan(np.asarray(d, dtype=float)))
    ]
    if len(spatial) != 3 or data.ndim not in (3, 4):
        raise RoiError(f"{path.name}: expected a 3D labelmap or a Slicer segmentation, found {data.ndim} axes.")
    layer, label, seg_id = _pick_segment(header)
    if data.ndim == 4:
        layer_axis = [a for a in range(4) if a not in spatial][0]
        data = np.take(data, max(layer, 0), axis=layer_axis)
    mask = data == label if label > 0 else data > 0
    source = f"{path.name} segment '{seg_id}'" if seg_id else path.name
    return RoiVolume(mask.astype(bool), _nrrd_affine(header, spatial), source)


def read_nifti_roi(path: Path) -> RoiVolume:
    from .._packages import require

    require("SimpleITK", f"{path.name}: reading a NIfTI ROI", "nifti")
    import SimpleITK as sitk

    try:
        img = sitk.ReadImage(str(path))
    except Exception:
        raise RoiError(f"{path.name}: not a readable NIfTI file; save the labelmap again.") from None
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise RoiError(f"{path.name}: expected a 3D single-component labelmap.")
    arr = sitk.GetArrayFromImage(img)  # (k, j, i)
    m = np.eye(4)
    direction = np.asarray(img.GetDirection()).reshape(3, 3)
    m[:3, :3] = direction * np.asarray(img.GetSpacing())[None, :]
    m[:3, 3] = img.GetOrigin()
    return RoiVolume(np.transpose(arr, (2, 1, 0)) > 0, m, path.name)


SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
FRACTION_IN_ROI = 0.5  # a FRACTIONAL SEG (probability or occupancy) counts a pixel from 50 %


def _chosen_segment(ds) -> int:
    """The liver segment (SCT 10200004) when one is coded so, else the first."""
    segments = list(ds.SegmentSequence)
    for seg in segments:
        codes = seg.get("SegmentedPropertyTypeCodeSequence") or []
        if codes and str(codes[0].get("CodeValue", "")) == LIVER_SCT:
            return int(seg.SegmentNumber)
    return int(segments[0].SegmentNumber)


def read_dicom_seg_roi(path: Path, slice_step_mm: float) -> list[RoiVolume]:
    """The liver segment of a DICOM SEG of any type (BINARY, FRACTIONAL at 50 %, LABELMAP),
    decoded by highdicom, the field's own SEG library."""
    from ..reading.dicom_files import read_header

    header = read_header(path)  # bounded, typed errors for files that are not DICOM at all
    if str(header.get("SOPClassUID", "")) not in (SEG_SOP_CLASS, "1.2.840.10008.5.1.4.1.1.66.7"):
        raise RoiError(f"{path.name}: a DICOM file but not a Segmentation object.")
    try:
        import highdicom as hd
    except ImportError:
        raise RoiError(f"{path.name}: reading a DICOM SEG needs highdicom (pip install 'mrefibrosis[dicom]'); or give the ROI as .seg.nrrd.") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = hd.seg.segread(str(path))
            chosen = _chosen_segment(seg)
            volume = seg.get_volume(segment_numbers=[chosen], combine_segments=False, rescale_fractional=True)
    except Exception as exc:
        raise RoiError(f"{path.name}: DICOM SEG cannot be decoded ({type(exc).__name__}: {str(exc)[:120]}); re-export it.") from None
    arr = np.asarray(volume.array)
    if arr.ndim == 4:
        arr = arr[..., 0]
    seg_type = str(seg.get("SegmentationType", "BINARY")).upper()
    mask = arr >= FRACTION_IN_ROI if seg_type == "FRACTIONAL" else arr > 0
    affine = np.asarray(volume.affine, dtype=float)  # maps (slice, row, column) indices to LPS
    ijk_to_lps = affine[:, [2, 1, 0, 3]]
    if arr.shape[0] == 1 or not np.any(ijk_to_lps[:3, 2]):  # one frame: give it the elastogram's thickness
        normal = np.cross(ijk_to_lps[:3, 0], ijk_to_lps[:3, 1])
        ijk_to_lps[:3, 2] = normal / max(np.linalg.norm(normal), 1e-9) * slice_step_mm
    return [RoiVolume(np.transpose(mask, (2, 1, 0)), ijk_to_lps, path.name)]


def read_roi(path: str | os.PathLike, geometry: Geometry) -> np.ndarray:
    """Read an ROI file of any supported kind and return it on the exam grid."""
    path = Path(path)
    if not path.is_file():
        raise RoiError(f"{path}: ROI file not found.")
    name = path.name.lower()
    try:
        if name.endswith(".nrrd") or name.endswith(".nhdr"):
            roi: RoiVolume | list[RoiVolume] = read_nrrd_roi(path)
        elif name.endswith(".nii") or name.endswith(".nii.gz"):
            roi = read_nifti_roi(path)
        elif name.endswith(".dcm") or "." not in name:
            roi = read_dicom_seg_roi(path, geometry.slice_step_mm)
        else:
            raise RoiError(f"{path.name}: unsupported ROI format; use .seg.nrrd, .nrrd, .nii.gz or a DICOM SEG (.dcm).")
    except MREFibrosisError as exc:
        raise RoiError(str(exc)) from None
    mask = resample_to_exam(roi, geometry)
    volumes = roi if isinstance(roi, list) else [roi]
    if not any(v.mask.any() for v in volumes):
        return mask  # an empty segmentation: the reader drew nothing, so the exam is indeterminate
    if not mask.any():
        raise RoiError(f"{path.name}: the ROI does not overlap the elastogram slices; check that it belongs to this exam.")
    return mask


# ---------------------------------------------------------------------------------------- writing


def write_seg_nrrd(
    path: str | os.PathLike, roi: np.ndarray, geometry: Geometry, color=(0.86, 0.38, 0.2), segment: tuple[str, str] = (ROI_SEGMENT_ID, ROI_SEGMENT_NAME)
) -> None:
    """Write a Slicer segmentation (one binary labelmap segment, id and name `segment`) on the exam's
    regular grid."""
    import nrrd

    roi = np.asarray(roi, dtype=bool)
    if roi.shape != geometry.shape:
        raise RoiError(f"ROI shape {roi.shape} does not match the exam grid {geometry.shape}.")
    data = np.transpose(roi, (2, 1, 0)).astype(np.uint8)  # (i, j, k)
    m = geometry.ijk_to_lps()
    if roi.any():
        nz = np.argwhere(data)
        lo, hi = nz.min(axis=0), nz.max(axis=0)
        extent = f"{lo[0]} {hi[0]} {lo[1]} {hi[1]} {lo[2]} {hi[2]}"
    else:
        extent = "0 -1 0 -1 0 -1"
    header = {
        "type": "unsigned char",
        "dimension": 3,
        "space": "left-posterior-superior",
        "sizes": list(data.shape),
        "space directions": m[:3, :3].T.tolist(),
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
        "space origin": m[:3, 3].tolist(),
        "Segment0_Color": " ".join(f"{c:.6f}" for c in color),
        "Segment0_ColorAutoGenerated": "0",
        "Segment0_Extent": extent,
        "Segment0_ID": segment[0],
        "Segment0_LabelValue": "1",
        "Segment0_Layer": "0",
        "Segment0_Name": segment[1],
        "Segment0_NameAutoGenerated": "0",
        "Segment0_Tags": f"TerminologyEntry:{LIVER_TERMINOLOGY}|",
        "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
        "Segmentation_MasterRepresentation": "Binary labelmap",
        "Segmentation_ReferenceImageExtentOffset": "0 0 0",
    }
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial.nrrd")
    try:
        nrrd.write(str(tmp), data, header, index_order="F")
        # drop pynrrd's dated comment lines so that the same ROI always gives the same bytes
        raw = tmp.read_bytes()
        head, sep, body = raw.partition(b"\n\n")
        head = b"\n".join(line for line in head.split(b"\n") if not line.startswith(b"#"))
        tmp.write_bytes(head + sep + body)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
