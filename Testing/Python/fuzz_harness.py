"""Mutation fuzzing of the exam reader: damaged copies of small GE-style and Siemens-style exams.

Each iteration copies a clean exam, applies one seeded mutation, reads and measures it over the
clean exam's ROI (a .seg.nrrd in patient space, so a lost slice does not shift it) and sorts the
outcome: a result, a typed error (MREFibrosisError), an unhandled exception, a stall, or a silent
change (status ok with no flag beyond the clean exam's, and mean, area or stage off the clean
result by more than 5 %). Meaning-changing mutations (swapped descriptions, wrong units, rescale changes, lost slices,
misaligned confidence, absurd geometry) must never change the result silently. Used by the bounded
CI run (test_fuzz_reader.py) and the longer campaign (benchmarks/fuzz_campaign.py).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from fixtures import make_ge_exam, make_siemens_exam

from mrefibrosis.errors import MREFibrosisError
from mrefibrosis.pipeline import process_exam
from mrefibrosis.reading.exam_loader import ReadOptions, read_exam
from mrefibrosis.results.roi_files import write_seg_nrrd

SILENT_TOLERANCE = 0.05
STALL_SECONDS = 20.0


class Stall(BaseException):
    """Raised by the alarm inside a read that ran past the stall limit (BaseException: never caught as an error)."""


@dataclass
class BaseExam:
    name: str
    folder: Path
    roi_file: Path
    mean_kpa: float
    area_cm2: float
    stage: str | None
    flags: frozenset = frozenset()


@dataclass
class Outcome:
    kind: str  # result | typed_error | unhandled | stall | silent_change
    mutation: str
    meaning: bool
    detail: str
    seconds: float


@dataclass
class CampaignReport:
    counts: Counter = field(default_factory=Counter)
    by_mutation: dict = field(default_factory=dict)
    unhandled: list = field(default_factory=list)
    silent: list = field(default_factory=list)
    stalls: list = field(default_factory=list)
    slowest_seconds: float = 0.0
    iterations: int = 0

    def add(self, o: Outcome) -> None:
        self.iterations += 1
        self.counts[o.kind] += 1
        self.by_mutation.setdefault(o.mutation, Counter())[o.kind] += 1
        self.slowest_seconds = max(self.slowest_seconds, o.seconds)
        if o.kind == "unhandled":
            self.unhandled.append(o)
        elif o.kind == "silent_change":
            self.silent.append(o)
        elif o.kind == "stall":
            self.stalls.append(o)

    @property
    def silent_meaning(self) -> list:
        return [o for o in self.silent if o.meaning]


# ---------------------------------------------------------------------------- clean exams
def _core_roi(mask_kji: np.ndarray) -> np.ndarray:
    return mask_kji


def prepare_base_exams(root: Path, realistic: bool = False) -> list[BaseExam]:
    """A GE-style and a Siemens-style exam with an ROI over the liver's high-confidence core; with
    `realistic`, also a simulated GE and Siemens exam with their reader ROI (elastogram texture,
    anatomy and per-slice confidence like a real exam's: what per-slice consistency checks need)."""
    out = []
    if realistic:
        from mrefibrosis.synth.cohort import generate_cohort

        for vendor, seed in (("ge", 21), ("siemens", 22)):
            generate_cohort(root / f"sim-{vendor}", 1, seed=seed, vendor=vendor, stage_mix=None, workers=1, failure=None)
            exam_dir = root / f"sim-{vendor}" / "exam_00000"
            roi_file = root / f"sim-{vendor}-roi.seg.nrrd"
            shutil.copy2(exam_dir / "roi.seg.nrrd", roi_file)
            m = process_exam(exam_dir / "dicom", roi_file).measurement
            assert m.status == "ok", f"the clean simulated {vendor} exam must measure ok ({m.reason})"
            out.append(BaseExam(f"sim-{vendor}", exam_dir / "dicom", roi_file, m.mean_kpa, m.pooled.area_cm2, m.stage, frozenset(m.flags)))
    ge = make_ge_exam(root / "ge", seed=11, study_key="fuzz-ge")
    ge_roi = (ge.confidence >= 950) & ge.liver[None] & (ge.stiffness_pa > 0) & (ge.stiffness_pa < 32766)
    sie = make_siemens_exam(root / "siemens", seed=12, rows=96, cols=128)
    sie_roi = ~sie.low_confidence & sie.liver[None]
    for name, folder, roi in (("ge", ge.path, ge_roi), ("siemens", sie.path, sie_roi)):
        exam = read_exam(folder)
        roi_file = root / f"{name}-roi.seg.nrrd"
        write_seg_nrrd(roi_file, roi, exam.geometry)
        m = process_exam(folder, roi_file).measurement
        assert m.status == "ok", f"the clean {name} exam must measure ok"
        out.append(BaseExam(name, folder, roi_file, m.mean_kpa, m.pooled.area_cm2, m.stage, frozenset(m.flags)))
    return out


# ---------------------------------------------------------------------------- helpers
def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def _headers(folder: Path) -> list[tuple[Path, pydicom.Dataset]]:
    out = []
    for p in _files(folder):
        try:
            out.append((p, pydicom.dcmread(p, stop_before_pixels=True)))
        except Exception:
            continue
    return out


def _series(folder: Path) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    for p, ds in _headers(folder):
        groups.setdefault(str(ds.get("SeriesDescription", "")), []).append(p)
    return groups


def _role_files(folder: Path, words: tuple[str, ...], exclude: tuple[str, ...] = ()) -> list[Path]:
    out = []
    for desc, paths in _series(folder).items():
        d = desc.lower()
        if any(w in d for w in words) and not any(x in d for x in exclude):
            out.extend(paths)
    return sorted(out)


def stiffness_files(folder: Path) -> list[Path]:
    return _role_files(folder, ("stiff", "elastogram"), ("conf", "mask", "colour", "color"))


def confidence_files(folder: Path) -> list[Path]:
    return _role_files(folder, ("conf",), ("mask", "elastogram_gray_conf95_masked"))


def _edit(path: Path, change: Callable[[pydicom.Dataset], None]) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=False)


