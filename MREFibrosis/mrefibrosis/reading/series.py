"""Find DICOM series in a folder tree and describe them without decoding pixels."""

from __future__ import annotations

import math
import os
import re
import stat
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from ..errors import DicomReadError, ExamNotFoundError
from .dicom_files import HeaderRead, is_dicomdir, read_header_located

# headers a scan keeps for the pixel reads (at most about 36 KB each, so at most about 75 MB): an exam has
# 20-200 files, a whole study folder may have thousands; past this the pixel read parses the header again
MAX_HEADERS_KEPT = 2048
GE_MRE_PRIVATE = (0x0019, 0x109C)  # "MR-Touch" on GE raw MRE series
GE_DRIVER_PRIVATE = (0x0043, 0x10A2)  # [driver frequency Hz, number of phase offsets]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_text(value: object, limit: int = 64) -> str:
    """Printable, bounded text for logs: DICOM strings can hold anything."""
    text = _CONTROL.sub("?", str(value if value is not None else "")).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class InstanceRef:
    path: Path
    sop_uid: str
    instance_number: int | None
    # the scan's read of the file, so that decoding it parses only its pixel data (None past
    # MAX_HEADERS_KEPT files: a scan of a whole archive must not hold every header)
    known: HeaderRead | None = field(default=None, repr=False, compare=False)


@dataclass
class SeriesInfo:
    """One DICOM series as found on disk, with what classification needs from its headers."""

    study_uid: str
    series_uid: str
    series_number: int | None
    description: str
    image_type: tuple[str, ...]
    manufacturer: str
    modality: str
    photometric: str
    samples_per_pixel: int
    rows: int | None
    columns: int | None
    sequence_name: str
    complex_component: str
    private_mre_tag: str
    driver_frequency_hz: float | None
    first_header: Dataset
    instances: list[InstanceRef] = field(default_factory=list)
    duplicates: int = 0
    unreadable: int = 0  # damaged DICOM files beside this series' images (a slice may be among them)
    role: str = "unclassified"
    reason: str = ""
    split_cache: object = field(default=None, repr=False, compare=False)  # raw_series.split_raw's answer, once per series

    @property
    def label(self) -> str:
        """How messages name this series: number and description, never a patient value."""
        number = self.series_number if self.series_number is not None else "?"
        return f"series {number} '{clean_text(self.description, 40)}'"

    @property
    def vendor(self) -> str:
        m = self.manufacturer.upper()
        if "GE " in m + " " or m.startswith("GE") or "GENERAL ELECTRIC" in m or self.private_mre_tag:
            return "GE"
        if "SIEMENS" in m:
            return "SIEMENS"
        if "PHILIPS" in m:
            return "PHILIPS"
        return "UNKNOWN"

    @property
    def is_color(self) -> bool:
        return self.samples_per_pixel == 3 or self.photometric.upper() in {
            "RGB",
            "YBR_FULL",
            "YBR_FULL_422",
            "YBR_ICT",
            "YBR_RCT",
            "PALETTE COLOR",
        }

    def matches(self, selector: str) -> bool:
        """True when selector names this series by SeriesInstanceUID or SeriesNumber."""
        selector = selector.strip()
        if selector == self.series_uid:
            return True
        return selector.isdigit() and self.series_number is not None and int(selector) == self.series_number


@dataclass
class ScanResult:
    root: Path
    series: list[SeriesInfo]
    skipped: Counter  # reason -> count of files
    files_seen: int

    @property
    def studies(self) -> dict[str, list[SeriesInfo]]:
        out: dict[str, list[SeriesInfo]] = {}
        for s in self.series:
            out.setdefault(s.study_uid, []).append(s)
        return out


def _text(ds: Dataset, name: str) -> str:
    try:
        value = ds.get(name, "")
        if value is None:
            return ""
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return "\\".join(str(v) for v in value)
        return str(value)
    except Exception:
        return ""


def _int_or_none(ds: Dataset, name: str) -> int | None:
    try:
        value = ds.get(name, None)
        return None if value in (None, "") else int(value)
    except Exception:
        return None


