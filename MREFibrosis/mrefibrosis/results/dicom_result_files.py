"""The names of the DICOM objects MREFibrosis writes beside its results, and their clean-up.

Why apart from dicom_results: writing plain results (CSV, JSON, .seg.nrrd) must clear an earlier
run's DICOM objects without importing highdicom, which `measure --roi` never needs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MANUFACTURER = "MREFibrosis"
SEG_NAME, SR_NAME, OVERLAY_NAME = "SEG.dcm", "SR.dcm", "OVERLAY_{:03d}.dcm"
OVERLAY_PATTERN = re.compile(r"OVERLAY_\d{3,}\.dcm")


def remove_dicom_results(out_dir: str | os.PathLike, keep: frozenset[str] = frozenset()) -> list[Path]:
    """Delete the SEG, SR and overlays an earlier run wrote into out_dir (only those names): results
    written without DICOM must not sit beside DICOM objects of an older ROI, which a viewer or the
    review page would take for the current ones. Other files are left alone."""
    folder = Path(out_dir)
    if not folder.is_dir():
        return []
    ours = [p for p in folder.iterdir() if p.is_file() and not p.is_symlink() and (p.name in (SEG_NAME, SR_NAME) or OVERLAY_PATTERN.fullmatch(p.name))]
    stale = [p for p in ours if p.name not in keep]
    for p in stale:
        p.unlink()
    if not any(folder.iterdir()):
        folder.rmdir()
    return stale