def _edit_or_note(path: Path, change: Callable[[pydicom.Dataset], None], what: str) -> str:
    """Apply a header edit; a file pydicom cannot read is left untouched and said so."""
    try:
        _edit(path, change)
    except Exception:
        return f"{what} (file unreadable, untouched)"
    return ""


# ---------------------------------------------------------------------------- mutations
# Each takes (folder, rng) and returns a short description. MEANING marks those that change what
# the exam means: the reader must refuse or flag them, never give a different number silently.
IMPORTANT_TAGS = [
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "RescaleSlope",
    "RescaleIntercept",
    "SeriesDescription",
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "SOPInstanceUID",
    "ImageType",
    "Manufacturer",
    "WindowCenter",
    "WindowWidth",
    "NumberOfFrames",
    "SliceThickness",
    "InstanceNumber",
    "PixelData",
]
WEIRD_VALUES = ["", "abc", "NaN", "inf", "-inf", "1e200", "0", "-1", "65536", "1\\2\\3\\4\\5\\6\\7", "\x1b[31mred"]


def m_flip_bytes(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_files(folder))
    data = bytearray(f.read_bytes())
    n = rng.choice([1, 4, 16, 64])
    header_end = min(len(data), 2048)
    for _ in range(n):
        i = rng.randrange(128, header_end) if rng.random() < 0.7 and header_end > 128 else rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    f.write_bytes(bytes(data))
    return f"flip {n} bytes in {f.name}"


def m_truncate(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_files(folder))
    size = f.stat().st_size
    cut = rng.randrange(0, size)
    with open(f, "r+b") as fh:
        fh.truncate(cut)
    return f"truncate {f.name} at {cut}/{size}"