def _private_text(ds: Dataset, tag: tuple[int, int]) -> str:
    try:
        elem = ds.get(tag)
        if elem is None:
            return ""
        value = elem.value
        if isinstance(value, bytes):
            value = value.decode("latin-1", errors="replace")
        return str(value).strip(" \x00")
    except Exception:
        return ""


PLAUSIBLE_DRIVER_HZ = (1.0, 1000.0)  # MRE drivers run at 30-120 Hz; anything outside is not a frequency


_HZ_IN_TEXT = re.compile(r"(?<![0-9.])([0-9]{2,3}(?:\.[0-9])?)\s*hz(?![a-z])", re.IGNORECASE)


def frequency_in_description(text: str) -> float | None:
    """A driver frequency the series description states ("MRE_60Hz_magnitude", "MRE 40 Hz"): how
    protocols are commonly named (assumed; a header field is preferred where a vendor has one)."""
    found = {float(m) for m in _HZ_IN_TEXT.findall(text or "")}
    if len(found) != 1:
        return None
    value = found.pop()
    return value if PLAUSIBLE_DRIVER_HZ[0] <= value <= PLAUSIBLE_DRIVER_HZ[1] else None


def parse_ge_driver_frequency(ds: Dataset) -> float | None:
    """GE private (0043,10A2) holds [frequency Hz, phase offsets]; stored as text or two int16. A
    value that is not a finite, plausible frequency ("nan", "inf", 0, 40000) counts as missing, so
    the result says the frequency is unknown instead of staging against a NaN."""
    value = _raw_ge_driver_frequency(ds)
    if value is None or not math.isfinite(value) or not PLAUSIBLE_DRIVER_HZ[0] <= value <= PLAUSIBLE_DRIVER_HZ[1]:
        return None
    return value


def _raw_ge_driver_frequency(ds: Dataset) -> float | None:
    try:
        elem = ds.get(GE_DRIVER_PRIVATE)
        if elem is None:
            return None
        value = elem.value
        if isinstance(value, bytes):
            if len(value) == 4 and not value.strip(b"0123456789\\ .\x00"):
                value = value.decode("ascii")
            elif len(value) >= 2:
                return float(struct.unpack("<h", value[:2])[0]) or None
        if isinstance(value, str):
            first = value.split("\\")[0].strip(" \x00")
            return float(first) if first else None
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return float(value[0])
        return float(value)
    except Exception:
        return None


# SOP classes (prefixes) and modalities of objects that hold no image by design
NON_IMAGE_SOP_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",  # structured reports, key objects
    "1.2.840.10008.5.1.4.1.1.11.",  # presentation states
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated documents
    "1.2.840.10008.5.1.4.1.1.481.",  # radiotherapy objects
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, spatial registration, fiducials
)
NON_IMAGE_MODALITIES = frozenset({"SR", "PR", "KO", "DOC", "REG", "FID", "RTSTRUCT", "RTPLAN", "RTDOSE"})


def _is_non_image(ds: Dataset) -> bool:
    sop = _text(ds, "SOPClassUID")
    return sop.startswith(NON_IMAGE_SOP_PREFIXES) or _text(ds, "Modality").upper() in NON_IMAGE_MODALITIES


def _regular_file(path: Path) -> bool:
    """A plain file, judged by type before anything opens it: a FIFO in a drop folder blocks the
    first open() forever (no time budget can fire), a device may never end; symlinks are not followed."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _has_dicm_preamble(path: Path) -> bool:
    """A DICOM Part 10 file that failed to parse (damaged), as opposed to any other file: one with
    its DICM marker, one cut off inside the 128-byte preamble (nothing but zeros before the cut, as
    a copy that stopped early leaves it), and one that exists but cannot be opened."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except PermissionError:
        return True
    except OSError:
        return False
    return head[128:132] == b"DICM" or (len(head) < 132 and not any(head[:128]))


