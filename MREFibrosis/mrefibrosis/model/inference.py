"""Run a model file on exams: device choice, batching, reduced precision, post-processing, TTA."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..errors import MREFibrosisError
from ..reading.exam import Exam
from .identity import ModelIdentity
from .model_file import ModelFileError, read_model_file
from .preprocess import canonical_input, to_model_size, to_native_size

DEFAULT_MODEL = Path(__file__).resolve().parent / "weights" / "mrefibrosis-unet-resnext50.mrefmodel"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ModelUnavailableError(MREFibrosisError):
    """torch or segmentation-models-pytorch is missing (the Slicer panel installs them on first Segment)."""


class DeviceError(MREFibrosisError):
    """The requested compute device is not available."""


def default_model_path() -> Path:
    env = os.environ.get("MREFIBROSIS_MODEL")
    return Path(env) if env else DEFAULT_MODEL


def resolve_device(name: str = "auto") -> str:
    import torch

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


LIVER_THRESHOLD = 0.5


@dataclass
class Segmentation:
    roi: np.ndarray  # (slices, rows, columns) bool, after post-processing
    probability: np.ndarray  # (slices, rows, columns) float32
    tta_agreement: float | None  # Dice between plain and flipped predictions
    device: str
    precision: str
    seconds: float
    liver: np.ndarray | None = None  # (slices, rows, columns) bool: the predicted liver (liver-aware models)


def drop_small_pieces(mask: np.ndarray, pixel_area_mm2: float, min_cm2: float) -> np.ndarray:
    out = np.zeros_like(mask, dtype=bool)
    min_px = min_cm2 * 100.0 / pixel_area_mm2
    for k in range(mask.shape[0]):
        lab, n = ndimage.label(mask[k])
        if n:
            sizes = ndimage.sum(mask[k], lab, index=np.arange(1, n + 1))
            out[k] = np.isin(lab, 1 + np.flatnonzero(sizes >= min_px))
    return out


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2.0 * (a & b).sum() / s)


def allowed_region(exam: Exam) -> np.ndarray:
    """Where an ROI may lie: valid stiffness, and confident where the exam has confidence data."""
    return exam.valid & exam.confidence_valid if exam.confidence_valid is not None else exam.valid.copy()


def postprocess_mask(prob: np.ndarray, allowed: np.ndarray, pixel_area_mm2: float, threshold: float, min_piece_cm2: float) -> np.ndarray:
    return drop_small_pieces((prob >= threshold) & allowed, pixel_area_mm2, min_piece_cm2)


def liver_mask(prob_liver: np.ndarray, threshold: float = LIVER_THRESHOLD) -> np.ndarray:
    """The predicted liver per slice with its holes filled (vessels and low-confidence patches inside
    the liver are still liver; the ROI rules keep the ROI off them)."""
    out = prob_liver >= threshold
    for k in range(out.shape[0]):
        out[k] = ndimage.binary_fill_holes(out[k])
    return out


def roi_from_maps(
    maps: np.ndarray, allowed: np.ndarray, pixel_area_mm2: float, threshold: float, min_piece_cm2: float, has_liver: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """(ROI, liver) from the network's (slices, outputs, rows, columns) probabilities. Why the liver
    bounds the ROI: an ROI pixel outside the liver measures another organ, the error that made the
    first model read a real exam 11.6 % high."""
    liver = liver_mask(maps[:, 1]) if has_liver else None
    region = allowed & liver if liver is not None else allowed
    return postprocess_mask(maps[:, 0], region, pixel_area_mm2, threshold, min_piece_cm2), liver


def autocast(device: str, precision: str):
    """Reduced-precision context for bf16/fp16 on the device's type; a no-op for fp32."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=dtype, enabled=dtype is not None)