def m_junk_file(folder: Path, rng: random.Random) -> str:
    kind = rng.choice(["text", "random", "dicm", "empty"])
    data = {
        "text": b"Patient notes\n" * 50,
        "random": bytes(rng.randrange(256) for _ in range(4000)),
        "dicm": b"\0" * 128 + b"DICM" + bytes(rng.randrange(256) for _ in range(500)),
        "empty": b"",
    }[kind]
    (folder / f"junk_{rng.randrange(10**6)}.dcm").write_bytes(data)
    return f"junk file ({kind})"


def m_zero_tail(folder: Path, rng: random.Random, size_mb: int | None = None) -> str:
    """A valid header followed by zeros: a sparse file, so it costs no disk."""
    f = rng.choice(_files(folder))
    size_mb = size_mb or rng.choice([50, 200])
    target = folder / f"padded_{rng.randrange(10**6)}.dcm"
    ds = pydicom.dcmread(f, stop_before_pixels=True)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(target, enforce_file_format=False)
    with open(target, "r+b") as fh:
        fh.truncate(size_mb << 20)
    return f"header + zeros to {size_mb} MB"


def m_delete_tag(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_files(folder))
    tag = rng.choice(IMPORTANT_TAGS)

    def change(ds):
        if tag in ds:
            del ds[tag]
        fg = ds.get("PerFrameFunctionalGroupsSequence")
        if fg:
            for item in fg:
                for g in item:
                    for sub in g.value:
                        if tag in sub:
                            del sub[tag]

    return _edit_or_note(f, change, f"delete {tag}") or f"delete {tag} in {f.name}"


def m_corrupt_tag(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_files(folder))
    tag = rng.choice([t for t in IMPORTANT_TAGS if t != "PixelData"])
    value = rng.choice(WEIRD_VALUES)

    def change(ds):
        elem = ds[tag] if tag in ds else None
        if elem is None:
            return
        try:
            if elem.VR in ("US", "SS", "UL", "SL"):
                ds[tag].value = int(float(value)) if value not in ("", "abc", "NaN", "inf", "-inf", "1e200") else 0
                ds[tag].value = max(min(ds[tag].value, 65535), 0) if elem.VR == "US" else ds[tag].value
            else:
                # raw bytes, so any text reaches the file as written
                ds[tag] = pydicom.DataElement(elem.tag, "UN", value.encode("latin-1", "replace"))
        except Exception:
            ds[tag] = pydicom.DataElement(elem.tag, "UN", value.encode("latin-1", "replace"))

    return _edit_or_note(f, change, f"corrupt {tag}") or f"corrupt {tag}={value!r} in {f.name}"


