"""An int8 graph of a model: static quantization with ONNX Runtime's own tools, calibrated on exams
the model was trained on (never a held-out cohort).

Why: on a 2-core CPU the fp32 network is bound near 0.16 s a 256-px slice (64 % of the machine's
fp32 peak); int8 convolutions with VNNI run the same slice in about a third of that. The recipe is
ONNX Runtime's documented one: QDQ format, per-channel int8 weights, uint8 activations, MinMax
calibration over whole preprocessed slices. Like the fp32 graph it holds no weights: each int8
weight is recomputed at load from the model file's arrays and the per-channel scales the graph
records (bit-exact with the quantizer's output, checked here before anything is written), so the
repository carries the weights once. It is bound to the model by the model's checksum in its metadata
and by a SHA256SUMS line beside it; whether it is good enough is decided on a held-out cohort
(docs/model-card), not here.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MREFibrosisError
from .model_file import ModelFile, load_model_file
from .onnx_format import (
    META_CALIBRATION,
    META_INITIALIZERS,
    META_PRECISION,
    external_location,
    graph_metadata,
    graph_path_for,
    initializer_value,
    int8_graph_path_for,
)


@dataclass
class QuantizeReport:
    graph_path: Path
    graph_bytes: int
    calibration_slices: int
    calibration_exams: int
    agreement_roi: float  # Dice of int8 and fp32 ROI masks (at the model's threshold) on the calibration slices
    agreement_liver: float


def calibration_inputs(model: ModelFile, exam_folders: Iterable[Path], max_slices: int) -> tuple[np.ndarray, int]:
    """The network inputs of the exams' slices (the model's own preprocessing), up to `max_slices`,
    taken evenly over the exams so that both vendor styles and every stage are represented."""
    from ..errors import MREFibrosisError as ReadError
    from ..reading.exam_loader import read_exam
    from .preprocess import canonical_input, to_model_input

    pre = model.info.preprocessing
    per_exam, used = [], 0
    for folder in exam_folders:
        try:
            exam = read_exam(folder)
        except ReadError:
            continue
        per_exam.append(to_model_input(canonical_input(exam, pre), pre).astype(np.float32))
        used += 1
        if sum(len(x) for x in per_exam) >= 2 * max_slices:
            break
    if not per_exam:
        raise MREFibrosisError("no readable exam among the calibration folders; give exam folders of the training cohorts.")
    slices = np.concatenate(per_exam)
    pick = np.linspace(0, len(slices) - 1, min(max_slices, len(slices))).round().astype(int)
    return slices[np.unique(pick)], used


def _fp32_graph_with_weights(model: ModelFile, graph: bytes):
    """The shipped fp32 graph with its initializers computed from the model file and embedded (the
    quantizer reads weights from the graph)."""
    import onnx
    from onnx import numpy_helper

    recipes = json.loads(graph_metadata(graph)[META_INITIALIZERS])
    proto = onnx.load_from_string(graph)
    keep = [t for t in proto.graph.initializer if t.name not in recipes]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(keep)
    proto.graph.initializer.extend(numpy_helper.from_array(initializer_value(model.arrays, r), name) for name, r in recipes.items())
    return proto


def quantize_int8(
    model_path: str | os.PathLike, calibration_folders: Iterable[str | os.PathLike], max_slices: int = 120, described_as: str = ""
) -> QuantizeReport:
    """Write <stem>.int8.onnx beside the model and list it in SHA256SUMS there; the model's fp32 graph
    (`export-onnx`) must be there already."""
    try:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise MREFibrosisError(f"quantizing needs onnx and onnxruntime ({exc.name} is missing): pip install 'mrefibrosis[export,onnx]'.") from None
    from .model_file import read_verified
    from .onnx_graph import publish_checksums
    from .onnx_runtime import OnnxNetwork

    path = Path(model_path)
    model = load_model_file(path)
    fp32_path = graph_path_for(path)
    if not fp32_path.is_file():
        raise MREFibrosisError(f"no fp32 graph {fp32_path.name} beside the model; run 'mrefibrosis export-onnx {path.name}' first.")
    graph, _ = read_verified(fp32_path, None, what="ONNX graph", hint="export it with 'mrefibrosis export-onnx MODEL'")
    inputs, n_exams = calibration_inputs(model, [Path(f) for f in calibration_folders], max_slices)

    class _Reader(CalibrationDataReader):
        def __init__(self):
            self.k = 0

        def get_next(self):
            if self.k >= len(inputs):
                return None
            self.k += 1
            return {"input": inputs[self.k - 1 : self.k]}

    target = int8_graph_path_for(path)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".quantize-") as tmp:
        full, prepared, quantized = Path(tmp) / "fp32.onnx", Path(tmp) / "fp32-prepared.onnx", Path(tmp) / "int8.onnx"
        onnx.save(_fp32_graph_with_weights(model, graph), full)
        quant_pre_process(str(full), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(quantized),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        proto = onnx.load(str(quantized))
        recipes = _weights_from_model_file(proto, model, json.loads(graph_metadata(graph)[META_INITIALIZERS]))
        meta = {p.key: p.value for p in onnx.load_from_string(graph).metadata_props if p.key != META_INITIALIZERS}
        meta[META_INITIALIZERS] = json.dumps(recipes, sort_keys=True)
        meta[META_PRECISION] = "int8"
        meta[META_CALIBRATION] = json.dumps(
            {"slices": int(len(inputs)), "exams": n_exams, "described_as": described_as, "method": "QDQ, per-channel int8 weights, uint8 activations, MinMax"}
        )
        del proto.metadata_props[:]
        for key, value in sorted(meta.items()):
            proto.metadata_props.add(key=key, value=value)
        data = proto.SerializeToString()
        fp32 = OnnxNetwork(model, fp32_path).logits(inputs)
        int8 = OnnxNetwork(model, target, graph=data).logits(inputs)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_bytes(data)
        os.replace(partial, target)
    publish_checksums(path.parent, [target])
    threshold = float(np.log(model.info.threshold / (1.0 - model.info.threshold)))
    return QuantizeReport(
        target, len(data), int(len(inputs)), n_exams, _dice(fp32[:, 0] > threshold, int8[:, 0] > threshold), _dice(fp32[:, -1] > 0, int8[:, -1] > 0)
    )


def _weights_from_model_file(proto, model: ModelFile, fp32_recipes: dict) -> dict:
    """Replace each int8 weight of the quantized graph that the model file's arrays reproduce
    exactly by a reference bound to the model's checksum (as the fp32 graph's are), and return the
    recipes that recompute them; a weight that does not reproduce stays in the graph."""
    import onnx
    from onnx import numpy_helper

    tensors = {t.name: t for t in proto.graph.initializer}
    # the channel axis of each weight's scales: its DequantizeLinear's `axis` (ONNX default 1; the
    # quantizer writes 0 for convolutions and 1 for transposed convolutions)
    axes = {}
    for node in proto.graph.node:
        if node.op_type == "DequantizeLinear":
            axes[node.input[0]] = next((a.i for a in node.attribute if a.name == "axis"), 1)
    location = external_location(model.sha256)
    recipes: dict[str, dict] = {}
    for name, tensor in tensors.items():
        source = name.removesuffix("_quantized")
        if source == name or tensor.data_type != onnx.TensorProto.INT8 or source not in fp32_recipes:
            continue
        scale = numpy_helper.to_array(tensors[f"{source}_scale"]).astype(np.float32)
        zero = numpy_helper.to_array(tensors[f"{source}_zero_point"]).astype(np.int64)
        axis = axes.get(name, 1) if scale.ndim else 0
        recipe = {"quantize": {"of": fp32_recipes[source], "scale": scale.tolist(), "zero_point": zero.tolist(), "axis": int(axis)}}
        want = numpy_helper.to_array(tensor)
        if not np.array_equal(initializer_value(model.arrays, recipe), want):
            continue
        recipes[name] = recipe
        tensor.ClearField("raw_data")
        tensor.ClearField("int32_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, val in (("location", location), ("offset", "0"), ("length", str(want.nbytes))):
            tensor.external_data.add(key=key, value=val)
    return recipes


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    s = int(a.sum() + b.sum())
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)
