"""Export a model file's network as an ONNX graph whose weights stay in the model file.

Why this shape: the repository may hold at most one copy of the weights, and the ONNX Runtime path
must give the torch path's masks. So the graph (a few hundred kB) carries no weights: every
initializer is an *external* tensor at its byte offset inside the model file (format 2), stored in
the model file's own dtype (fp16 for the shipped model) and cast to fp32 in the graph. The graph
names the weights by their payload SHA-256 (the external-data location and a metadata entry), and
the ONNX Runtime loader hands it exactly the bytes whose checksums it verified.

Export needs torch, segmentation-models-pytorch and the `onnx` package; running the graph needs only
onnxruntime.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MREFibrosisError
from .model_file import CHECKSUMS, ModelFile, load_model_file, write_model_arrays
from .onnx_format import (
    GRAPH_FORMAT,
    INPUT_NAME,
    META_EXPORTER,
    META_FORMAT,
    META_INFO,
    META_INITIALIZERS,
    META_WEIGHTS,
    OPSET,
    OUTPUT_NAME,
    external_location,
    graph_path_for,
    initializer_value,
)


@dataclass
class ExportReport:
    model_path: Path
    graph_path: Path
    graph_bytes: int
    external_tensors: int
    max_abs_logit_difference: float  # ONNX Runtime against torch fp32 on the check inputs


def export_onnx(model_path: str | os.PathLike, out_dir: str | os.PathLike | None = None, expected_sha256: str | None = None) -> ExportReport:
    """Write <stem>.onnx next to the model (or the model in format 2 and its graph into out_dir),
    update SHA256SUMS there, and check the graph against torch fp32 before returning."""
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise MREFibrosisError(
            f"exporting to ONNX needs torch, segmentation-models-pytorch and onnx ({exc.name} is missing): pip install 'mrefibrosis[export]'."
        ) from None
    src = Path(model_path)
    model = load_model_file(src, expected_sha256)
    out = Path(out_dir) if out_dir else src.parent
    out.mkdir(parents=True, exist_ok=True)
    target = out / src.name
    staged = None  # a converted model file waits under a temporary name until its graph passed
    try:
        if model.version != 2 or target.resolve() != src.resolve():
            staged = target.with_name(f".{target.name}.export")
            write_model_arrays(staged, {k: np.asarray(v) for k, v in model.arrays.items()}, model.info.to_dict())
            model = load_model_file(staged, hashlib.sha256(staged.read_bytes()).hexdigest())
        net = _torch_network(model)
        graph, n_external = _graph_over_model_file(net, model)
        graph_path = graph_path_for(target)
        diff = _compare_with_torch(net, model, graph, graph_path.name)
        if not diff < 1e-3:
            raise MREFibrosisError(f"the ONNX graph's logits differ from torch fp32 by {diff:.3g}; nothing was written.")
        tmp = graph_path.with_name(f".{graph_path.name}.partial")
        tmp.write_bytes(graph)
        if staged is not None:
            os.replace(staged, target)
            staged = None
        os.replace(tmp, graph_path)
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    publish_checksums(out, [target, graph_path])
    return ExportReport(target, graph_path, len(graph), n_external, diff)


def _torch_network(model: ModelFile):
    from .architectures import build_model

    info = model.info
    net = build_model(info.architecture, len(info.preprocessing.channels), info.base_channels, len(info.outputs))
    net.load_state_dict(model.torch_state())
    return net.float().eval()


def fold_batch_norms(net) -> dict[str, dict]:
    """Fold each BatchNorm2d into the Conv2d just before it (in module order; the export checks the
    outputs did not change) and return how each folded parameter is computed from the state dict."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    recipes: dict[str, dict] = {}
    for parent_name, parent in list(net.named_modules()):
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                prefix = f"{parent_name}." if parent_name else ""
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
                fold = {"conv": prefix + conv_name, "bn": prefix + bn_name, "eps": float(bn.eps), "conv_bias": conv.bias is not None}
                recipes[f"{prefix}{conv_name}.weight"] = {"fold": {**fold, "part": "weight"}}
                recipes[f"{prefix}{conv_name}.bias"] = {"fold": {**fold, "part": "bias"}}
    return recipes