def m_bad_transfer_syntax(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_files(folder))
    uid = rng.choice(["1.2.3.4", "not-a-uid", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.5"])

    def change(ds):
        ds.file_meta.TransferSyntaxUID = uid

    try:
        ds = pydicom.dcmread(f)
        change(ds)
        ds.save_as(f, enforce_file_format=False, implicit_vr=False, little_endian=True)
    except Exception:
        return "bad transfer syntax (untouched)"
    return f"transfer syntax {uid} in {f.name}"


def m_per_frame_on_single(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_files(folder))

    def change(ds):
        item = pydicom.Dataset()
        item.FrameContentSequence = [pydicom.Dataset()]
        ds.PerFrameFunctionalGroupsSequence = [item]

    _edit(f, change)
    return f"empty PerFrameFunctionalGroupsSequence on single-frame {f.name}"


def m_rows_mismatch(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_files(folder))

    def change(ds):
        ds.NumberOfFrames = rng.choice([2, 3])
        ds.Rows = int(ds.Rows) // 2

    _edit(f, change)
    return f"multi-frame Rows/Columns disagree with pixel data in {f.name}"


def m_nan_position(folder: Path, rng: random.Random) -> str:
    f = rng.choice(_files(folder))
    bad = rng.choice(["nan", "inf", "1e308"])

    def change(ds):
        ds["ImagePositionPatient"] = pydicom.DataElement(0x00200032, "DS", f"{bad}\\0\\0")

    _edit(f, change)
    return f"ImagePositionPatient {bad} in {f.name}"


# -- meaning-changing
def m_swap_descriptions(folder: Path, rng: random.Random) -> str:
    s, c = stiffness_files(folder), confidence_files(folder)
    if not s or not c:
        return "swap descriptions (no confidence series)"
    ds_s, ds_c = pydicom.dcmread(s[0], stop_before_pixels=True), pydicom.dcmread(c[0], stop_before_pixels=True)
    names_s = (str(ds_s.get("SeriesDescription", "")), ds_s.get("ImageComments"))
    names_c = (str(ds_c.get("SeriesDescription", "")), ds_c.get("ImageComments"))

    def rename(names):
        def change(ds):
            ds.SeriesDescription = names[0]
            if names[1] is None:
                ds.pop("ImageComments", None)
            else:
                ds.ImageComments = names[1]

        return change

    for f in s:
        _edit(f, rename(names_c))
    for f in c:
        _edit(f, rename(names_s))
    return "stiffness and confidence descriptions swapped"


def m_wrong_manufacturer(folder: Path, rng: random.Random) -> str:
    who = rng.choice(["GE MEDICAL SYSTEMS", "SIEMENS", "Philips Medical Systems", ""])
    for f in _files(folder):
        _edit(f, lambda ds: setattr(ds, "Manufacturer", who))
    return f"Manufacturer '{who}' on every file"


def m_display_window(folder: Path, rng: random.Random) -> str:
    c, w = rng.choice([(4000, 8000), (400, 800), (4, 8)])

    def change(ds):
        ds.WindowCenter, ds.WindowWidth = c, w

    for f in stiffness_files(folder):
        _edit(f, change)
    return f"stiffness window {c}/{w}"


def m_rwvm_unit(folder: Path, rng: random.Random) -> str:
    unit = rng.choice(["Pa", "kPa", "hPa"])

    def change(ds):
        item = pydicom.Dataset()
        code = pydicom.Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = unit, "UCUM", unit
        item.MeasurementUnitsCodeSequence = [code]
        item.RealWorldValueSlope, item.RealWorldValueIntercept = 1.0, 0.0
        ds.RealWorldValueMappingSequence = [item]

    for f in stiffness_files(folder):
        _edit(f, change)
    return f"Real World Value Mapping says {unit}"


def m_rescale(folder: Path, rng: random.Random) -> str:
    files = stiffness_files(folder)
    if not files:
        return "rescale (no stiffness files)"
    how = rng.choice(["one_slice", "series_0.1", "zero", "series_10"])
    slope = {"one_slice": 1.25, "series_0.1": 0.1, "zero": 0.0, "series_10": 10.0}[how]
    targets = [rng.choice(files)] if how == "one_slice" else files
    for f in targets:
        _edit(f, lambda ds: setattr(ds, "RescaleSlope", slope))
    return f"RescaleSlope {slope} on {'one slice' if how == 'one_slice' else 'the series'}"


def m_drop_slice(folder: Path, rng: random.Random) -> str:
    files = stiffness_files(folder)
    if len(files) < 3:
        return "drop slice (too few)"
    f = rng.choice(files[1:-1])
    how = rng.choice(["delete", "corrupt", "shadow"])
    if how == "delete":
        f.unlink()
    elif how == "corrupt":
        f.write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    else:  # another slice's file copied over it: a duplicate SOP instance shadows the lost slice
        other = next(x for x in files if x != f)
        shutil.copy2(other, f)
    return f"inner stiffness slice lost ({how})"


def m_confidence_spacing(folder: Path, rng: random.Random) -> str:
    files = confidence_files(folder)
    if not files:
        return "confidence spacing (no confidence series)"
    factor = rng.choice([0.5, 2.0, 1.1])

    def change(ds):
        ds.PixelSpacing = [float(v) * factor for v in ds.PixelSpacing]

    for f in files:
        _edit(f, change)
    return f"confidence pixel spacing x{factor}"


def m_absurd_spacing(folder: Path, rng: random.Random) -> str:
    value = rng.choice(["1e200", "1e-9", "0", "-1.5"])
    for f in stiffness_files(folder):
        _edit(f, lambda ds: ds.__setitem__("PixelSpacing", pydicom.DataElement(0x00280030, "DS", f"{value}\\{value}")))
    return f"stiffness PixelSpacing {value}"


def m_oversized_series(folder: Path, rng: random.Random, side: int = 2048, n: int = 6) -> str:
    """A research raw series of large images in the same study (the real GE exam had 4096 x 4096)."""
    src = rng.choice(stiffness_files(folder) or _files(folder))
    ds = pydicom.dcmread(src)
    ds.SeriesInstanceUID = pydicom.uid.generate_uid()
    ds.SeriesDescription, ds.SeriesNumber = "MRE raw research", 999
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.Rows = ds.Columns = side
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    for name in ("WindowCenter", "WindowWidth", "ImageComments"):
        ds.pop(name, None)
    z0 = float(ds.ImagePositionPatient[2])
    ds.PixelData = np.full((side, side), 300, np.uint16).tobytes()
    for i in range(n):
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [float(ds.ImagePositionPatient[0]), float(ds.ImagePositionPatient[1]), z0 + 5.0 * i]
        ds.save_as(folder / f"raw_{i:03d}.dcm", enforce_file_format=False)
    return f"{n} extra {side} x {side} images in one series"


# ---------------------------------------------------------------------------- round three: slices and raw images
def masked_files(folder: Path) -> list[Path]:
    return _role_files(folder, ("mask",))


def raw_files(folder: Path) -> list[Path]:
    """The GE MR-Touch raw series (phase then magnitude images), in instance order."""
    files = _role_files(folder, ("mre 60hz",))
    return sorted(files, key=lambda p: int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber))


def _by_position(files: list[Path]) -> list[Path]:
    return sorted(files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))


