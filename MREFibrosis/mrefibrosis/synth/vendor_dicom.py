"""Write MRE series in the vendor styles of the domain notes (GE MR-Touch, Siemens MRE).

Used by the synthetic-exam generator and the test fixtures. Files carry only non-identifying
patient tags, a zeroed preamble and deterministic UIDs derived from a seed string.
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from .. import __version__
from ..results.dicom_uids import det_uid

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


@dataclass
class StudyContext:
    """Study-level attributes shared by every series of one exam."""

    key: str  # seed string for UIDs
    manufacturer: str
    model: str
    patient_id: str = "SYNTHETIC"
    patient_name: str = "SYNTHETIC^MRE"
    sex: str = "O"
    age: str = ""
    study_date: str = "20260101"
    field_strength: float = 1.5
    study_uid: str = field(default="")
    frame_of_reference_uid: str = field(default="")

    def __post_init__(self):
        self.study_uid = self.study_uid or det_uid(self.key, "study")
        self.frame_of_reference_uid = self.frame_of_reference_uid or det_uid(self.key, "for")


@dataclass
class PlaneStack:
    """Geometry of an axial slice stack (first-pixel positions in LPS mm)."""

    positions: np.ndarray  # (slices, 3)
    pixel_spacing: tuple[float, float]
    slice_thickness: float
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass
class SeriesSpec:
    number: int
    description: str
    image_type: list[str]
    pixels: np.ndarray  # (images, rows, cols) int16/uint16, or (images, rows, cols, 3) uint8 for RGB
    slice_index: list[int]  # which plane of the stack each image lies on
    window: tuple[float, float] | None = None
    extra: dict = field(default_factory=dict)  # keyword -> value, or (group, element, VR) -> value
    private: list[tuple[int, str, int, str, object]] = field(default_factory=list)  # (group, creator, elem, VR, value)
    sequence_name: str = ""
    image_comments: str = ""


def _base_dataset(ctx: StudyContext, spec: SeriesSpec, sop_uid: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = det_uid("MREFibrosis", __version__)
    meta.ImplementationVersionName = f"MREFIB_{__version__}"[:16]
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = MR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ctx.study_date
    ds.SeriesDate = ctx.study_date
    ds.ContentDate = ctx.study_date
    ds.StudyTime = "120000"
    ds.SeriesTime = "120000"
    ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = "MR"
    ds.Manufacturer = ctx.manufacturer
    ds.ManufacturerModelName = ctx.model
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "MR ELASTOGRAPHY LIVER"
    ds.SeriesDescription = spec.description
    ds.PatientName = ctx.patient_name
    ds.PatientID = ctx.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ctx.sex
    if ctx.age:
        ds.PatientAge = ctx.age
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "Synthetic data: no patient"
    ds.StudyInstanceUID = ctx.study_uid
    ds.SeriesInstanceUID = det_uid(ctx.key, "series", spec.number)
    ds.StudyID = "1"
    ds.SeriesNumber = spec.number
    ds.FrameOfReferenceUID = ctx.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.BodyPartExamined = "LIVER"
    ds.PatientPosition = "HFS"
    ds.ImageType = spec.image_type
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SP"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = 50.0
    ds.EchoTime = 20.0
    ds.EchoTrainLength = 1
    ds.MagneticFieldStrength = ctx.field_strength
    ds.ImagingFrequency = 63.87 if ctx.field_strength < 2 else 127.74
    ds.ImagedNucleus = "1H"
    if spec.sequence_name:
        ds.SequenceName = spec.sequence_name
    if spec.image_comments:
        ds.ImageComments = spec.image_comments
    return ds


def write_series(out_dir: str | os.PathLike, ctx: StudyContext, stack: PlaneStack, spec: SeriesSpec) -> list[Path]:
    """One file per image, named by series and instance number only (never by DICOM values)."""
    out = Path(out_dir) / f"series_{spec.number:04d}"
    out.mkdir(parents=True, exist_ok=True)
    rgb = spec.pixels.ndim == 4
    paths = []
    for n, (img, k) in enumerate(zip(spec.pixels, spec.slice_index), start=1):
        ds = _base_dataset(ctx, spec, det_uid(ctx.key, "sop", spec.number, n))
        ds.InstanceNumber = n
        ds.AcquisitionNumber = 1
        pos = stack.positions[k]
        ds.ImagePositionPatient = [float(f"{v:.6f}") for v in pos]
        ds.ImageOrientationPatient = [float(v) for v in stack.orientation]
        normal = np.cross(stack.orientation[:3], stack.orientation[3:])
        ds.SliceLocation = float(f"{float(np.dot(pos, normal)):.6f}")
        ds.SliceThickness = stack.slice_thickness
        if len(stack.positions) > 1:
            gaps = np.diff(stack.positions @ normal)
            ds.SpacingBetweenSlices = float(f"{float(np.mean(np.abs(gaps))):.6f}")
        ds.PixelSpacing = [float(v) for v in stack.pixel_spacing]
        ds.Rows, ds.Columns = int(img.shape[0]), int(img.shape[1])
        if rgb:
            ds.SamplesPerPixel = 3
            ds.PhotometricInterpretation = "RGB"
            ds.PlanarConfiguration = 0
            ds.BitsAllocated = ds.BitsStored = 8
            ds.HighBit = 7
            ds.PixelRepresentation = 0
            ds.PixelData = np.ascontiguousarray(img, dtype=np.uint8).tobytes()
        else:
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            signed = img.dtype.kind == "i"
            data = np.ascontiguousarray(img, dtype=np.int16 if signed else np.uint16)
            ds.BitsAllocated = ds.BitsStored = 16
            ds.HighBit = 15
            ds.PixelRepresentation = 1 if signed else 0
            ds.PixelData = data.tobytes()
            if spec.window:
                ds.WindowCenter, ds.WindowWidth = float(spec.window[0]), float(spec.window[1])
        for key, value in spec.extra.items():
            if isinstance(key, tuple):
                ds.add_new((key[0], key[1]), key[2], value)
            elif isinstance(value, list) and value and isinstance(value[0], Dataset):
                setattr(ds, key, Sequence(value))
            else:
                setattr(ds, key, value)
        for group, creator, elem, vr, value in spec.private:
            block = ds.private_block(group, creator, create=True)
            block.add_new(elem, vr, value)
        path = out / f"IM{n:05d}.dcm"
        tmp = path.with_suffix(".partial")
        ds.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, path)
        paths.append(path)
    return paths


def axial_stack(n_slices: int, rows: int, cols: int, spacing_mm: float, thickness_mm: float, gap_mm: float, z0: float = 0.0) -> PlaneStack:
    """Axial slices centred on the patient's left-right and anterior-posterior axes."""
    x0 = -(cols - 1) * spacing_mm / 2.0
    y0 = -(rows - 1) * spacing_mm / 2.0
    positions = np.array([[x0, y0, z0 - k * (thickness_mm + gap_mm)] for k in range(n_slices)])
    return PlaneStack(positions=positions, pixel_spacing=(spacing_mm, spacing_mm), slice_thickness=thickness_mm)


