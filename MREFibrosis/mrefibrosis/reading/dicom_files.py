"""Defensive reading of single DICOM files.

Scanner exports and PACS folders contain junk, truncated transfers and hostile files. Everything
here turns such files into typed, one-line errors, and caps the decoded size *before* decoding so a
2 KB compressed file cannot expand into gigabytes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset, read_partial

from ..errors import DicomReadError, MREFibrosisError, PixelDataError
from .budget import BudgetLimits, current_budget
from .lazy_header import as_quiet_header, quiet_header, quiet_pydicom

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"

# The elements the reader relies on (scan, classification, geometry, units, pixel decoding, the
# identifiers results may carry) are converted when the file is read: a damaged one rejects the file
# at the scan, which counts it and uses the rest of its series. The rest of a header (a real
# scanner's hundred-odd elements, most never used) converts when first used (`lazy_header`).
CONVERTED_AT_READ = frozenset(
    tag_for_keyword(keyword)
    for keyword in (
        "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "StudyDate", "StudyTime", "AccessionNumber",
        "Modality", "Manufacturer", "SeriesDescription", "PatientName", "PatientID", "PatientBirthDate", "SequenceName",
        "SliceThickness", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "InstanceNumber", "ImagePositionPatient",
        "ImageOrientationPatient", "FrameOfReferenceUID", "ImageComments", "SamplesPerPixel", "PhotometricInterpretation",
        "NumberOfFrames", "Rows", "Columns", "PixelSpacing", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
        "PlanarConfiguration", "WindowCenter", "WindowWidth", "RescaleIntercept", "RescaleSlope", "RescaleType",
        "ComplexImageComponent", "RealWorldValueMappingSequence", "SharedFunctionalGroupsSequence",
        "PerFrameFunctionalGroupsSequence", "ReferencedSeriesSequence",
    )
)  # fmt: skip

# Caps checked before pixel data are decoded; MRE images are 256 x 256, so these are generous.
MAX_ROWS_OR_COLUMNS = 4096
MAX_PIXELS_PER_FILE = 64 * 1024 * 1024
PIXEL_DATA_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
# An elastogram, confidence or magnitude image is 256 x 256 on the real GE exam (Siemens 256 x 204,
# research up to 512): a map of more than this side is not an MRE map, and four 4096 x 4096 ones
# cost 19 s and 3 GB before. Assumed; ReadOptions.limits sets it.
MAX_MAP_SIDE = 1024
# Header values larger than this are skipped by a seek, not read: a junk file with a 15 MB private
# element costs no read, only its position (still bounded by the per-file header cap).
DEFER_HEADER_VALUES_BYTES = 64 * 1024
# A file up to this size is read with one call and parsed from memory (an MRE image is 100-130 KB):
# parsing through the bounded file wrapper, one Python call per element, cost a third of a read.
READ_WHOLE_BYTES = 1024 * 1024
# Groups that cannot follow a file meta header in a stored dataset: command (0000), meta (0002),
# the illegal odd groups 0001-0007 and FFFF (the standard reserves them).
ILLEGAL_DATASET_GROUPS = frozenset({0x0000, 0x0001, 0x0002, 0x0003, 0x0005, 0x0007, 0xFFFF})
MAX_EMPTY_ELEMENT_RUN = 512  # consecutive zero-length elements: no real header has a run this long


@dataclass(frozen=True)
class PixelLimits:
    """Caps applied to Rows x Columns x Frames x Samples before decoding."""

    max_rows_or_columns: int = MAX_ROWS_OR_COLUMNS
    max_pixels: int = MAX_PIXELS_PER_FILE
    max_map_side: int = MAX_MAP_SIDE

    def for_maps(self) -> PixelLimits:
        """The caps for a series measured or used as a map (elastogram, confidence): no larger than
        an MRE map can be, checked from the header before any value is decoded."""
        side = min(self.max_rows_or_columns, self.max_map_side)
        return PixelLimits(side, min(self.max_pixels, side * side * 64), self.max_map_side)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_plain_file(path: Path, max_bytes: int) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DicomReadError(f"{path.name}: cannot open ({_describe(exc)}).") from None
    if not os.path.isfile(path):
        raise DicomReadError(f"{path.name}: not a regular file.")
    if st.st_size == 0:
        raise DicomReadError(f"{path.name}: empty file; remove it or re-export the series.")
    if st.st_size > max_bytes:
        raise DicomReadError(f"{path.name}: file larger than {max_bytes >> 20} MB (the per-file cap); not an MRE image.")
    return st.st_size, st.st_mtime_ns


class _OverRead(Exception):
    """Raised by _BoundedFile; turned into a DicomReadError by _dcmread."""


class _BoundedFile:
    """A binary file that refuses to be read past `limit` bytes: parsing work is bounded by the
    bytes a file may sensibly hold, whatever its elements claim. Counts the bytes really read (a
    deferred header value is skipped by a seek and costs nothing)."""

    def __init__(self, fh, limit: int, size: int):
        self._fh = fh
        self._limit = limit
        self._whole = limit >= size  # the cap is the file's own end: reading to the end is allowed
        self.name = getattr(fh, "name", "")
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        pos = self._fh.tell()
        if n is None or n < 0:
            n = self._limit - pos + (0 if self._whole else 1)
        if pos + n > self._limit and not self._whole:
            raise _OverRead()
        data = self._fh.read(n)
        self.bytes_read += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._fh, name)


def _stop_rule(stop_before_pixels: bool):
    """Where parsing ends: at the pixel data when asked, and at the first top-level tag that is not
    above the one before (elements are stored in ascending order; a run of zeros or junk after the
    last element would otherwise be parsed to the end of the file, 8 bytes at a time). Group 0000
    (DIMSE commands) never appears in a stored dataset: a zero-filled body after a valid meta header
    is a run of (0000,0000) elements, which parsed to the 16 MB cap at about 7 s a file."""
    last, repeats, empty_run = [-1], [0], [0]

    def stop_when(tag, vr, length) -> bool:
        t = int(tag)
        if t >> 16 in ILLEGAL_DATASET_GROUPS:
            return True
        if t < last[0]:
            return True
        empty_run[0] = empty_run[0] + 1 if length == 0 else 0
        if empty_run[0] > MAX_EMPTY_ELEMENT_RUN:
            return True
        if t == last[0]:  # pydicom may ask twice about the first tag, never more
            repeats[0] += 1
            if repeats[0] > 1:
                return True
        else:
            repeats[0] = 0
        last[0] = t
        return stop_before_pixels and t in PIXEL_DATA_TAGS

    return stop_when


def _dataset_starts_with_zeros(fh) -> bool:
    """Whether the body after the file meta header starts with zero bytes. They read as (0000,0000)
    elements of group 0000 (DIMSE commands, never in a stored file), and pydicom parses a leading
    command group with its own loop, past any stop rule, to the end of the file (7-10 s a file).
    Reads the meta group's length from (0002,0000); False when the header does not say it."""
    fh.seek(128)
    head = fh.read(16)
    fh.seek(0)
    if len(head) < 16 or head[:4] != b"DICM" or head[4:8] != b"\x02\x00\x00\x00" or head[8:10] != b"UL":
        return False
    meta_length = int.from_bytes(head[12:16], "little")
    fh.seek(144 + meta_length)
    body = fh.read(16)
    fh.seek(0)
    return body == bytes(16)  # a real command element, non-conformant as it is, has a VR or length