def _set_position(ds: pydicom.Dataset, position) -> None:
    ds.ImagePositionPatient = list(position)
    if "SliceLocation" in ds:
        ds.SliceLocation = float(position[2])


def m_swap_positions(folder: Path, rng: random.Random) -> str:
    """Two stiffness files exchange their slice positions (a renumbering or anonymiser bug)."""
    files = _by_position(stiffness_files(folder))
    if len(files) < 2:
        return "swap positions (too few)"
    a, b = rng.sample(files, 2)
    pa = list(pydicom.dcmread(a, stop_before_pixels=True).ImagePositionPatient)
    pb = list(pydicom.dcmread(b, stop_before_pixels=True).ImagePositionPatient)
    _edit(a, lambda ds: _set_position(ds, pb))
    _edit(b, lambda ds: _set_position(ds, pa))
    return "two stiffness slices' positions swapped"


def m_reverse_positions(folder: Path, rng: random.Random) -> str:
    files = _by_position(stiffness_files(folder))
    if len(files) < 2:
        return "reverse positions (too few)"
    positions = [list(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient) for f in files]
    for f, p in zip(files, reversed(positions)):
        _edit(f, lambda ds, p=p: _set_position(ds, p))
    return "stiffness slice positions reversed"


def m_swap_slice_pixels(folder: Path, rng: random.Random) -> str:
    """Two stiffness files exchange their images, headers unchanged."""
    files = stiffness_files(folder)
    if len(files) < 2:
        return "swap pixels (too few)"
    a, b = rng.sample(files, 2)
    da, db = pydicom.dcmread(a), pydicom.dcmread(b)
    da.PixelData, db.PixelData = db.PixelData, da.PixelData
    da.save_as(a, enforce_file_format=False)
    db.save_as(b, enforce_file_format=False)
    return "two stiffness slices' images swapped"