def write_ge_exam(
    out_dir: str | os.PathLike,
    ctx: StudyContext,
    stack: PlaneStack,
    stiffness_pa: np.ndarray,
    confidence_x1000: np.ndarray,
    magnitude: np.ndarray | None = None,
    phase_mrad: np.ndarray | None = None,
    wave: np.ndarray | None = None,
    frequency_hz: int = 60,
    offsets: int = 4,
    base: int = 5,
) -> None:
    """GE MR-Touch: Stiffness (Pa, 32766 invalid), Confidence (x1000), Shear Wave, raw MR-Touch."""
    n = stiffness_pa.shape[0]
    idx = list(range(n))
    derived = ["DERIVED", "SECONDARY", "PROCESSED"]
    driver = [(0x0043, "GEMS_PARM_01", 0xA2, "SS", [int(frequency_hz), int(offsets)])]
    # as on the real exam, every series announces the raw acquisition's image count (slices x offsets x
    # phase and magnitude), not its own number of images
    acquisition = {"ImagesInAcquisition": n * int(offsets) * 2, "NumberOfTemporalPositions": int(offsets)}
    write_series(
        out_dir,
        ctx,
        stack,
        SeriesSpec(
            base * 100, "Stiffness", derived, stiffness_pa.astype(np.int16), idx, (4000, 8000), extra=acquisition, private=driver, image_comments="Stiffness"
        ),
    )
    write_series(
        out_dir,
        ctx,
        stack,
        SeriesSpec(
            base * 100 + 7,
            "Confidence",
            derived,
            confidence_x1000.astype(np.int16),
            idx,
            (950, 100),
            extra=acquisition,
            private=driver,
            image_comments="Confidence",
        ),
    )
    if wave is not None:
        t = wave.shape[1]
        write_series(
            out_dir,
            ctx,
            stack,
            SeriesSpec(
                base * 100 + 5,
                "Shear Wave",
                derived,
                wave.reshape((-1,) + wave.shape[2:]).astype(np.int16),
                [k for k in range(n) for _ in range(t)],
                (0, 10000),
                extra=acquisition,
                private=driver,
                image_comments="Shear Wave",
            ),
        )
    if magnitude is not None and phase_mrad is not None:
        # Raw series: all phase images first (offsets per slice), then all magnitude images.
        phase_imgs = phase_mrad.reshape((-1,) + phase_mrad.shape[2:]).astype(np.int16)
        mag_imgs = magnitude.reshape((-1,) + magnitude.shape[2:]).astype(np.int16)
        slices = [k for k in range(n) for _ in range(phase_mrad.shape[1])]
        raw = [(0x0019, "GEMS_ACQU_01", 0x9C, "LO", "MR-Touch")] + driver
        write_series(
            out_dir,
            ctx,
            stack,
            SeriesSpec(
                base * 100 + 1,
                "MRE 60Hz",
                ["ORIGINAL", "PRIMARY", "OTHER"],
                np.concatenate([phase_imgs, mag_imgs]),
                slices + slices,
                extra=acquisition,
                private=raw,
            ),
        )


