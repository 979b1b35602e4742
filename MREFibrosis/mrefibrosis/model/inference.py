"""Run a model file on exams: device choice, batching, reduced precision, post-processing, TTA."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import MREFibrosisError
from .identity import ModelIdentity
from .margin_settings import RoiMargins
from .model_file import ModelFileError, load_model_file, published_checksum
from .model_store import MODEL_NAME, PACKAGED_DIR
from .onnx_format import graph_path_for, int8_graph_path_for
from .runtime_errors import DeviceError, ModelUnavailableError, SegmentationCancelled
from .torch_runtime import PRECISIONS, resolve_device

if TYPE_CHECKING:
    from ..reading.exam import Exam

# scipy and the preprocessing (pydicom-free but scipy-heavy) are imported where used: loading a model
# imports only numpy and the runtime, so it can run on a thread while the exam's reading stack imports

__all__ = [
    "DEFAULT_MODEL",
    "PRECISIONS",
    "DeviceError",
    "ModelUnavailableError",
    "Segmentation",
    "SegmentationCancelled",
    "Segmenter",
    "choose_runtime",
    "resolve_device",
]

DEFAULT_MODEL = PACKAGED_DIR / MODEL_NAME  # the shipped weights' place (absent where they are fetched: model_store)


RUNTIMES = ("auto", "torch", "onnx")


def default_model_path() -> Path:
    """$MREFIBROSIS_MODEL, else the weights where they are installed (beside the package, or fetched
    into the user's model folder: model_store), else the package's path, which then does not exist."""
    env = os.environ.get("MREFIBROSIS_MODEL")
    if env:
        return Path(env)
    from . import model_store

    return model_store.installed_model() or model_store.PACKAGED_DIR / model_store.MODEL_NAME


def cuda_may_be_present() -> bool:
    """Whether a CUDA GPU could be there, without importing torch (which costs seconds): torch is
    installed and an NVIDIA driver is visible."""
    from .._packages import installed

    if not (installed("torch") and installed("segmentation_models_pytorch")):  # a partial torch runtime cannot run
        return False
    if os.name == "nt":
        return (Path(os.environ.get("SystemRoot", r"C:\Windows")) / "System32" / "nvcuda.dll").exists()
    return Path("/proc/driver/nvidia/version").exists() or Path("/dev/nvidiactl").exists()


def runtime_for(model_path: str | os.PathLike | None = None, runtime: str = "auto", device: str = "auto", precision: str = "auto") -> str:
    """The runtime a Segmenter for this model file (default: the shipped one) would use here."""
    path = Path(model_path) if model_path else default_model_path()
    return choose_runtime(runtime, device, precision, graph_path_for(path))


def choose_runtime(asked: str, device: str, precision: str, graph_path: Path) -> str:
    """auto: torch on a CUDA GPU or for reduced precision; ONNX Runtime on the CPU when it is
    installed and the model has its graph with a published checksum (a graph is code: one that
    nothing vouches for is not run); otherwise torch."""
    from .onnx_runtime import onnxruntime_installed

    asked = (asked or "auto").lower()
    if asked not in RUNTIMES:
        raise MREFibrosisError(f"unknown runtime '{asked}'; use auto, torch or onnx.")
    device = (device or "auto").lower()
    if precision == "int8":
        if asked == "torch" or device not in ("auto", "cpu"):
            raise DeviceError("--precision int8 runs on ONNX Runtime on the CPU; leave --runtime and --device at auto (or onnx, cpu).")
        asked = "onnx"
    if asked == "onnx":
        if device not in ("auto", "cpu"):
            raise DeviceError(f"--runtime onnx runs on the CPU only; use --runtime torch for --device {device}.")
        if precision not in ("auto", "fp32", "int8"):
            raise DeviceError(f"--runtime onnx computes in fp32 or int8; use --runtime torch for --precision {precision}.")
        if not graph_path.exists():
            raise ModelFileError(f"no ONNX graph {graph_path.name} beside the model; make it with 'mrefibrosis export-onnx MODEL' or use --runtime torch.")
        if published_checksum(graph_path) is None:
            raise ModelFileError(f"{graph_path.name} has no published checksum in a SHA256SUMS beside it; run 'mrefibrosis export-onnx MODEL' (it writes one).")
        return "onnx"
    onnx_ready = onnxruntime_installed() and graph_path.exists() and published_checksum(graph_path) is not None
    if asked == "torch" or device.startswith("cuda") or precision in ("bf16", "fp16") or not onnx_ready:
        return "torch"
    if device == "auto" and cuda_may_be_present():
        from .torch_runtime import resolve_device

        try:
            return "torch" if resolve_device("auto") != "cpu" else "onnx"
        except MREFibrosisError:  # torch there but unusable: the CPU runtime still serves
            return "onnx"
    return "onnx"


def cpu_has_int8_dot_products() -> bool:
    """Whether this CPU multiplies int8 vectors natively (x86 VNNI or AMX, Arm dot-product): where an
    int8 graph is about three times faster than fp32. Elsewhere int8 runs emulated and gains little."""
    from .cpu_facts import cpu_facts

    return cpu_facts().int8_dot_products


def onnx_precision(asked: str, model_path: Path) -> str:
    """fp32 or int8 for an ONNX Runtime session of this model: int8 when asked, or by default where
    the model has a checksummed int8 graph and the CPU has int8 dot products (the shipped one passed
    the held-out gate in docs/model-report); MREFIBROSIS_INT8=0 keeps fp32."""
    graph = int8_graph_path_for(model_path)
    ready = graph.is_file() and published_checksum(graph) is not None
    if asked == "int8":
        if not ready:
            where = "is not listed in the SHA256SUMS beside it" if graph.is_file() else "is not beside the model"
            raise ModelFileError(f"--precision int8: the int8 graph {graph.name} {where}; make it with 'mrefibrosis quantize-onnx MODEL --calibration COHORT'.")
        return "int8"
    if asked == "auto" and ready and os.environ.get("MREFIBROSIS_INT8", "1") != "0" and cpu_has_int8_dot_products():
        return "int8"
    return "fp32"


LIVER_THRESHOLD = 0.5


@dataclass
class Segmentation:
    roi: np.ndarray  # (slices, rows, columns) bool, after post-processing
    probability: np.ndarray  # (slices, rows, columns) float32
    tta_agreement: float | None  # Dice between the plain and the shifted pass's ROI (`tta_pass`)
    device: str
    precision: str
    seconds: float
    liver: np.ndarray | None = None  # (slices, rows, columns) bool: the predicted liver (liver-aware models)
    # the driver's contact patch (`measure.driver.driver_contact`) found for the ROI margins; None when
    # not looked for. It depends on the exam only, so the measurement's driver check reuses it.
    driver_contact: np.ndarray | None = None


def drop_small_pieces(mask: np.ndarray, pixel_area_mm2: float, min_cm2: float) -> np.ndarray:
    from scipy import ndimage

    out = np.zeros_like(mask, dtype=bool)
    min_px = min_cm2 * 100.0 / pixel_area_mm2
    for k in range(mask.shape[0]):
        lab, n = ndimage.label(mask[k])
        if n:
            sizes = ndimage.sum(mask[k], lab, index=np.arange(1, n + 1))
            out[k] = np.isin(lab, 1 + np.flatnonzero(sizes >= min_px))
    return out


# The test-time pass moves the image this many pixels (at the model's input size) down and right:
# within the shifts the training recipe shows the network (6 % of the image). A left-right mirror
# is not: the recipe never flips (the liver stays on the patient's right), and a mirrored pass
# halved the Dice with the reader (0.474 against 0.895 on the validation cohort).
TTA_SHIFT_PX = 8


def tta_pass(network, x: np.ndarray, plain_logits: np.ndarray, cancelled=None, shift: int = TTA_SHIFT_PX) -> np.ndarray:
    """Logits of the input moved by `shift` pixels, moved back onto the plain pass's grid; the strip
    the moved image lost is taken from the plain pass."""
    moved = np.zeros_like(x)
    moved[..., shift:, shift:] = x[..., :-shift, :-shift]
    logits = network.logits(moved, cancelled)
    out = np.array(plain_logits, copy=True)
    out[..., :-shift, :-shift] = logits[..., shift:, shift:]
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))).astype(np.float32)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2.0 * (a & b).sum() / s)


def allowed_region(exam: Exam) -> np.ndarray:
    """Where an automatic ROI may lie: valid stiffness, confident where the exam has confidence data,
    and not on a slice whose phase offsets disagree (a reader leaves a breath-hold mismatch out)."""
    from ..measure.breath_hold import misregistered_slices

    allowed = exam.valid & exam.confidence_valid if exam.confidence_valid is not None else exam.valid.copy()
    allowed[misregistered_slices(exam)] = False
    return allowed


def postprocess_mask(prob: np.ndarray, allowed: np.ndarray, pixel_area_mm2: float, threshold: float, min_piece_cm2: float) -> np.ndarray:
    return drop_small_pieces((prob >= threshold) & allowed, pixel_area_mm2, min_piece_cm2)


def liver_mask(prob_liver: np.ndarray, threshold: float = LIVER_THRESHOLD) -> np.ndarray:
    """The predicted liver per slice with its holes filled (vessels and low-confidence patches inside
    the liver are still liver; the ROI rules keep the ROI off them)."""
    from scipy import ndimage

    out = prob_liver >= threshold
    for k in range(out.shape[0]):
        out[k] = ndimage.binary_fill_holes(out[k])
    return out


def roi_from_maps(
    maps: np.ndarray,
    allowed: np.ndarray,
    pixel_area_mm2: float,
    threshold: float,
    min_piece_cm2: float,
    has_liver: bool,
    keep: Callable[[np.ndarray | None], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(ROI, liver) from the network's (slices, outputs, rows, columns) probabilities. Why the liver
    bounds the ROI: an ROI pixel outside the liver measures another organ, the error that made the
    first model read a real exam 11.6 % high. `keep` (predicted liver -> bool mask) narrows the
    region further, e.g. to the reader's margins (`roi_margins`)."""
    liver = liver_mask(maps[:, 1]) if has_liver else None
    region = allowed & liver if liver is not None else allowed
    if keep is not None:
        region = region & keep(liver)
    return postprocess_mask(maps[:, 0], region, pixel_area_mm2, threshold, min_piece_cm2), liver


class Segmenter:
    """Loads a model file once on one runtime; call it on exams (the `process_exam` segmenter protocol)."""

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        device: str = "auto",
        precision: str = "auto",
        tta: bool = False,
        expected_sha256: str | None = None,
        runtime: str = "auto",
        margins: RoiMargins = RoiMargins(),
    ):
        path = Path(model_path) if model_path else default_model_path()
        if not path.exists():
            hint = (
                "pass an existing --model FILE"
                if model_path
                else "the model's weights are not installed: run 'mrefibrosis fetch-model' (64 MB, once), or pass --model FILE, or --roi ROI_FILE to measure a drawn ROI"
            )
            raise ModelFileError(f"model file {path} not found; {hint}.")
        chosen = choose_runtime(runtime, device, precision, graph_path_for(path))
        model = load_model_file(path, expected_sha256)
        self.info, self.sha256, self.path = model.info, model.sha256, path
        if chosen == "onnx":
            from .onnx_runtime import OnnxNetwork

            graph = int8_graph_path_for(path) if onnx_precision(precision, path) == "int8" else graph_path_for(path)
            self.network = OnnxNetwork(model, graph)
        else:
            from .torch_runtime import TorchNetwork

            self.network = TorchNetwork(model, device, precision)
        del model
        self.runtime, self.device, self.precision = self.network.runtime, self.network.device, self.network.precision
        self.tta = tta
        self.margins = margins

    def with_margins(self, margins: RoiMargins) -> Segmenter:
        """The same loaded network with other reader's margins (post-processing only). Why: a front
        end that keeps segmenters loaded keys them by model and runtime, not by margins; one
        session per margin value the panel's spin boxes pass through cost hundreds of MiB each."""
        if margins == self.margins:
            return self
        other = copy.copy(self)
        other.margins = margins
        return other

    def probabilities(self, exams: list[Exam], cancelled=None) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        """Sigmoid maps (slices, outputs, rows, columns) on each exam's native grid; all slices of all
        exams in one batch; the second list holds the shifted pass (`tta_pass`) when TTA is on."""
        from .preprocess import canonical_input, to_exam_grid, to_model_input

        pre = self.info.preprocessing
        groups: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
        for n, exam in enumerate(exams):
            groups.setdefault(exam.stiffness_kpa.shape[1:], []).append((n, canonical_input(exam, pre)))
        probs: list = [None] * len(exams)
        second: list = [None] * len(exams)
        for shape, items in groups.items():
            xs = to_model_input(np.concatenate([a for _, a in items]), pre)
            logits = self.network.logits(xs, cancelled)
            p = _sigmoid(to_exam_grid(logits, shape, pre))
            pf = _sigmoid(to_exam_grid(tta_pass(self.network, xs, logits, cancelled), shape, pre)) if self.tta else None
            start = 0
            for n, a in items:
                probs[n] = p[start : start + len(a)]
                second[n] = None if pf is None else pf[start : start + len(a)]
                start += len(a)
        return probs, second

    def postprocess(self, exam: Exam, maps: np.ndarray, away: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(ROI, liver) of one pass; `away` (`away_from_driver`) is found once when an exam has several."""

        from .roi_margins import within_margins

        def keep(liver: np.ndarray | None) -> np.ndarray:
            return within_margins(exam, liver, self.margins, away)

        return roi_from_maps(maps, allowed_region(exam), exam.geometry.pixel_area_mm2, self.info.threshold, self.info.min_piece_cm2, self.info.has_liver, keep)

    def segment_many(self, exams: list[Exam], cancelled=None) -> list[Segmentation]:
        """`cancelled` (a callable) ends the run with SegmentationCancelled between slices; cancel()
        from another thread also ends the slice being computed (ONNX Runtime)."""
        from ..measure.driver import driver_contact
        from .roi_margins import away_from_driver

        t0 = time.perf_counter()
        probs, second = self.probabilities(exams, cancelled)
        out = []
        for exam, p, pf in zip(exams, probs, second):
            agreement = None
            contact = driver_contact(exam) if self.margins.driver_mm > 0 else None
            away = away_from_driver(exam, self.margins.driver_mm, contact)
            if pf is not None:
                agreement = dice(self.postprocess(exam, p, away)[0], self.postprocess(exam, pf, away)[0])
                p = 0.5 * (p + pf)
            roi, liver = self.postprocess(exam, p, away)
            out.append(Segmentation(roi, p[:, 0].astype(np.float32), agreement, self.device, self.precision, 0.0, liver, contact))
        dt = time.perf_counter() - t0
        for s in out:
            s.seconds = dt / max(1, len(out))
        return out

    def cancel(self) -> None:
        """From another thread: end the slice being computed (ONNX Runtime); pair it with the
        `cancelled` callable given to segment(), which stops the slices after it."""
        self.network.cancel()

    def segment(self, exam: Exam, cancelled=None) -> Segmentation:
        return self.segment_many([exam], cancelled)[0]

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
            runtime=self.runtime,
            tta=self.tta,
            channels=tuple(self.info.preprocessing.channels),
            outputs=tuple(self.info.outputs),
            margins=tuple(self.margins.to_json().items()),
        )

    def describe(self) -> dict:
        return self.identity().legacy_json()