def _describe_header(ds: Dataset, path: Path) -> tuple[str, str, SeriesInfo]:
    study = _text(ds, "StudyInstanceUID") or "(no StudyInstanceUID)"
    series = _text(ds, "SeriesInstanceUID") or f"(no SeriesInstanceUID) {path.parent}"
    comments = _text(ds, "ImageComments")
    description = _text(ds, "SeriesDescription") or comments
    try:
        image_type = tuple(v.strip().upper() for v in (ds.get("ImageType", []) or []))
    except Exception:
        image_type = ()
    info = SeriesInfo(
        study_uid=study,
        series_uid=series,
        series_number=_int_or_none(ds, "SeriesNumber"),
        description=description if comments in ("", description) else f"{description} / {comments}",
        image_type=image_type,
        manufacturer=_text(ds, "Manufacturer"),
        modality=_text(ds, "Modality"),
        photometric=_text(ds, "PhotometricInterpretation") or "MONOCHROME2",
        samples_per_pixel=_int_or_none(ds, "SamplesPerPixel") or 1,
        rows=_int_or_none(ds, "Rows"),
        columns=_int_or_none(ds, "Columns"),
        sequence_name=_text(ds, "SequenceName"),
        complex_component=_text(ds, "ComplexImageComponent"),
        private_mre_tag=_private_text(ds, GE_MRE_PRIVATE),
        driver_frequency_hz=parse_ge_driver_frequency(ds),
        first_header=ds,
    )
    return study, series, info


def scan_folder(root: str | os.PathLike) -> ScanResult:
    """Read every file's header below root (symlinks are not followed, so loops cannot trap us)."""
    root = Path(root)
    try:
        os.stat(root)
    except FileNotFoundError:
        raise ExamNotFoundError(f"{root}: no such file or folder; give the folder that holds the MRE exam.") from None
    except OSError as exc:  # a name too long, a loop of links, no permission on a parent: the path cannot be used
        shown = str(root) if len(str(root)) <= 120 else str(root)[:117] + "..."
        raise ExamNotFoundError(f"{shown}: cannot be opened ({exc.strerror or exc}); give the folder that holds the MRE exam.") from None
    paths: list[Path] = []
    skipped: Counter = Counter()
    if root.is_file():
        paths = [root]
    else:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                p = Path(dirpath) / name
                if _regular_file(p):
                    paths.append(p)
                elif not p.is_symlink():
                    skipped["not a regular file (FIFO, socket or device)"] += 1
    by_series: dict[tuple[str, str], SeriesInfo] = {}
    damaged: Counter = Counter()  # folder -> DICOM files there that could not be used
    kept = 0
    for p in paths:
        try:
            read = read_header_located(p)
            ds = read.header
        except DicomReadError as exc:
            reason = str(exc).split(": ", 1)[-1].split(";")[0]
            skipped[reason] += 1
            if _has_dicm_preamble(p):
                damaged[p.parent] += 1
            continue
        if is_dicomdir(ds):
            skipped["DICOMDIR index file"] += 1
            continue
        if _int_or_none(ds, "Rows") is None:
            if _is_non_image(ds):
                skipped["DICOM object without an image (report, presentation state, ...)"] += 1
            else:  # an image whose header lost Rows (or its SOP class): damaged, and maybe a slice
                skipped["image without Rows (damaged header)"] += 1
                damaged[p.parent] += 1
            continue
        study, series, info = _describe_header(ds, p)
        key = (study, series)
        entry = by_series.setdefault(key, info)
        sop = _text(ds, "SOPInstanceUID")
        if sop and any(i.sop_uid == sop for i in entry.instances):
            entry.duplicates += 1
            continue
        kept += 1
        entry.instances.append(InstanceRef(p, sop, _int_or_none(ds, "InstanceNumber"), read if kept <= MAX_HEADERS_KEPT else None))
    for info in by_series.values():
        info.unreadable = sum(damaged[folder] for folder in {i.path.parent for i in info.instances})
    series_list = sorted(by_series.values(), key=lambda s: (s.study_uid, s.series_number if s.series_number is not None else 1 << 30, s.series_uid))
    return ScanResult(root=root, series=series_list, skipped=skipped, files_seen=len(paths))
