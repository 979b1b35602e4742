"""Training and tuning on a site's own annotated exams (the seed paper's recipe by default)."""

from .._lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "config",
    "train": "trainer",
    "read_manifest": "manifest",
    "manifest_from_synthetic": "manifest",
    "tune": "tune",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
