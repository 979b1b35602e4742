"""The network on ONNX Runtime (CPU): no torch, a fast start, the torch path's masks.

The session's weights are computed here from the verified arrays of the model file (never read from
a path ONNX Runtime would open itself), following the graph's recipes (batch norms folded into their
convolutions, in fp32), and handed to ONNX Runtime in place: one copy of the fp32 weights, which keeps
the start fast and the peak memory low. The graph is refused unless its metadata names exactly those
weights, the model's preprocessing and outputs, and the input and output shapes they imply.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._packages import installed
from .model_file import ModelFile, ModelFileError, ModelInfo, published_checksum, publishes_checksums, read_verified
from .onnx_format import (
    GRAPH_FORMAT,
    INPUT_NAME,
    META_FORMAT,
    META_INFO,
    META_INITIALIZERS,
    META_PRECISION,
    META_WEIGHTS,
    OUTPUT_NAME,
    graph_metadata,
    initializer_value,
)
from .runtime_errors import ModelUnavailableError, SegmentationCancelled


def onnxruntime_installed() -> bool:
    return installed("onnxruntime")


def cpu_share() -> int | None:
    """The CPU threads this process was given, as compute libraries agree to be told: OMP_NUM_THREADS
    (Ray sets it to a worker's CPUs, and torch follows it; ONNX Runtime does not by itself, so each of
    a batch's workers ran as many threads as the machine has cores). None: the runtime's default."""
    try:
        n = int(os.environ.get("OMP_NUM_THREADS", "").strip())
    except ValueError:
        return None
    return n if n >= 1 else None


class OnnxNetwork:
    """(N, C, S, S) float32 network input -> (N, outputs, S, S) logits on the CPU: fp32 from the
    model file's weights, or int8 from a quantized graph that holds its own (`onnx_int8`)."""

    runtime = "onnx"
    precision = "fp32"
    device = "cpu"

    def __init__(self, model: ModelFile, graph_path: Path, threads: int | None = None, graph: bytes | None = None, max_batch: int = 1):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelUnavailableError("the ONNX runtime needs onnxruntime: pip install onnxruntime (or use --runtime torch).") from None
        if model.version != 2:
            raise ModelFileError(
                f"the model file uses format {model.version}; run 'mrefibrosis export-onnx MODEL' to write it in format 2 with its ONNX graph."
            )
        if graph is None:  # (the exporter passes the bytes it is about to write)
            if published_checksum(graph_path) is None:
                where = "is not listed in the SHA256SUMS beside it" if publishes_checksums(graph_path) else "has no SHA256SUMS beside it"
                raise ModelFileError(f"{graph_path.name} {where}; export it again with 'mrefibrosis export-onnx'.")
            graph, _ = read_verified(graph_path, None, what="ONNX graph", hint="export it with 'mrefibrosis export-onnx MODEL'")
        meta = graph_metadata(graph)
        _check_metadata(meta, model, graph_path.name)
        self.precision = meta.get(META_PRECISION, "fp32")
        if self.precision not in ("fp32", "int8"):
            raise ModelFileError(f"{graph_path.name}: unknown graph precision {self.precision!r}; export or quantize it again.")
        options = ort.SessionOptions()
        # EXTENDED, not ALL: ALL's NCHWc layout copies every weight (+300 MB, +0.2 s at start) for
        # 15 % faster convolutions; measured on 4 slices, the start-up and the peak matter more
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.log_severity_level = 3
        threads = threads or cpu_share()
        if threads:
            options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle ORT threads must not take the core reading the exam
        options.enable_cpu_mem_arena = False  # activations are freed after each call: a small peak
        self._weights = []
        if META_INITIALIZERS in meta:  # fp32 weights, or int8 ones quantized from them: computed from the model file
            try:
                recipes = json.loads(meta[META_INITIALIZERS])
                # ONNX Runtime uses these buffers in place: they must live as long as the session
                self._weights = [ort.OrtValue.ortvalue_from_numpy(initializer_value(model.arrays, r)) for r in recipes.values()]
            except (KeyError, TypeError, ValueError, AttributeError):
                raise ModelFileError(
                    f"{graph_path.name}: its weight recipes do not fit the model file; export it again with 'mrefibrosis export-onnx MODEL'."
                ) from None
            options.add_external_initializers(list(recipes), self._weights)
        try:
            self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(
                f"{graph_path.name} does not run with {model.info.model_version} ({reason}); export it again with 'mrefibrosis export-onnx MODEL'."
            ) from None
        _check_shapes(self.session, model, graph_path.name)
        self.graph_sha256 = hashlib.sha256(graph).hexdigest()

        self.max_batch = max(1, max_batch)
        self._ort = ort
        self._run_options = None

    def logits(self, x: np.ndarray, cancelled: Callable[[], bool] | None = None) -> np.ndarray:
        """One slice at a time by default: as fast on a CPU as a batch, with a quarter of the
        activation memory of four slices. `cancelled` is checked before each slice, and cancel()
        from another thread ends the slice being computed."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        parts = []
        for k in range(0, len(x), self.max_batch):
            self._run_options = self._ort.RunOptions()
            if cancelled is not None and cancelled():
                raise SegmentationCancelled("segmentation cancelled")
            try:
                parts.append(self.session.run([OUTPUT_NAME], {INPUT_NAME: x[k : k + self.max_batch]}, self._run_options)[0])
            except Exception:
                if self._run_options.terminate:
                    raise SegmentationCancelled("segmentation cancelled") from None
                raise
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def cancel(self) -> None:
        """Thread-safe: stop the slice being computed (the caller's `cancelled` stops the rest)."""
        if self._run_options is not None:
            self._run_options.terminate = True


def _check_metadata(meta: dict[str, str], model: ModelFile, name: str) -> None:
    if meta.get(META_FORMAT) != GRAPH_FORMAT:
        raise ModelFileError(f"{name} is not an MREFibrosis graph (format {meta.get(META_FORMAT)!r}); export it with 'mrefibrosis export-onnx MODEL'.")
    if meta.get(META_WEIGHTS) != model.sha256:
        raise ModelFileError(f"{name} was exported from other weights than {model.info.model_version}; export it again with 'mrefibrosis export-onnx MODEL'.")
    try:
        recorded = ModelInfo.from_dict(json.loads(meta.get(META_INFO, "")))
    except (ValueError, KeyError, TypeError):
        raise ModelFileError(f"{name}: unreadable model record; export it again with 'mrefibrosis export-onnx MODEL'.") from None
    if recorded.preprocessing != model.info.preprocessing or recorded.outputs != model.info.outputs or recorded.architecture != model.info.architecture:
        raise ModelFileError(f"{name} records another preprocessing, architecture or outputs than the model file; export it again.")


def _check_shapes(session, model: ModelFile, name: str) -> None:
    pre = model.info.preprocessing
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelFileError(f"{name}: {len(inputs)} inputs and {len(outputs)} outputs, not one of each; export it again.")
    (inp,), (out,) = inputs, outputs
    want_in, want_out = [len(pre.channels), pre.input_size, pre.input_size], [len(model.info.outputs), pre.input_size, pre.input_size]
    if inp.name != INPUT_NAME or list(inp.shape[1:]) != want_in or out.name != OUTPUT_NAME or list(out.shape[1:]) != want_out:
        raise ModelFileError(f"{name}: input {inp.shape} / output {out.shape} do not match the model's {want_in} / {want_out}; export it again.")
