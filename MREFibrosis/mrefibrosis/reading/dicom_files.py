"""Defensive reading of single DICOM files.

Scanner exports and PACS folders contain junk, truncated transfers and hostile files. Everything
here turns such files into typed, one-line errors, and caps the decoded size *before* decoding so a
2 KB compressed file cannot expand into gigabytes.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ..errors import DicomReadError, PixelDataError

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

# Caps checked before pixel data are decoded; MRE images are 256 x 256, so these are generous.
MAX_ROWS_OR_COLUMNS = 4096
MAX_PIXELS_PER_FILE = 64 * 1024 * 1024
MAX_FILE_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class PixelLimits:
    """Caps applied to Rows x Columns x Frames x Samples before decoding."""

    max_rows_or_columns: int = MAX_ROWS_OR_COLUMNS
    max_pixels: int = MAX_PIXELS_PER_FILE


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_plain_file(path: Path) -> None:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DicomReadError(f"{path.name}: cannot open ({_describe(exc)}).") from None
    if not os.path.isfile(path):
        raise DicomReadError(f"{path.name}: not a regular file.")
    if st.st_size == 0:
        raise DicomReadError(f"{path.name}: empty file; remove it or re-export the series.")
    if st.st_size > MAX_FILE_BYTES:
        raise DicomReadError(f"{path.name}: file larger than {MAX_FILE_BYTES >> 20} MB; not an MRE image.")


def _dcmread(path: Path, stop_before_pixels: bool) -> Dataset:
    _check_plain_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(str(path), stop_before_pixels=stop_before_pixels, force=False)
            # Touch the elements we rely on so that lazy parsing errors surface here.
            _ = ds.file_meta.get("TransferSyntaxUID", None)
            _ = [elem.tag for elem in ds]
    except InvalidDicomError:
        raise DicomReadError(
            f"{path.name}: not a DICOM Part 10 file (no 'DICM' preamble); skip it, or re-export the series from the scanner or PACS as DICOM files."
        ) from None
    except RecursionError:
        raise DicomReadError(f"{path.name}: DICOM sequences nested too deeply; the file is corrupt or hostile.") from None
    except MemoryError:
        raise DicomReadError(f"{path.name}: an element claims more memory than is available; the file is corrupt.") from None
    except Exception as exc:  # pydicom raises many types for corrupt headers
        raise DicomReadError(f"{path.name}: corrupt DICOM header ({_describe(exc)}); re-export the file.") from None
    if len(ds) == 0:
        raise DicomReadError(f"{path.name}: no data elements after the file meta header; the file is truncated, re-export it.")
    return ds


def read_header(path: str | os.PathLike) -> Dataset:
    """Read all elements but the pixel data; cheap enough to scan a whole folder."""
    return _dcmread(Path(path), stop_before_pixels=True)


def is_dicomdir(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    sop = str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
    return sop == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds


def _int_tag(ds: Dataset, name: str, default: int | None = None) -> int:
    try:
        value = ds.get(name, default)
        if value is None or value == "":
            if default is None:
                raise PixelDataError(f"missing {name}; the image cannot be decoded.")
            return default
        return int(value)
    except PixelDataError:
        raise
    except Exception:
        raise PixelDataError(f"invalid {name} value; the image cannot be decoded.") from None


def expected_pixel_count(ds: Dataset, limits: PixelLimits = PixelLimits()) -> tuple[int, int, int, int]:
    """Rows, columns, frames, samples, validated against the caps before any decoding."""
    rows = _int_tag(ds, "Rows")
    cols = _int_tag(ds, "Columns")
    frames = _int_tag(ds, "NumberOfFrames", 1) or 1
    samples = _int_tag(ds, "SamplesPerPixel", 1) or 1
    if rows <= 0 or cols <= 0 or frames <= 0 or samples <= 0:
        raise PixelDataError("non-positive Rows, Columns, NumberOfFrames or SamplesPerPixel.")
    if rows > limits.max_rows_or_columns or cols > limits.max_rows_or_columns:
        raise PixelDataError(f"image of {rows} x {cols} exceeds the {limits.max_rows_or_columns}-pixel cap; not an MRE image.")
    if rows * cols * frames * samples > limits.max_pixels:
        raise PixelDataError(f"image would decode to {rows * cols * frames * samples} values, over the cap of {limits.max_pixels}.")
    return rows, cols, frames, samples


def _decoder_available(ts_uid: str) -> bool:
    try:
        from pydicom.pixels import get_decoder

        return bool(get_decoder(pydicom.uid.UID(ts_uid)).is_available)
    except Exception:
        return False


def _missing_decoder_hint(ts_uid: str) -> str:
    name = pydicom.uid.UID(ts_uid).name if ts_uid else "unknown"
    return (
        f"compressed pixel data ({name}) and no decoder is installed; "
        "install 'pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg' (or 'pillow' / 'pyjpegls'), "
        "or re-export the series uncompressed."
    )


def read_pixels(path: str | os.PathLike, limits: PixelLimits = PixelLimits()) -> tuple[Dataset, np.ndarray]:
    """Return the dataset and its stored pixel values (no rescale), frames first for multi-frame.

    Sizes are checked against the caps and against the bytes actually present before decoding.
    """
    path = Path(path)
    ds = _dcmread(path, stop_before_pixels=False)
    try:
        return ds, decode_pixels(ds, limits)
    except PixelDataError as exc:
        raise PixelDataError(f"{path.name}: {exc}") from None


def decode_pixels(ds: Dataset, limits: PixelLimits = PixelLimits()) -> np.ndarray:
    has_int = "PixelData" in ds
    has_float = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    if not (has_int or has_float):
        raise PixelDataError("no pixel data; the file holds no image.")
    rows, cols, frames, samples = expected_pixel_count(ds, limits)
    ts_uid = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
    compressed = bool(ts_uid) and pydicom.uid.UID(ts_uid).is_compressed
    if has_int and not compressed:
        bits = _int_tag(ds, "BitsAllocated")
        if bits not in (1, 8, 16, 32, 64):
            raise PixelDataError(f"unsupported BitsAllocated {bits}.")
        needed = (rows * cols * frames * samples * bits + 7) // 8
        have = len(ds.PixelData or b"")
        if have < needed:
            raise PixelDataError(
                f"pixel data holds {have} bytes but Rows x Columns x Frames needs {needed}; the file is truncated or its header is wrong; re-export it."
            )
    if compressed and not _decoder_available(ts_uid):
        raise PixelDataError(_missing_decoder_hint(ts_uid))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except MemoryError:
        raise PixelDataError("pixel data too large to decode.") from None
    except Exception as exc:
        what = "compressed pixel data is corrupt" if compressed else "pixel data cannot be decoded"
        raise PixelDataError(f"{what} ({_describe(exc)}); re-export the file.") from None
    arr = np.asarray(arr)
    if samples == 1 and frames == 1 and arr.shape != (rows, cols):
        raise PixelDataError(f"decoded image shape {arr.shape} differs from Rows x Columns {rows} x {cols}.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        arr = arr.copy()  # callers treat non-finite values as invalid; keep them visible as NaN
        arr[~np.isfinite(arr)] = np.nan
    return arr
