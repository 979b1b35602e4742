"""Whether this Python can write DICOM results, asked before anything is written.

Why: Slicer 5.12 bundles pydicom 3 and highdicom; Slicer 5.10 bundled pydicom 2.4 and no highdicom.
On such a stack Export must still write the CSV, JSON and ROI files and say in one line why the
DICOM SEG/SR were left out, instead of failing half-way through.
"""

from __future__ import annotations

import importlib
from importlib import metadata

MIN_PYDICOM = (3, 0)
MIN_HIGHDICOM = (0, 23)


def _version(dist: str) -> tuple[int, ...] | None:
    try:
        text = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def dicom_export_problem() -> str | None:
    """None when DICOM SEG/SR/overlay can be written here, else a one-line reason with the fix."""
    pydicom_version = _version("pydicom")
    if pydicom_version is None or pydicom_version < MIN_PYDICOM:
        found = ".".join(map(str, pydicom_version)) if pydicom_version else "none"
        return f"DICOM results need pydicom >= {'.'.join(map(str, MIN_PYDICOM))} (found {found}; Slicer 5.12 bundles it)"
    try:
        importlib.import_module("highdicom")
    except ImportError:
        return "DICOM results need highdicom (bundled with Slicer 5.12; pip install highdicom on older releases)"
    highdicom_version = _version("highdicom")
    if highdicom_version is not None and highdicom_version < MIN_HIGHDICOM:
        return f"DICOM results need highdicom >= {'.'.join(map(str, MIN_HIGHDICOM))} (found {'.'.join(map(str, highdicom_version))})"
    return None
