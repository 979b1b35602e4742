"""Debian's DICOM validator (dicom3tools dciodvfy) for tests: required under CI, skipped elsewhere."""

import os
import shutil
import subprocess

import pytest


def dciodvfy_errors(path) -> list[str]:
    """The 'Error' lines dciodvfy prints for one file (warnings are allowed)."""
    if shutil.which("dciodvfy") is None:
        if os.environ.get("CI"):
            pytest.fail("dciodvfy (Debian dicom3tools) is not installed")
        pytest.skip("dciodvfy not installed")
    proc = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.startswith("Error")]
