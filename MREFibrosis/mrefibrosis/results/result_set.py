"""A result folder holds one complete set of results, or says that it does not.

Why: `measure`, the review page's Export and the Slicer panel's Export write several files
(measurements.csv, result.json, roi.seg.nrrd, dicom/SEG.dcm, SR.dcm, overlays) into a folder that may
hold an earlier run's. Renaming them into place one by one, a writer killed half-way left a CSV of the
new ROI beside a JSON, SEG and SR of the old one (1 of 18 kills on the review page). No file system
renames several files at once, so the folder says which set it holds: `result-set.json`, written
last, lists every file of the set with its SHA-256, and it is removed before the first file of a new
set moves in. A folder whose manifest is missing or does not match its files is not a complete set
(`verify_result_set` returns None); readers check it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from .staged_files import atomic_write_text

MANIFEST = "result-set.json"
PARTIAL_PREFIX = ".mrefibrosis-partial-"
FORMAT = 1


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def remove_stale_partials(out_dir: Path, keep: Path | None = None) -> None:
    """Staging folders a killed writer left behind (it never reached its clean-up)."""
    for p in out_dir.glob(f"{PARTIAL_PREFIX}*"):
        if p.is_dir() and p != keep and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)


def publish(staging: Path, out_dir: Path, names: list[str]) -> tuple[list[Path], dict]:
    """Move the staged files (names relative to both folders, e.g. 'dicom/SEG.dcm') into out_dir as
    one set: the old manifest goes first. Returns the files' new paths and the manifest to write
    (`write_manifest`) once the caller has removed what the new set does not hold."""
    sums = {name: _sha256(staging / name) for name in names}
    (out_dir / MANIFEST).unlink(missing_ok=True)  # from here until the end the folder is not a set
    placed = []
    for name in names:
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target)
        placed.append(target)
    manifest = {"format": FORMAT, "written": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": sums}
    return placed, manifest


def write_manifest(out_dir: Path, manifest: dict) -> None:
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def verify_result_set(out_dir: str | os.PathLike) -> dict | None:
    """The folder's manifest when every file it lists is there with its checksum; None for a folder
    that holds no complete set (a writer stopped half-way, or files changed since)."""
    folder = Path(out_dir)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        for name, digest in files.items():
            path = folder / name
            if Path(name).is_absolute() or ".." in Path(name).parts or not path.is_file() or _sha256(path) != digest:
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return manifest