class Segmenter:
    """Loads a model file once; call it on exams (the `process_exam` segmenter protocol)."""

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        device: str = "auto",
        precision: str = "auto",
        tta: bool = False,
        expected_sha256: str | None = None,
    ):
        path = Path(model_path) if model_path else default_model_path()
        if not path.exists():
            hint = (
                "pass an existing --model FILE" if model_path else "no default model is installed; pass --model FILE, or --roi ROI_FILE to measure a drawn ROI"
            )
            raise ModelFileError(f"model file {path} not found; {hint}.")
        try:
            import segmentation_models_pytorch  # noqa: F401
            import torch
        except ImportError as exc:
            raise ModelUnavailableError(
                f"the segmenter needs torch and segmentation-models-pytorch ({exc.name} is not installed): "
                "pip install 'mrefibrosis[model]' (in Slicer: install the PyTorch extension and press Segment), or measure a drawn ROI with --roi."
            ) from None

        from .architectures import build_model

        self.info, state, self.sha256 = read_model_file(path, expected_sha256)
        self.path = path
        self.device = resolve_device(device)
        if precision not in PRECISIONS:
            raise MREFibrosisError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}.")
        self.precision = self._choose_precision(precision)
        model = build_model(self.info.architecture, len(self.info.preprocessing.channels), self.info.base_channels, len(self.info.outputs))
        try:
            model.load_state_dict(state)  # copies fp16 weights into the fp32 parameters in place
            del state
        except RuntimeError:
            raise ModelFileError(f"{path.name}: weights do not fit architecture {self.info.architecture}; the file is not a valid model.") from None
        self.model = model.eval().to(self.device).to(memory_format=torch.channels_last)
        self.tta = tta

    def _choose_precision(self, asked: str) -> str:
        if asked != "auto":
            return asked
        validated = self.info.validated_precisions
        if self.device == "cpu":
            return "bf16" if "bf16" in validated else "fp32"
        return "bf16" if "bf16" in validated else ("fp16" if "fp16" in validated else "fp32")

    def _forward(self, x):
        import torch

        with torch.inference_mode(), autocast(self.device, self.precision):
            return self.model(x).float()

    def probabilities(self, exams: list[Exam]) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """Sigmoid maps (slices, outputs, rows, columns) on each exam's native grid; all slices of all
        exams in one batch; the second list holds the left-right flipped pass when TTA is on."""
        import torch

        pre = self.info.preprocessing
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
        for n, exam in enumerate(exams):
            groups.setdefault(exam.stiffness_kpa.shape[1:], []).append((n, canonical_input(exam, pre)))
        probs: list = [None] * len(exams)
        flips: list = [None] * len(exams)
        for shape, items in groups.items():
            x = torch.from_numpy(np.concatenate([a for _, a in items])).to(self.device)
            xs = to_model_size(x, pre.input_size).contiguous(memory_format=torch.channels_last)
            logits = to_native_size(self._forward(xs), shape)
            p = torch.sigmoid(logits).cpu().numpy()
            pf = None
            if self.tta:
                lf = self._forward(torch.flip(xs, dims=[3]).contiguous(memory_format=torch.channels_last))
                pf = torch.sigmoid(to_native_size(torch.flip(lf, dims=[3]), shape)).cpu().numpy()
            start = 0
            for n, a in items:
                probs[n] = p[start : start + len(a)]
                flips[n] = None if pf is None else pf[start : start + len(a)]
                start += len(a)
        return probs, flips

    def postprocess(self, exam: Exam, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return roi_from_maps(maps, allowed_region(exam), exam.geometry.pixel_area_mm2, self.info.threshold, self.info.min_piece_cm2, self.info.has_liver)

    def segment_many(self, exams: list[Exam]) -> list[Segmentation]:
        t0 = time.perf_counter()
        probs, flips = self.probabilities(exams)
        out = []
        for exam, p, pf in zip(exams, probs, flips):
            agreement = None
            if pf is not None:
                agreement = dice(self.postprocess(exam, p)[0], self.postprocess(exam, pf)[0])
                p = 0.5 * (p + pf)
            roi, liver = self.postprocess(exam, p)
            out.append(Segmentation(roi, p[:, 0].astype(np.float32), agreement, self.device, self.precision, 0.0, liver))
        dt = time.perf_counter() - t0
        for s in out:
            s.seconds = dt / max(1, len(out))
        return out

    def segment(self, exam: Exam) -> Segmentation:
        return self.segment_many([exam])[0]

    def __call__(self, exam: Exam) -> np.ndarray:
        return self.segment(exam).roi

    def identity(self, exam: Exam | None = None) -> ModelIdentity:
        return ModelIdentity(
            file=self.path.name,
            sha256=self.sha256,
            architecture=self.info.architecture,
            model_version=self.info.model_version,
            input_size=self.info.preprocessing.input_size,
            device=self.device,
            precision=self.precision,
            tta=self.tta,
            channels=tuple(self.info.preprocessing.channels),
            outputs=tuple(self.info.outputs),
        )

    def describe(self) -> dict:
        return self.identity().legacy_json()
