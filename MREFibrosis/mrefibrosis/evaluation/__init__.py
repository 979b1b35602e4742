"""Evaluation of a model on a labelled cohort: the seed paper's metrics as a report."""

from .._lazy import lazy_exports

_EXPORTS = {
    "evaluate": "report",
    "evaluate_exam": "report",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
