"""Every QC flag the engine can raise has words for the screen (a new flag without them would show
as a code on the review page and the Slicer panel)."""

from __future__ import annotations

import importlib
import pkgutil

from mrefibrosis.results.flag_words import FLAG_WORDS, flag_words, warnings_in_words


def _engine_flags() -> set[str]:
    """Every FLAG_* constant of the packages that raise flags (reading the exam, measuring it)."""
    flags = set()
    for package in ("reading", "measure"):
        root = importlib.import_module(f"mrefibrosis.{package}")
        names = [root.__name__] + [info.name for info in pkgutil.walk_packages(root.__path__, f"mrefibrosis.{package}.")]
        for name in names:
            module = importlib.import_module(name)
            flags |= {v for k, v in vars(module).items() if k.startswith("FLAG_") and isinstance(v, str)}
    return flags


def test_every_engine_flag_has_words():
    flags = _engine_flags()
    assert len(flags) >= 20
    assert flags <= set(FLAG_WORDS), f"flags without words: {sorted(flags - set(FLAG_WORDS))}"
    assert all("_" not in words for words in FLAG_WORDS.values())


def test_warnings_in_words_once_in_order():
    assert warnings_in_words(["roi_outside_confidence", "slice_gap", "roi_outside_confidence"]) == [
        FLAG_WORDS["roi_outside_confidence"],
        FLAG_WORDS["slice_gap"],
    ]
    assert flag_words("some_new_flag") == "some new flag"