def _change_slice_values(folder: Path, rng: random.Random, change: Callable[[np.ndarray, np.ndarray, random.Random], np.ndarray], what: str) -> str:
    files = stiffness_files(folder)
    if not files:
        return f"{what} (no stiffness files)"
    f = rng.choice(files)
    ds = pydicom.dcmread(f)
    values = ds.pixel_array.astype(np.float64)
    body = (values != 0) & (values < 32766)
    out = change(values, body, rng)
    info = np.iinfo(ds.pixel_array.dtype)
    out = np.where(body, np.clip(np.round(out), max(info.min, 1), min(info.max, 32765)), values)
    ds.PixelData = out.astype(ds.pixel_array.dtype).tobytes()
    ds.save_as(f, enforce_file_format=False)
    return what


def m_slice_unit_step(folder: Path, rng: random.Random) -> str:
    factor = rng.choice([0.1, 10.0])
    return _change_slice_values(folder, rng, lambda v, b, r: v * factor, f"one stiffness slice's values x{factor:g}")


def m_slice_constant(folder: Path, rng: random.Random) -> str:
    return _change_slice_values(folder, rng, lambda v, b, r: np.full_like(v, float(np.median(v[b])) * r.choice([1.0, 1.5])), "one stiffness slice constant")


def _textured(values: np.ndarray, body: np.ndarray) -> bool:
    both = body[:, :-1] & body[:, 1:]
    return both.sum() > 200 and float(np.corrcoef(values[:, :-1][both], values[:, 1:][both])[0, 1]) > 0.8


def m_slice_noise(folder: Path, rng: random.Random) -> str:
    """One slice of a textured elastogram replaced by noise (an elastogram that is noise already, as
    the small fixtures' are, cannot lose its texture: not applied there)."""
    files = stiffness_files(folder)
    if not files:
        return "slice noise (no stiffness files)"
    ds = pydicom.dcmread(files[0])
    values = ds.pixel_array.astype(np.float64)
    if not _textured(values, (values != 0) & (values < 32766)):
        return "slice noise (the elastogram has no texture to lose: not applied)"

    def noise(v, b, r):
        lo, hi = np.percentile(v[b], [1, 99])
        return np.random.default_rng(r.randrange(1 << 30)).uniform(lo, hi * 1.5, v.shape)

    return _change_slice_values(folder, rng, noise, "one stiffness slice replaced by noise")


def m_slice_intercept(folder: Path, rng: random.Random) -> str:
    files = stiffness_files(folder)
    if not files:
        return "slice intercept (no stiffness files)"
    f = rng.choice(files)
    value = rng.choice([1000, -500])
    _edit(f, lambda ds: (setattr(ds, "RescaleIntercept", value), setattr(ds, "RescaleSlope", getattr(ds, "RescaleSlope", 1) or 1)))
    return f"RescaleIntercept {value} on one stiffness slice"


def m_twin_shift(folder: Path, rng: random.Random) -> str:
    files = masked_files(folder)
    if not files:
        return "twin shift (no masked twin)"
    dy, dx = rng.choice([(0, 1), (1, 0), (-1, 1), (0, -2)])
    for f in files:
        ds = pydicom.dcmread(f)
        ds.PixelData = np.roll(ds.pixel_array, (dy, dx), axis=(0, 1)).tobytes()
        ds.save_as(f, enforce_file_format=False)
    return f"masked twin shifted by ({dy}, {dx}) px"


def m_drop_edge_slice(folder: Path, rng: random.Random) -> str:
    files = _by_position(stiffness_files(folder))
    if len(files) < 3:
        return "drop edge slice (too few)"
    rng.choice([files[0], files[-1]]).unlink()
    return "first or last stiffness slice lost"


def m_raw_renumber(folder: Path, rng: random.Random) -> str:
    """The GE raw series renumbered: magnitude first, or phase and magnitude interleaved."""
    files = raw_files(folder)
    if len(files) < 4:
        return "raw renumber (no raw series)"
    half = len(files) // 2
    how = rng.choice(["magnitude_first", "interleaved"])
    if how == "magnitude_first":
        order = files[half:] + files[:half]
    else:
        order = [f for pair in zip(files[:half], files[half:]) for f in pair]
    for n, f in enumerate(order, start=1):
        _edit(f, lambda ds, n=n: setattr(ds, "InstanceNumber", n))
    return f"raw series renumbered ({how})"


