"""The manifest: one CSV row per annotated exam, shared by `train`, `tune` and `evaluate`.

Columns: ``exam`` (DICOM folder) and ``roi`` (.seg.nrrd, labelmap .nrrd/.nii.gz or DICOM SEG) are
required; ``liver`` (optional, same formats) is the whole liver, for liver-aware models; ``patient`` groups exams of one person for the split (default: the exam itself);
``manual_kpa`` and ``stage`` are the reader's measurement (a stage label: F0..F4 or a preset's
band name such as ">=F2"); ``fibrosis_stage`` (F0..F4, e.g. from histology) adds a per-stage table; ``cohort`` names a group for the
two-cohort table; any other column (age, sex, height, weight, bmi, ...) is a demographic.
Relative paths are relative to the manifest file, so a data folder can be moved as a whole.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MREFibrosisError
from ..results.staged_files import atomic_write_text

REQUIRED = ("exam", "roi")
KNOWN = ("exam", "roi", "liver", "patient", "manual_kpa", "stage", "cohort")


class ManifestError(MREFibrosisError):
    """The manifest CSV is missing, malformed or points at files that do not exist."""


@dataclass
class ManifestRow:
    exam_dir: Path
    roi_path: Path | None  # None: the reader found no measurable liver (an indeterminate exam)
    patient: str
    manual_kpa: float | None = None
    stage: str | None = None
    cohort: str | None = None
    demographics: dict[str, str] = field(default_factory=dict)
    line: int = 0
    exam_text: str = ""  # the path as written in the manifest (reports name exams by it)
    liver_path: Path | None = None  # the whole liver (optional): trains a liver-aware model's second output

    @property
    def name(self) -> str:
        return self.exam_text or self.exam_dir.name


def _float(text: str, what: str, line: int) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ManifestError(f"manifest line {line}: {what} '{text[:20]}' is not a number; leave it empty or write e.g. 3.2.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ManifestError(f"manifest line {line}: {what} is not finite; leave it empty or write a number.")
    return value


def read_manifest(path: str | os.PathLike, check_files: bool = True) -> list[ManifestRow]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {path.name} ({getattr(exc, 'strerror', None) or type(exc).__name__}); pass a UTF-8 CSV file.") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ManifestError(f"manifest {path.name} lacks column(s) {', '.join(missing)}; the header needs at least 'exam,roi' (see docs/training.md).")
    base = path.parent
    rows: list[ManifestRow] = []
    seen: set[Path] = set()
    for n, raw in enumerate(reader, start=2):
        raw = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(raw.values()):
            continue
        exam = (base / raw["exam"]).resolve() if raw["exam"] else None
        if exam is None:
            raise ManifestError(f"manifest line {n}: empty 'exam'; give the exam's DICOM folder.")
        if check_files and not exam.is_dir():
            raise ManifestError(
                f"manifest line {n}: exam folder {raw['exam'][:80]} does not exist; fix the path (relative paths start at the manifest's folder)."
            )
        if exam in seen:
            raise ManifestError(f"manifest line {n}: exam {raw['exam'][:80]} is listed twice; keep one row per exam.")
        seen.add(exam)
        roi = (base / raw["roi"]).resolve() if raw["roi"] else None
        if roi is not None and check_files and not roi.exists():
            raise ManifestError(
                f"manifest line {n}: ROI file {raw['roi'][:80]} does not exist; fix the path or leave it empty for an exam without a measurable liver."
            )
        liver = (base / raw["liver"]).resolve() if raw.get("liver") else None
        if liver is not None and check_files and not liver.exists():
            raise ManifestError(f"manifest line {n}: liver file {raw['liver'][:80]} does not exist; fix the path or leave it empty.")
        stage = raw.get("stage", "") or None
        if stage is not None and len(stage) > 40:
            raise ManifestError(f"manifest line {n}: stage '{stage[:20]}...' is longer than 40 characters; write a stage label such as F2 or >=F2.")
        manual = _float(raw.get("manual_kpa", ""), "manual_kpa", n)
        if manual is not None and not 0.0 < manual < 100.0:
            raise ManifestError(f"manifest line {n}: manual_kpa {manual:g} is outside 0-100 kPa; write kPa, not Pa.")
        demographics = {k: v for k, v in raw.items() if k not in KNOWN and k}
        rows.append(ManifestRow(exam, roi, raw.get("patient") or str(exam), manual, stage, raw.get("cohort") or None, demographics, n, raw["exam"], liver))
    if not rows:
        raise ManifestError(f"manifest {path.name} has no exam rows; add one row per annotated exam.")
    return rows


def manifest_from_synthetic(cohort_dir: str | os.PathLike, out: str | os.PathLike | None = None, cohort: str | None = None) -> Path:
    """Write manifest.csv for a `mrefibrosis synth` cohort: reader ROI, reader kPa, seed-preset stage and
    the simulated (drawn) fibrosis stage.

    Sex and age come from the exams' DICOM headers, as a site would export them from its RIS.
    """
    import pydicom

    cohort_dir = Path(cohort_dir)
    out = Path(out) if out else cohort_dir / "manifest.csv"
    exams = sorted(p for p in cohort_dir.glob("exam_*") if (p / "truth.json").exists())
    if not exams:
        raise ManifestError(f"{cohort_dir} holds no exam_*/truth.json folders; make them with 'mrefibrosis synth'.")
    lines = [["exam", "roi", "patient", "manual_kpa", "stage", "fibrosis_stage", "cohort", "vendor", "sex", "age", "failure", "liver"]]
    for d in exams:
        truth = json.loads((d / "truth.json").read_text())
        first = next(iter(sorted((d / "dicom").rglob("*.dcm"))), None)
        sex = age = ""
        if first is not None:
            ds = pydicom.dcmread(first, stop_before_pixels=True)
            sex = str(ds.get("PatientSex", ""))
            age = str(ds.get("PatientAge", "")).rstrip("Y").lstrip("0")
        ok = truth["status"] == "ok"
        lines.append(
            [
                os.path.relpath(d / "dicom", out.parent),
                os.path.relpath(d / "roi.seg.nrrd", out.parent) if ok else "",
                truth["exam"],
                f"{truth['reader_kpa']:.4f}" if ok else "",
                (truth["stages"].get("seed") or "") if ok else "",
                truth.get("stage_drawn") or "",
                cohort or "",
                truth["vendor"],
                sex,
                age,
                truth.get("failure") or "",
                os.path.relpath(d / "liver.seg.nrrd", out.parent) if (d / "liver.seg.nrrd").exists() else "",
            ]
        )
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(lines)
    atomic_write_text(out, buf.getvalue())
    return out