@dataclass(frozen=True)
class PixelLocation:
    """Where the header read stopped, which is the pixel data element in an intact image file: the
    pixel read then parses only that element instead of the whole file again (half of reading an exam
    was the second parse). It checks the tag there, and trusts it only while the file keeps its size
    and modification time."""

    offset: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class HeaderRead:
    """A file's header (all elements before the pixel data; those in CONVERTED_AT_READ converted, the
    rest on first use) and where its pixels begin."""

    header: Dataset
    pixels: PixelLocation | None


def _dcmread(path: Path, stop_before_pixels: bool) -> Dataset:
    return _dcmread_located(path, stop_before_pixels).header


def _dcmread_located(path: Path, stop_before_pixels: bool) -> HeaderRead:
    budget = current_budget()
    limits = budget.limits if budget is not None else BudgetLimits()
    size, mtime_ns = _check_plain_file(path, limits.max_file_bytes)
    limit = min(size, limits.max_header_bytes) if stop_before_pixels else size
    defer = DEFER_HEADER_VALUES_BYTES if stop_before_pixels else None
    location = None
    in_memory = size <= min(READ_WHOLE_BYTES, limit)  # one read, parsed in memory: the cap is the file's end
    try:
        with open(path, "rb") as raw, quiet_pydicom():
            if in_memory:
                source = fh = DicomBytesIO(raw.read(size))
                source.name = raw.name
            else:
                source, fh = raw, _BoundedFile(raw, limit, size)  # a full read is bounded by the file's own end
            if _dataset_starts_with_zeros(source):
                raise DicomReadError(f"{path.name}: no data elements after the file meta header (zeros); the file is damaged, re-export it.")
            try:
                ds = read_partial(fh, stop_when=_stop_rule(stop_before_pixels), defer_size=defer, force=False)
                if stop_before_pixels:  # pydicom leaves the file at the element it stopped at (the pixel
                    location = PixelLocation(source.tell(), size, mtime_ns)  # read checks that it is one)
                _ = ds.file_meta.get("TransferSyntaxUID", None)
                _convert_at_read(ds)
            finally:
                if budget is not None:
                    budget.charge_bytes(size if in_memory else fh.bytes_read)
    except _OverRead:
        raise DicomReadError(
            f"{path.name}: DICOM header runs past {limits.max_header_bytes >> 20} MB before any pixel data; the file is corrupt, re-export it."
        ) from None
    except InvalidDicomError:
        raise DicomReadError(
            f"{path.name}: not a DICOM Part 10 file (no 'DICM' preamble); skip it, or re-export the series from the scanner or PACS as DICOM files."
        ) from None
    except RecursionError:
        raise DicomReadError(f"{path.name}: DICOM sequences nested too deeply; the file is corrupt or hostile.") from None
    except PermissionError:
        raise DicomReadError(f"{path.name}: permission denied; the file cannot be read, check its permissions or copy the exam again.") from None
    except MemoryError:
        raise DicomReadError(f"{path.name}: an element claims more memory than is available; the file is corrupt.") from None
    except MREFibrosisError:
        raise
    except Exception as exc:  # pydicom raises many types for corrupt headers
        raise DicomReadError(f"{path.name}: corrupt DICOM header ({_describe(exc)}); re-export the file.") from None
    if len(ds) == 0:
        raise DicomReadError(f"{path.name}: no data elements after the file meta header; the file is truncated, re-export it.")
    ds.filename = str(path)
    # every value is in memory: the dataset needs no file object, and must not keep the in-memory
    # copy of a small file (pydicom holds the object it read from; a scan keeps thousands of headers)
    ds.buffer, ds.fileobj_type = None, open
    return HeaderRead(as_quiet_header(ds), location)


