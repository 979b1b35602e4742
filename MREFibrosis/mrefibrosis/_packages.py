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


def require(package: str, needed_for: str, extra: str) -> None:
    """A one-line refusal, before any work, when an optional package a chosen option needs is not
    installed (the lean install for measuring leaves out what only some users need)."""
    if not installed(package):
        from .errors import MREFibrosisError

        raise MREFibrosisError(f"{needed_for} needs the '{package}' package, not installed here: pip install 'mrefibrosis[{extra}]'.")
