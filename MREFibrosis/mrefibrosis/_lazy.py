"""Package APIs that import their modules on first use, so that naming a package's public API never
loads torch, Ray or highdicom before a command needs them (start-up time of every CLI call)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable


def installed(package: str) -> bool:
    """Whether `package` can be imported, without importing it (a None in sys.modules blocks it)."""
    if package in sys.modules:
        return sys.modules[package] is not None
    return importlib.util.find_spec(package) is not None


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module __getattr__ serving `exports` (name -> submodule) from `package`."""

    def __getattr__(name: str) -> object:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