def _export(torch, net, x, buf) -> None:
    torch.onnx.export(
        net,
        (x,),
        buf,
        dynamo=False,  # keeps the state-dict names on the initializers, which is how they find their arrays
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "slices"}, OUTPUT_NAME: {0: "slices"}},
        opset_version=OPSET,
        do_constant_folding=False,
        training=torch.onnx.TrainingMode.EVAL,
    )


def _graph_over_model_file(net, model: ModelFile) -> tuple[bytes, int]:
    import copy

    import onnx
    import torch
    from onnx import numpy_helper

    pre = model.info.preprocessing
    x = torch.zeros(2, len(pre.channels), pre.input_size, pre.input_size)
    fused = copy.deepcopy(net)
    recipes = fold_batch_norms(fused)
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated in favour of dynamo, which renames initializers
        warnings.simplefilter("ignore")
        _export(torch, fused, x, buf)
    graph = onnx.load_from_string(buf.getvalue())
    location = external_location(model.sha256)
    used: dict[str, dict] = {}
    for init in graph.graph.initializer:
        recipe = recipes.get(init.name) or ({"from": init.name} if init.name in model.arrays else None)
        if recipe is None:
            if init.ByteSize() > 1 << 16:
                raise MREFibrosisError(f"the exported graph holds a {init.ByteSize()} byte constant {init.name} that is not in the model file")
            continue
        value = numpy_helper.to_array(init)
        if value.dtype != np.float32 or not np.allclose(initializer_value(model.arrays, recipe), value, rtol=1e-5, atol=1e-6):
            raise MREFibrosisError(f"graph initializer {init.name} cannot be computed from the model file's arrays")
        used[init.name] = recipe
        init.ClearField("raw_data")
        init.ClearField("float_data")
        init.data_location = onnx.TensorProto.EXTERNAL
        for key, val in (("location", location), ("offset", "0"), ("length", str(value.nbytes))):
            init.external_data.add(key=key, value=val)
    out_dims = graph.graph.output[0].type.tensor_type.shape.dim  # the legacy exporter leaves them symbolic
    for dim, value in zip(out_dims, ["slices", len(model.info.outputs), pre.input_size, pre.input_size]):
        dim.Clear()
        if isinstance(value, str):
            dim.dim_param = value
        else:
            dim.dim_value = value
    import segmentation_models_pytorch

    meta = {
        META_FORMAT: GRAPH_FORMAT,
        META_WEIGHTS: model.sha256,
        META_INFO: json.dumps(model.info.to_dict(), sort_keys=True, default=str),
        META_INITIALIZERS: json.dumps(used, sort_keys=True),
        META_EXPORTER: f"torch {torch.__version__}, segmentation-models-pytorch {segmentation_models_pytorch.__version__}, onnx {onnx.__version__}, opset {OPSET}",
    }
    del graph.metadata_props[:]
    for k, v in meta.items():
        graph.metadata_props.add(key=k, value=v)
    return graph.SerializeToString(), len(used)


def publish_checksums(folder: Path, files: list[Path]) -> None:
    sums = folder / CHECKSUMS
    old = sums.read_text(encoding="ascii", errors="replace").splitlines() if sums.is_file() else []
    names = {f.name for f in files}
    lines = [ln for ln in old if len(ln.split()) == 2 and ln.split()[1].lstrip("*") not in names]
    lines += [f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {f.name}" for f in files]
    tmp = sums.with_name(f".{CHECKSUMS}.partial")
    tmp.write_text("\n".join(sorted(lines, key=lambda ln: ln.split()[-1])) + "\n", encoding="ascii")
    os.replace(tmp, sums)


def _compare_with_torch(net, model: ModelFile, graph: bytes, name: str) -> float:
    """Largest |logit| difference between ONNX Runtime and torch fp32 on random and blank inputs."""
    import torch

    from .onnx_runtime import OnnxNetwork

    pre = model.info.preprocessing
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.random((2, len(pre.channels), pre.input_size, pre.input_size), dtype=np.float32),
            np.zeros((1, len(pre.channels), pre.input_size, pre.input_size), np.float32),
        ]
    )
    with torch.inference_mode():
        want = net(torch.from_numpy(x)).numpy()
    got = OnnxNetwork(model, Path(name), graph=graph).logits(x)
    return float(np.abs(got - want).max())
