"""What an MREFibrosis ONNX graph file holds beside the network, read without the onnx package.

Shared by the exporter (`onnx_graph`, needs torch and onnx) and the runtime (`onnx_runtime`, needs
only onnxruntime): the metadata keys, the binding of a graph to its weights, the reading of the
graph's metadata from the protobuf bytes, and the recipes that compute each fp32 initializer from
the model file's arrays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GRAPH_SUFFIX = ".onnx"
GRAPH_FORMAT = "1"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 17
META_FORMAT = "mrefibrosis.graph_format"
META_WEIGHTS = "mrefibrosis.weights_sha256"
META_INFO = "mrefibrosis.model_info"
META_EXPORTER = "mrefibrosis.exporter"
META_INITIALIZERS = "mrefibrosis.initializers"  # name -> how to compute it from the model file's arrays
META_PRECISION = "mrefibrosis.precision"  # "int8": a quantized graph that holds its own (int8) weights
META_CALIBRATION = "mrefibrosis.calibration"  # what an int8 graph was calibrated on
INT8_SUFFIX = ".int8.onnx"


def external_location(weights_sha256: str) -> str:
    """The external-data file name the graph uses for the weights: bound to their checksum."""
    return f"mrefmodel-{weights_sha256}"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _fields(data: bytes):
    """(field number, wire type, value) of one protobuf message level."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos : pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos : pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def graph_metadata(graph: bytes) -> dict[str, str]:
    """ModelProto.metadata_props (field 14: key 1, value 2), read without the onnx package: the
    runtime needs the initializer recipes before ONNX Runtime can open the graph."""
    out = {}
    try:
        for number, wire, value in _fields(graph):
            if number == 14 and wire == 2:
                entry = {n: bytes(v).decode("utf-8") for n, w, v in _fields(value) if w == 2}
                out[entry.get(1, "")] = entry.get(2, "")
    except (ValueError, UnicodeDecodeError):
        return {}
    return out


def graph_path_for(model_path: Path) -> Path:
    return model_path.with_suffix(GRAPH_SUFFIX)


def int8_graph_path_for(model_path: Path) -> Path:
    """The model's quantized graph (`mrefibrosis quantize-onnx`): <stem>.int8.onnx beside it."""
    return model_path.with_name(model_path.stem + INT8_SUFFIX)


def quantized(weights: np.ndarray, scale, zero_point, axis: int = 0) -> np.ndarray:
    """int8 weights as ONNX Runtime's quantizer writes them: round(w / scale) + zero point, per
    channel along `axis`, clipped to int8 (round half to even, in fp32: bit-exact with its output)."""
    shape = [1] * weights.ndim
    shape[axis] = -1
    s = np.asarray(scale, dtype=np.float32).reshape(shape)
    z = np.asarray(zero_point, dtype=np.float32).reshape(shape) if np.ndim(zero_point) else np.float32(zero_point)
    # in place in one fp32 buffer (the same operations in the same order): a fresh 4-byte array per
    # step made this a third of the int8 session's start on a 2-core CPU
    q = np.divide(weights, s, dtype=np.float32)
    np.rint(q, out=q)
    q += z
    np.clip(q, -128, 127, out=q)
    return q.astype(np.int8)


def initializer_value(arrays: dict[str, np.ndarray], recipe: dict) -> np.ndarray:
    """A graph initializer from the model file's arrays: a copy, a conv with its batch norm folded in
    (W * g / sqrt(v + eps); (b - m) * g / sqrt(v + eps) + beta), in fp32; or such a weight quantized
    to int8 with the scales an int8 graph records (`quantized`), so that an int8 graph, too, holds
    no copy of the weights."""
    if "quantize" in recipe:
        q = recipe["quantize"]
        return quantized(initializer_value(arrays, q["of"]), q["scale"], q["zero_point"], q["axis"])
    if "from" in recipe:
        return np.array(arrays[recipe["from"]], dtype=np.float32)
    f = recipe["fold"]
    bn = {k: np.asarray(arrays[f"{f['bn']}.{k}"], dtype=np.float32) for k in ("weight", "bias", "running_mean", "running_var")}
    scale = bn["weight"] / np.sqrt(bn["running_var"] + np.float32(f["eps"]))
    if f["part"] == "weight":
        w = arrays[f"{f['conv']}.weight"]
        return np.multiply(w, scale.reshape(-1, *([1] * (w.ndim - 1))), dtype=np.float32)  # straight from fp16: no fp32 copy first
    b = np.asarray(arrays[f"{f['conv']}.bias"], dtype=np.float32) if f["conv_bias"] else np.zeros_like(bn["running_mean"])
    return ((b - bn["running_mean"]) * scale + bn["bias"]).astype(np.float32)