def _convert_at_read(ds: Dataset) -> None:
    """Converts now the elements the reader relies on (CONVERTED_AT_READ: a damaged one fails the
    read), and reads the values pydicom deferred (over DEFER_HEADER_VALUES_BYTES) while the file is
    open, so that the dataset is complete without it. The rest convert on first use (QuietHeader)."""
    deferred = [tag for tag, elem in ds.items() if isinstance(elem, RawDataElement) and elem.value is None and elem.length]
    for tag in CONVERTED_AT_READ.intersection(ds.keys()).union(deferred):
        _ = ds[tag]


def read_header(path: str | os.PathLike) -> Dataset:
    """Read all elements but the pixel data; cheap enough to scan a whole folder."""
    return _dcmread(Path(path), stop_before_pixels=True)


def read_header_located(path: str | os.PathLike) -> HeaderRead:
    """read_header, and where the file's pixel data begin (for `read_pixels(..., known=)`)."""
    return _dcmread_located(Path(path), stop_before_pixels=True)


def is_dicomdir(ds: Dataset) -> bool:
    try:
        meta = getattr(ds, "file_meta", None)
        sop = str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
        return sop == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds
    except Exception:  # a corrupt file-meta element (e.g. an unknown VR) must not stop the folder scan
        return False


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


