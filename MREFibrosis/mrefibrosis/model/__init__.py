"""The segmentation model: architectures (the paper's UNet-ResNeXt50 and a plain U-Net), the
checksummed model file, the canonical network input, and inference with its post-processing."""

from .._lazy import lazy_exports

_EXPORTS = {
    "build_model": "architectures",
    "ARCHITECTURES": "architectures",
    "ModelInfo": "model_file",
    "Preprocessing": "model_file",
    "read_model_file": "model_file",
    "save_model": "model_file",
    "ModelFileError": "model_file",
    "ModelIdentity": "identity",
    "Segmenter": "inference",
    "Segmentation": "inference",
    "default_model_path": "inference",
    "resolve_device": "inference",
    "canonical_input": "preprocess",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
