"""Batch scoring of an archive on Ray Data: the same code on one workstation or a cluster."""

from .._lazy import lazy_exports

_EXPORTS = {
    "run_batch": "run",
    "score_folder": "scorer",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
