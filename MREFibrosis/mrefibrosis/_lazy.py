"""Package APIs that import their modules on first use, so that naming a package's public API never
loads torch, Ray or highdicom before a command needs them (start-up time of every CLI call)."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], object]:
    """A module __getattr__ serving `exports` (name -> submodule) from `package`."""

    def __getattr__(name: str) -> object:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