def _transfer_syntax(ds: Dataset) -> str:
    """The file's transfer syntax UID, refused unless it is one DICOM defines."""
    meta = getattr(ds, "file_meta", None)
    ts_uid = str(meta.get("TransferSyntaxUID", "") or "").strip() if meta is not None else ""
    if ts_uid and not pydicom.uid.UID(ts_uid).is_transfer_syntax:
        shown = ts_uid if len(ts_uid) <= 64 and ts_uid.isprintable() else "(unreadable)"
        raise PixelDataError(f"unknown transfer syntax UID {shown}; the file meta header is corrupt, re-export the file.")
    return ts_uid


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


def read_pixels(path: str | os.PathLike, limits: PixelLimits = PixelLimits(), known: HeaderRead | None = None) -> tuple[Dataset, np.ndarray]:
    """Return the dataset and its stored pixel values (no rescale), frames first for multi-frame.

    Sizes are checked against the caps and against the bytes actually present before decoding.
    `known` (the folder scan's read of this file) spares parsing the header again: only the pixel
    data element is read, where the scan found it, if the file is unchanged; otherwise, or if that
    element does not parse there, the whole file is read as without it.
    """
    path = Path(path)
    ds = _with_pixel_data(path, known) if known is not None and known.pixels is not None else None
    if ds is None:
        ds = _dcmread(path, stop_before_pixels=False)
    try:
        return ds, decode_pixels(ds, limits)
    except PixelDataError as exc:
        raise PixelDataError(f"{path.name}: {exc}") from None


def _with_pixel_data(path: Path, known: HeaderRead) -> FileDataset | None:
    """The known header with the file's pixel data element(s) read from where the scan found them;
    None when the file changed since, or the bytes there are not the element the header read stopped
    at (the caller then reads the whole file, with its own checks and errors)."""
    where, header = known.pixels, known.header
    meta = getattr(header, "file_meta", None)
    ts_uid = str(meta.get("TransferSyntaxUID", "") or "") if meta is not None else ""
    if ts_uid == pydicom.uid.DeflatedExplicitVRLittleEndian:  # offsets are in the inflated stream
        return None
    implicit, little = getattr(header, "original_encoding", (None, None))
    if implicit is None or little is None:
        return None
    try:
        st = os.stat(path)
        if st.st_size != where.size or st.st_mtime_ns != where.mtime_ns:
            return None
        with open(path, "rb") as fh:
            fh.seek(where.offset)
            data = fh.read(where.size - where.offset)
    except OSError:
        return None
    budget = current_budget()
    if budget is not None:
        budget.charge_bytes(len(data))  # over the exam's cap: its one-line error, as a whole read gives
    try:
        group, element = struct.unpack("<HH" if little else ">HH", data[:4])
        if (group << 16 | element) not in PIXEL_DATA_TAGS:
            return None
        with quiet_pydicom():
            pixels = read_dataset(DicomBytesIO(data), implicit, little, stop_when=_stop_rule(False))
            _ = [elem.tag for elem in pixels]
    except Exception:  # whatever it is, the whole-file read reports it properly
        return None
    if not any(tag in pixels for tag in PIXEL_DATA_TAGS):
        return None
    elements = dict(header.items())
    elements.update(pixels.items())
    return quiet_header(str(path), Dataset(elements), header, implicit, little)


def decode_pixels(ds: Dataset, limits: PixelLimits = PixelLimits()) -> np.ndarray:
    has_int = "PixelData" in ds
    has_float = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    if not (has_int or has_float):
        raise PixelDataError("no pixel data; the file holds no image.")
    rows, cols, frames, samples = expected_pixel_count(ds, limits)
    ts_uid = _transfer_syntax(ds)
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
        if have > needed + 1:  # one pad byte makes an odd length even
            raise PixelDataError(
                f"pixel data holds {have} bytes but Rows x Columns x Frames needs only {needed}; Rows, Columns or NumberOfFrames is wrong; re-export it."
            )
    budget = current_budget()
    if budget is not None:
        budget.charge_values(rows * cols * frames * samples, "an image")
    if compressed and not _decoder_available(ts_uid):
        raise PixelDataError(_missing_decoder_hint(ts_uid))
    try:
        with quiet_pydicom():
            arr = ds.pixel_array
    except MREFibrosisError:  # an element the decoder read could not be converted: its own line
        raise
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
