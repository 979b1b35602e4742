"""Patient-level split, stratified by stage, saved with the run so evaluation never sees training patients."""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict

import numpy as np

from ..results.staged_files import atomic_write_text
from .manifest import ManifestError, ManifestRow

NO_STAGE = "none"


def patient_stratum(rows: list[ManifestRow]) -> str:
    """A patient's stratum is the highest stage among their exams (none when unlabelled/indeterminate)."""
    stages = sorted(r.stage for r in rows if r.stage)
    return stages[-1] if stages else NO_STAGE


def split_patients(rows: list[ManifestRow], val_fraction: float, seed: int) -> dict[str, str]:
    """patient -> 'train' or 'val'. Every stratum with >= 2 patients gives at least one to validation."""
    if not 0.0 < val_fraction < 1.0:
        raise ManifestError("--val-fraction must lie between 0 and 1, e.g. 0.15.")
    by_patient: dict[str, list[ManifestRow]] = defaultdict(list)
    for r in rows:
        by_patient[r.patient].append(r)
    if len(by_patient) < 2:
        raise ManifestError("the manifest needs exams of at least 2 patients to split into training and validation.")
    strata: dict[str, list[str]] = defaultdict(list)
    for patient, prow in sorted(by_patient.items()):
        strata[patient_stratum(prow)].append(patient)
    rng = np.random.default_rng(seed)
    assignment: dict[str, str] = {}
    for name in sorted(strata):
        patients = list(strata[name])
        rng.shuffle(patients)
        n_val = int(round(val_fraction * len(patients)))
        if len(patients) >= 2:
            n_val = min(max(n_val, 1), len(patients) - 1)
        for i, p in enumerate(patients):
            assignment[p] = "val" if i < n_val else "train"
    if "val" not in assignment.values():
        assignment[sorted(assignment)[0]] = "val"
    if "train" not in assignment.values():
        raise ManifestError("the split left no training patients; lower --val-fraction or add exams.")
    return assignment


def write_split(path: str | os.PathLike, rows: list[ManifestRow], assignment: dict[str, str]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["exam", "patient", "stage", "subset"])
    for r in rows:
        w.writerow([str(r.exam_dir), r.patient, r.stage or "", assignment[r.patient]])
    atomic_write_text(path, buf.getvalue())


def read_split(path: str | os.PathLike) -> dict[str, str]:
    """exam folder -> subset, as saved by a run (used on resume, so a run keeps its split)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["exam"]: row["subset"] for row in csv.DictReader(fh)}
