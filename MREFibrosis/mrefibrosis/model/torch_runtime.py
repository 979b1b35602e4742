"""The network on PyTorch: CUDA GPUs, reduced precision, and the reference fp32 path on the CPU."""

from __future__ import annotations

import numpy as np

from ..errors import MREFibrosisError
from .model_file import ModelFile, ModelFileError
from .runtime_errors import DeviceError, ModelUnavailableError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def import_torch():
    try:
        import segmentation_models_pytorch  # noqa: F401
        import torch
    except ImportError as exc:
        raise ModelUnavailableError(
            f"the torch runtime needs torch and segmentation-models-pytorch ({exc.name} is not installed): pip install 'mrefibrosis[model]' "
            "(in Slicer: install the PyTorch extension), or use --runtime onnx with onnxruntime, or measure a drawn ROI with --roi."
        ) from None
    return torch


def resolve_device(name: str = "auto") -> str:
    torch = import_torch()
    name = (name or "auto").lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {name} was asked for but no CUDA GPU is available to torch {torch.__version__}; use --device auto or cpu.")
        return name
    if name == "cpu":
        return "cpu"
    raise DeviceError(f"unknown device '{name}'; use auto, cpu or cuda[:N].")


def autocast(device: str, precision: str):
    """Reduced-precision context for bf16/fp16 on the device's type; a no-op for fp32."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype, enabled=dtype is not None)


def choose_precision(asked: str, device: str, validated: tuple[str, ...]) -> str:
    if asked not in PRECISIONS:
        raise MREFibrosisError(f"unknown precision '{asked}'; use one of {', '.join(PRECISIONS)}.")
    if asked != "auto":
        return asked
    if device == "cpu":
        return "bf16" if "bf16" in validated else "fp32"
    return "bf16" if "bf16" in validated else ("fp16" if "fp16" in validated else "fp32")


class TorchNetwork:
    """(N, C, S, S) float32 network input -> (N, outputs, S, S) float32 logits."""

    runtime = "torch"

    def __init__(self, model: ModelFile, device: str = "auto", precision: str = "auto"):
        torch = import_torch()
        from .architectures import build_model

        info = model.info
        self.device = resolve_device(device)
        self.precision = choose_precision(precision, self.device, info.validated_precisions)
        net = build_model(info.architecture, len(info.preprocessing.channels), info.base_channels, len(info.outputs))
        try:
            net.load_state_dict(model.torch_state())  # copies fp16 weights into the fp32 parameters
        except RuntimeError:
            raise ModelFileError(f"the weights do not fit architecture {info.architecture}; the file is not a valid model.") from None
        self.model = net.eval().to(self.device).to(memory_format=torch.channels_last)

    def cancel(self) -> None:
        """torch cannot stop a running forward pass: a cancel needs the child process (see MREFibrosisLib)."""

    def logits(self, x: np.ndarray, cancelled=None) -> np.ndarray:
        import torch

        if cancelled is not None and cancelled():
            from .runtime_errors import SegmentationCancelled

            raise SegmentationCancelled("segmentation cancelled")

        xs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(self.device, self.precision):
            return self.model(xs).float().cpu().numpy()
