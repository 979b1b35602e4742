"""Whether an optional package is there, without importing it.

Why: the CLI and the Slicer panel decide between runtimes (ONNX Runtime, torch) and say what is
missing before anything heavy is imported (start-up time of every command, Slicer's first click).
"""

from __future__ import annotations

import importlib.util
import sys


def installed(package: str) -> bool:
    """Whether `package` can be imported, without importing it (a None in sys.modules blocks it)."""
    if package in sys.modules:
        return sys.modules[package] is not None
    return importlib.util.find_spec(package) is not None