def m_raw_drop_image(folder: Path, rng: random.Random) -> str:
    files = raw_files(folder)
    if len(files) < 4:
        return "raw drop (no raw series)"
    rng.choice(files).unlink()
    return "one raw image lost"


def m_special_files(folder: Path, rng: random.Random) -> str:
    """A FIFO, a socket and a symlink to /dev/zero beside the exam (a PACS drop folder can hold them)."""
    import socket

    where = rng.choice(sorted({f.parent for f in _files(folder)}))
    os.mkfifo(where / "drop.fifo")
    server = socket.socket(socket.AF_UNIX)
    path = where / "s.sock"
    if len(str(path)) < 100:
        server.bind(str(path))
    server.close()
    (where / "zero.dcm").symlink_to("/dev/zero")
    return "FIFO, socket and /dev/zero link beside the exam"


def m_junk_headers(folder: Path, rng: random.Random, n: int = 140, value_mb: int = 15) -> str:
    """Unrelated files beside the exam whose headers hold a 15 MB private value (sparse on disk)."""
    from pydicom.dataset import FileMetaDataset

    junk = folder / "junk"
    junk.mkdir()
    for i in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
        meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
        target = junk / f"junk_{i:03d}.dcm"
        with open(target, "wb") as fh:
            fh.write(b"\0" * 128 + b"DICM")
            pydicom.filewriter.write_file_meta_info(fh, meta, enforce_standard=True)
            fh.write(b"\x09\x00\x10\x00LO\x08\x00JUNKJUNK")  # (0009,0010) private creator
            fh.write(b"\x09\x00\x00\x10OB\x00\x00" + (value_mb << 20).to_bytes(4, "little"))  # (0009,1000) OB, 15 MB
            start = fh.tell()
        with open(target, "r+b") as fh:
            fh.truncate(start + (value_mb << 20))  # sparse zeros: no disk
    return f"{n} unrelated files with {value_mb} MB headers beside the exam"


def m_huge_elastogram(folder: Path, rng: random.Random, side: int = 4096) -> str:
    """The stiffness images replaced by 4096 x 4096 ones (each under the per-file caps)."""
    files = stiffness_files(folder)[:4]
    for f in files:
        ds = pydicom.dcmread(f)
        dtype = ds.pixel_array.dtype
        ds.Rows = ds.Columns = side
        ds.PixelData = np.full((side, side), 2000, dtype).tobytes()
        ds.save_as(f, enforce_file_format=False)
    return f"{len(files)} stiffness images of {side} x {side}"


MUTATIONS: dict[str, tuple[Callable, bool]] = {
    "flip_bytes": (m_flip_bytes, False),
    "truncate": (m_truncate, False),
    "junk_file": (m_junk_file, False),
    "delete_tag": (m_delete_tag, False),
    "corrupt_tag": (m_corrupt_tag, False),
    "bad_transfer_syntax": (m_bad_transfer_syntax, False),
    "per_frame_on_single": (m_per_frame_on_single, False),
    "rows_mismatch": (m_rows_mismatch, False),
    "nan_position": (m_nan_position, False),
    "swap_descriptions": (m_swap_descriptions, True),
    "wrong_manufacturer": (m_wrong_manufacturer, True),
    "display_window": (m_display_window, True),
    "rwvm_unit": (m_rwvm_unit, True),
    "rescale": (m_rescale, True),
    "drop_slice": (m_drop_slice, True),
    "confidence_spacing": (m_confidence_spacing, True),
    "absurd_spacing": (m_absurd_spacing, True),
    "swap_positions": (m_swap_positions, True),
    "reverse_positions": (m_reverse_positions, True),
    "swap_slice_pixels": (m_swap_slice_pixels, True),
    "slice_unit_step": (m_slice_unit_step, True),
    "slice_constant": (m_slice_constant, True),
    "slice_noise": (m_slice_noise, True),
    "slice_intercept": (m_slice_intercept, True),
    "twin_shift": (m_twin_shift, True),
    "drop_edge_slice": (m_drop_edge_slice, True),
    "raw_renumber": (m_raw_renumber, True),
    "raw_drop_image": (m_raw_drop_image, True),
    "special_files": (m_special_files, False),
}
HEAVY = {
    "zero_tail": (m_zero_tail, False),
    "oversized_series": (m_oversized_series, False),
    "junk_headers": (m_junk_headers, False),
    "huge_elastogram": (m_huge_elastogram, False),
}  # large sparse files: the campaign, and one CI case


