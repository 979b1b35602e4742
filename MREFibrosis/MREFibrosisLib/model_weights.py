"""Whether Segment has its weights, and fetching them for the panel (docs/adr/0007).

Why in the Lib: the panel only asks the reader's consent and shows progress; what is missing, where
it comes from and how it is checked are the engine's (model_store), tested here without Slicer.
Fetching runs on the main thread with a progress callback that lets Qt paint and offers Cancel:
a Python worker thread would crawl while Slicer's idle main loop holds the GIL (ADR 0002).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mrefibrosis.errors import MREFibrosisError
from mrefibrosis.model import model_store


class FetchCancelled(MREFibrosisError):
    """The reader cancelled the download; nothing was installed."""


def weights_missing(model_path: str | None) -> bool:
    """True when Segment would use the default model and its weights are not installed yet (a
    model file the reader chose is checked where it is loaded)."""
    return not model_path and model_store.installed_model() is None


def consent_text() -> str:
    return (
        "Segment needs the model's weights (64 MB), which are downloaded once from "
        f"{model_store.release_url()} and checked against the checksum shipped with the extension. "
        "Download them now? (Without internet: 'PythonSlicer -m mrefibrosis fetch-model --from FILE'.)"
    )


def fetch_weights(on_progress: Callable[[int, int | None], bool], source: str | None = None) -> Path:
    """Install the weights; `on_progress(done, total)` returns False to cancel."""

    def progress(done: int, total: int | None) -> None:
        if not on_progress(done, total):
            raise FetchCancelled("the download was cancelled; nothing was installed.")

    return model_store.fetch_model(source, progress=progress)
