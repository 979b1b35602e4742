"""Which of the module's pinned Python requirements are missing here, without installing anything.

Why Qt-free: the panel asks before installing (and the self-test must never install), so the check
itself is plain Python that pytest runs on both the project's and Slicer 5.12's package sets.
"""

from __future__ import annotations

import importlib.util
import re
from importlib import metadata
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "Resources"
ENGINE_REQUIREMENTS = RESOURCES / "requirements.txt"
MODEL_REQUIREMENTS = RESOURCES / "requirements-model.txt"
_LINE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(==\s*([^\s;#]+))?")


def read_requirements(path: str | Path) -> list[str]:
    """The requirement lines of a requirements file (comments and blanks dropped)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def unmet(requirements: list[str]) -> list[str]:
    """The requirements not installed at the pinned version (pins are exact: '==')."""
    missing = []
    for req in requirements:
        m = _LINE.match(req)
        if not m:
            raise ValueError(f"unsupported requirement line {req!r}: use 'name==version'.")
        name, pinned = m.group(1), m.group(3)
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(req)
            continue
        if pinned and installed != pinned:
            missing.append(req)
    return missing


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def missing_for(segment: bool) -> list[str]:
    """What Compute (segment=False) or Segment (segment=True) still needs; 'torch' stands for the PyTorch extension."""
    missing = unmet(read_requirements(ENGINE_REQUIREMENTS))
    if segment:
        if not torch_available():
            missing.insert(0, "torch")
        missing += unmet(read_requirements(MODEL_REQUIREMENTS))
    return missing