def write_siemens_exam(
    out_dir: str | os.PathLike,
    ctx: StudyContext,
    stack: PlaneStack,
    elastogram_10pa: np.ndarray,
    masked_10pa: np.ndarray | None,
    magnitude: np.ndarray | None = None,
    phase: np.ndarray | None = None,
    color: np.ndarray | None = None,
    names: dict[str, str] | None = None,
) -> None:
    """Siemens-style: magnitude (M, greMR), phase (P), grayscale and confidence-masked elastograms."""
    names = {
        "magnitude": "MRE_60Hz_magnitude",
        "phase": "MRE_60Hz_phase",
        "elastogram": "ELASTOGRAM_GRAY",
        "masked": "ELASTOGRAM_GRAY_CONF95_MASKED",
        "color": "ELASTOGRAM_COLOR",
        **(names or {}),
    }
    n = elastogram_10pa.shape[0]
    idx = list(range(n))
    if magnitude is not None:
        t = magnitude.shape[1]
        write_series(
            out_dir,
            ctx,
            stack,
            SeriesSpec(
                10,
                names["magnitude"],
                ["ORIGINAL", "PRIMARY", "M", "ND"],
                magnitude.reshape((-1,) + magnitude.shape[2:]).astype(np.uint16),
                [k for k in range(n) for _ in range(t)],
                sequence_name="*greMR2d1_60",
            ),
        )
    if phase is not None:
        t = phase.shape[1]
        write_series(
            out_dir,
            ctx,
            stack,
            SeriesSpec(
                11,
                names["phase"],
                ["ORIGINAL", "PRIMARY", "P", "ND"],
                phase.reshape((-1,) + phase.shape[2:]).astype(np.uint16),
                [k for k in range(n) for _ in range(t)],
                sequence_name="*greMR2d1_60",
            ),
        )
    derived = ["DERIVED", "PRIMARY", "OTHER"]
    write_series(out_dir, ctx, stack, SeriesSpec(13, names["elastogram"], derived, elastogram_10pa.astype(np.uint16), idx, (400, 800)))
    if masked_10pa is not None:
        write_series(out_dir, ctx, stack, SeriesSpec(14, names["masked"], derived, masked_10pa.astype(np.uint16), idx, (400, 800)))
    if color is not None:
        write_series(out_dir, ctx, stack, SeriesSpec(15, names["color"], derived, color.astype(np.uint8), idx))


def today() -> str:
    return _dt.date.today().strftime("%Y%m%d")