# ---------------------------------------------------------------------------- one iteration
def _alarm(_signum, _frame):
    raise Stall()


def classify(base: BaseExam, folder: Path, mutation: str, meaning: bool, description: str, stall_seconds: float = STALL_SECONDS) -> Outcome:
    t0 = time.monotonic()
    use_alarm = hasattr(signal, "SIGALRM")
    if use_alarm:
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, stall_seconds)
    try:
        result = process_exam(folder, base.roi_file, ReadOptions())
        m = result.measurement
        detail = f"{description}: {m.status}"
        kind = "result"
        # silent: a number that moved while the flags say nothing the clean exam's did not say already
        if m.status == "ok" and set(m.flags) <= base.flags and m.mean_kpa is not None:
            changed = []
            if abs(m.mean_kpa - base.mean_kpa) > SILENT_TOLERANCE * base.mean_kpa:
                changed.append(f"mean {m.mean_kpa:.3g} vs {base.mean_kpa:.3g} kPa")
            if abs(m.pooled.area_cm2 - base.area_cm2) > SILENT_TOLERANCE * base.area_cm2:
                changed.append(f"area {m.pooled.area_cm2:.3g} vs {base.area_cm2:.3g} cm2")
            if m.stage != base.stage:
                changed.append(f"stage {m.stage} vs {base.stage}")
            if changed:
                kind, detail = "silent_change", f"{description}: " + ", ".join(changed)
        result.to_json()  # must serialise (no Infinity)
    except Stall:
        kind, detail = "stall", f"{description}: over {stall_seconds:g} s"
    except MREFibrosisError as exc:
        kind, detail = "typed_error", f"{description}: {exc}"
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        kind, detail = "unhandled", f"{description}: {type(exc).__name__} at {Path(tb.filename).name}:{tb.lineno}: {str(exc)[:120]}"
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    return Outcome(kind, mutation, meaning, detail, time.monotonic() - t0)


def run_campaign(
    bases: list[BaseExam],
    work: Path,
    iterations: int,
    seed: int,
    include_heavy: bool = False,
    progress: Callable[[int, CampaignReport], None] | None = None,
    stall_seconds: float = STALL_SECONDS,
) -> CampaignReport:
    """Seeded: the same seed gives the same mutations, so a failure is reproducible."""
    rng = random.Random(seed)
    table = dict(MUTATIONS)
    if include_heavy:
        table.update(HEAVY)
    names = sorted(table)
    report = CampaignReport()
    for i in range(iterations):
        base = bases[i % len(bases)]
        name = names[rng.randrange(len(names))]
        fn, meaning = table[name]
        folder = work / f"it{i:06d}"
        shutil.copytree(base.folder, folder)
        it_rng = random.Random(rng.randrange(1 << 30))
        try:
            description = f"[{base.name} #{i}] " + fn(folder, it_rng)
        except Exception as exc:  # the mutation itself failed: count it, it says nothing about the reader
            description = f"[{base.name} #{i}] {name} not applied ({type(exc).__name__})"
        report.add(classify(base, folder, name, meaning, description, stall_seconds))
        shutil.rmtree(folder, ignore_errors=True)
        if progress:
            progress(i + 1, report)
    return report


def peak_memory_mb() -> float:
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024.0 if os.uname().sysname != "Darwin" else rss / (1024.0 * 1024.0)
