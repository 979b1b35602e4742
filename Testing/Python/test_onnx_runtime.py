"""The ONNX Runtime path: one weights file read by both runtimes, a graph verified at load, the
torch fp32 masks on held-out exams, and commands that never import torch."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mrefibrosis.model import tensor_store
from mrefibrosis.model.inference import DEFAULT_MODEL, Segmenter, choose_runtime
from mrefibrosis.model.model_file import MAGIC, PREFIX_LEN, ModelFileError, ModelInfo, Preprocessing, load_model_file, write_model_arrays
from mrefibrosis.model.onnx_format import graph_metadata, graph_path_for
from mrefibrosis.model.runtime_errors import DeviceError, SegmentationCancelled

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_GRAPH = graph_path_for(DEFAULT_MODEL)
TORCH_STACK = {"torch", "torchvision", "segmentation_models_pytorch", "timm", "optuna", "ray", "highdicom", "onnx"}


def _info(**kw) -> ModelInfo:
    return ModelInfo(architecture="unet_classic", preprocessing=Preprocessing(input_size=64, **kw), base_channels=4, model_version="t")


# ------------------------------------------------------------------ the model file, format 2
def test_format2_arrays_round_trip_without_torch(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "conv.weight": rng.standard_normal((3, 2, 3, 3)).astype(np.float16),
        "conv.bias": rng.standard_normal(3).astype(np.float32),
        "bn.num_batches_tracked": np.array(7, np.int64),
        "odd": rng.standard_normal(13).astype(np.float16),  # 26 bytes: the next array must still be aligned
        "last": rng.standard_normal((5, 7)).astype(np.float32),
    }
    path = tmp_path / "m.mrefmodel"
    digest = write_model_arrays(path, arrays, _info().to_dict())
    raw = path.read_bytes()
    assert raw.startswith(MAGIC) and hashlib.sha256(raw[PREFIX_LEN:]).hexdigest() == digest
    mf = load_model_file(path)
    assert mf.version == 2 and mf.sha256 == digest and mf.info.preprocessing.input_size == 64
    for name, a in arrays.items():
        assert mf.arrays[name].dtype == a.dtype and np.array_equal(mf.arrays[name], a), name
    assert all(e.offset % tensor_store.ALIGN == 0 for e in tensor_store.decode(raw, PREFIX_LEN)[1])


def test_format2_damage_is_refused(tmp_path):
    arrays = {"w": np.arange(64, dtype=np.float16)}
    path = tmp_path / "m.mrefmodel"
    write_model_arrays(path, arrays, _info().to_dict())
    raw = bytearray(path.read_bytes())
    flipped = tmp_path / "flipped.mrefmodel"
    raw[-3] ^= 0x10
    flipped.write_bytes(raw)
    with pytest.raises(ModelFileError, match="SHA-256 mismatch"):
        load_model_file(flipped)
    cut = tmp_path / "cut.mrefmodel"
    cut.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(ModelFileError):
        load_model_file(cut)
    # a table pointing past the end, with a checksum that matches it: refused by the bounds check
    payload = tensor_store.encode(arrays, _info().to_dict(), PREFIX_LEN).replace(b'"nbytes":128', b'"nbytes":999')
    forged = tmp_path / "forged.mrefmodel"
    forged.write_bytes(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    with pytest.raises(ModelFileError, match="unreadable model payload"):
        load_model_file(forged)
    # negative offsets (into the table), overlapping arrays, repeated names, wrapping shapes
    two = {"a": np.arange(32, dtype=np.float16), "b": np.arange(32, dtype=np.float16)}
    good = tensor_store.encode(two, _info().to_dict(), PREFIX_LEN)
    for old, new in (
        (b'"offset":64', b'"offset":-64'),
        (b'"offset":64', b'"offset":0'),
        (b'"name":"b"', b'"name":"a"'),
        (b'"shape":[32],"offset":0,"nbytes":64', b'"shape":[8589934592,2147483648],"offset":0,"nbytes":0'),
    ):
        payload = good.replace(old, new, 1)
        assert payload != good
        bad = tmp_path / "bad.mrefmodel"
        bad.write_bytes(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
        with pytest.raises(ModelFileError, match="unreadable model payload"):
            load_model_file(bad)


def test_resize_matches_torch_interpolate():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    from mrefibrosis.model.preprocess import resize_bilinear

    rng = np.random.default_rng(1)
    for shape, out in [((2, 2, 96, 128), (256, 256)), ((1, 1, 300, 260), (128, 96)), ((3, 2, 256, 256), (256, 256)), ((1, 1, 7, 5), (13, 3))]:
        x = rng.random(shape, dtype=np.float32)
        want = F.interpolate(torch.from_numpy(x), size=out, mode="bilinear", align_corners=False).numpy()
        assert np.abs(resize_bilinear(x, out) - want).max() < 1e-5, (shape, out)


# ------------------------------------------------------------------ export and verification of graphs
@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    """A small two-input, two-output U-Net in format 2 with its exported graph (needs torch and onnx)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from mrefibrosis.model.architectures import build_model
    from mrefibrosis.model.model_file import save_model
    from mrefibrosis.model.onnx_graph import export_onnx

    root = tmp_path_factory.mktemp("tiny_onnx")
    torch.manual_seed(3)
    net = build_model("unet_classic", 2, base_channels=4, classes=2).eval()
    with torch.no_grad():  # running statistics that are not the identity, so the folding matters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    info = ModelInfo(
        "unet_classic", Preprocessing(input_size=64, channels=("elastogram", "magnitude")), base_channels=4, outputs=("roi", "liver"), model_version="tiny"
    )
    model = root / "tiny.mrefmodel"
    save_model(model, net, info)
    report = export_onnx(model)
    return model, report


def test_export_keeps_one_copy_of_the_weights_and_matches_torch(tiny_pair):
    import onnx

    model, report = tiny_pair
    assert report.graph_path == graph_path_for(model) and report.max_abs_logit_difference < 1e-4
    graph = onnx.load(str(report.graph_path), load_external_data=False)
    for init in graph.graph.initializer:  # weights are declarations only: their bytes live in the model file
        assert init.data_location == onnx.TensorProto.EXTERNAL and not init.raw_data, init.name
    assert report.graph_bytes < model.stat().st_size
    sums = (model.parent / "SHA256SUMS").read_text()
    assert model.name in sums and report.graph_path.name in sums
    meta = graph_metadata(report.graph_path.read_bytes())  # the runtime's own protobuf reading agrees with onnx's
    assert meta == {p.key: p.value for p in graph.metadata_props}
    assert meta["mrefibrosis.weights_sha256"] == load_model_file(model).sha256


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_a_graph_that_does_not_belong_is_refused(tiny_pair, tmp_path):
    from mrefibrosis.model.onnx_runtime import OnnxNetwork

    model, report = tiny_pair
    work = tmp_path / "w"
    shutil.copytree(model.parent, work)
    mf = load_model_file(work / model.name)
    graph = work / report.graph_path.name
    good = graph.read_bytes()
    OnnxNetwork(mf, graph)  # the pair as exported loads
    # changed after export: its published checksum no longer matches
    graph.write_bytes(good.replace(b"slices", b"slicez"))
    with pytest.raises(ModelFileError) as e:
        OnnxNetwork(mf, graph)
    assert "published checksum" in _one_line(e)
    # not listed in a SHA256SUMS that lists the model
    graph.write_bytes(good)
    sums = work / "SHA256SUMS"
    sums.write_text("".join(ln + "\n" for ln in sums.read_text().splitlines() if graph.name not in ln))
    with pytest.raises(ModelFileError) as e:
        OnnxNetwork(mf, graph)
    assert "not listed" in _one_line(e)
    # no SHA256SUMS at all: a graph is code, and nothing vouches for this one
    sums.unlink()
    with pytest.raises(ModelFileError) as e:
        OnnxNetwork(mf, graph)
    assert "no SHA256SUMS" in _one_line(e)
    assert choose_runtime("auto", "cpu", "auto", graph) == "torch"
    # exported from other weights (the graph itself published): the binding to the payload checksum refuses it
    shutil.copy(model.parent / "SHA256SUMS", sums)
    other = work / "other.mrefmodel"
    write_model_arrays(other, {k: (v * 1.01).astype(v.dtype) if v.dtype.kind == "f" else v for k, v in mf.arrays.items()}, mf.info.to_dict())
    with pytest.raises(ModelFileError) as e:
        OnnxNetwork(load_model_file(other), graph)
    assert "other weights" in _one_line(e) and "export-onnx" in _one_line(e)


def test_runtime_choice(tiny_pair, tmp_path, monkeypatch):
    import mrefibrosis.model.inference as inference

    model, _ = tiny_pair
    graph = graph_path_for(model)
    monkeypatch.setattr(inference, "cuda_may_be_present", lambda: False)
    assert choose_runtime("auto", "auto", "auto", graph) == "onnx"
    assert choose_runtime("auto", "cpu", "fp32", graph) == "onnx"
    assert choose_runtime("auto", "cpu", "bf16", graph) == "torch"  # reduced precision is torch's
    assert choose_runtime("auto", "cuda", "auto", graph) == "torch"
    assert choose_runtime("auto", "auto", "auto", tmp_path / "none.onnx") == "torch"  # no graph: torch
    assert choose_runtime("torch", "auto", "auto", graph) == "torch"
    for device, precision, match in (("cuda", "auto", "CPU only"), ("cpu", "bf16", "fp32")):
        with pytest.raises(DeviceError, match=match):
            choose_runtime("onnx", device, precision, graph)
    with pytest.raises(ModelFileError, match="export-onnx"):
        choose_runtime("onnx", "cpu", "auto", tmp_path / "none.onnx")


@pytest.fixture()
def tiny_int8(tiny_pair, tmp_path, ge_exam, siemens_exam):
    """A copy of the tiny model and its fp32 graph with an int8 graph quantized beside it."""
    import shutil

    from mrefibrosis.model.onnx_int8 import quantize_int8

    model, report = tiny_pair
    for f in (model, report.graph_path, model.parent / "SHA256SUMS"):
        shutil.copy2(f, tmp_path / f.name)
    copy = tmp_path / model.name
    q = quantize_int8(copy, [ge_exam.path, siemens_exam.path], max_slices=8)
    return copy, q


def test_an_int8_graph_is_quantized_checksummed_and_runs_close_to_fp32(tiny_int8, ge_exam):
    from mrefibrosis.model.onnx_format import int8_graph_path_for
    from mrefibrosis.model.onnx_runtime import OnnxNetwork
    from mrefibrosis.reading.exam_loader import read_exam

    copy, q = tiny_int8
    assert q.graph_path == int8_graph_path_for(copy) and q.calibration_slices == 8 and q.calibration_exams == 2
    assert f"  {q.graph_path.name}" in (copy.parent / "SHA256SUMS").read_text()
    import onnx

    external = [t for t in onnx.load(str(q.graph_path), load_external_data=False).graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert external and all(t.data_type == onnx.TensorProto.INT8 for t in external)  # its int8 weights come from the model file
    mf = load_model_file(copy)
    int8 = OnnxNetwork(mf, q.graph_path)
    assert int8.precision == "int8"
    x = np.random.default_rng(0).random((2, 2, 64, 64), dtype=np.float32)
    a, b = OnnxNetwork(mf, graph_path_for(copy)).logits(x), int8.logits(x)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98  # a tiny random network: close, not equal
    seg = Segmenter(copy, precision="int8")
    assert (seg.runtime, seg.precision) == ("onnx", "int8")
    assert seg.identity().precision == "int8" and seg.segment(read_exam(ge_exam.path)).precision == "int8"


def test_int8_is_the_cpu_default_only_where_it_pays_and_can_be_turned_off(tiny_int8, monkeypatch):
    import mrefibrosis.model.inference as inference

    copy, _ = tiny_int8
    monkeypatch.setattr(inference, "cuda_may_be_present", lambda: False)
    monkeypatch.setattr(inference, "cpu_has_int8_dot_products", lambda: True)
    assert Segmenter(copy).precision == "int8"
    monkeypatch.setenv("MREFIBROSIS_INT8", "0")
    assert Segmenter(copy).precision == "fp32"
    monkeypatch.delenv("MREFIBROSIS_INT8")
    monkeypatch.setattr(inference, "cpu_has_int8_dot_products", lambda: False)  # emulated int8 gains little
    assert Segmenter(copy).precision == "fp32"
    assert Segmenter(copy, precision="fp32").precision == "fp32"


def test_int8_refusals_are_one_line(tiny_pair, tiny_int8, tmp_path):
    from mrefibrosis.model.onnx_format import int8_graph_path_for
    from mrefibrosis.model.onnx_runtime import OnnxNetwork

    model, _ = tiny_pair
    with pytest.raises(ModelFileError, match="quantize-onnx") as e:  # no int8 graph beside the model
        Segmenter(model, precision="int8")
    _one_line(e)
    with pytest.raises(DeviceError, match="int8 runs on ONNX Runtime"):
        choose_runtime("torch", "auto", "int8", graph_path_for(model))
    copy, q = tiny_int8
    sums = copy.parent / "SHA256SUMS"
    sums.write_text("".join(ln + "\n" for ln in sums.read_text().splitlines() if q.graph_path.name not in ln))
    with pytest.raises(ModelFileError, match="not listed in the SHA256SUMS"):
        Segmenter(copy, precision="int8")
    mf = load_model_file(copy)
    other = tmp_path / "other.mrefmodel"
    write_model_arrays(other, {k: (v * 1.01).astype(v.dtype) if v.dtype.kind == "f" else v for k, v in mf.arrays.items()}, mf.info.to_dict())
    with pytest.raises(ModelFileError, match="other weights"):  # an int8 graph is bound to its model's checksum
        OnnxNetwork(load_model_file(other), int8_graph_path_for(copy), graph=q.graph_path.read_bytes())


def test_a_large_cpu_workload_takes_the_runtime_measured_faster_here_once(tiny_pair, tmp_path, monkeypatch):
    """--runtime auto for many exams: measured on this machine (both runtimes, the same input), the
    answer cached; one exam or an explicit runtime never probes."""
    import mrefibrosis.model.runtime_probe as probe
    from mrefibrosis.model.segmenter_settings import Runtime, SegmenterSettings

    model, _ = tiny_pair
    monkeypatch.setenv("MREFIBROSIS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("mrefibrosis.model.inference.cuda_may_be_present", lambda: False)
    settings = SegmenterSettings(model=str(model), precision="fp32")

    def build(runtime, precision):
        return SegmenterSettings(model=str(model), device="cpu", runtime=Runtime(runtime), precision=precision).build()

    runtime, record = probe.fastest_cpu_runtime(build, "fp32")
    assert runtime in ("onnx", "torch") and record["onnx"]["seconds_per_slice"] > 0 and record["torch"]["seconds_per_slice"] > 0
    assert runtime == min(("onnx", "torch"), key=lambda r: record[r]["seconds_per_slice"])
    assert probe.cache_path().is_file()

    def no_second_measurement(*_args, **_kw):
        raise AssertionError("measured again although cached")

    monkeypatch.setattr(probe, "_seconds_per_slice", no_second_measurement)
    assert probe.fastest_cpu_runtime(build, "fp32")[0] == runtime
    assert settings.workload_runtime(probe.PROBE_MIN_SLICES) == runtime
    assert settings.workload_runtime(8) == "auto"  # two exams: ONNX Runtime's fast start wins
    assert SegmenterSettings(model=str(model), runtime=Runtime.ONNX).workload_runtime(10_000) == "onnx"
    assert settings.build(expected_slices=10_000).runtime == runtime


@pytest.mark.parametrize("given, threads", [("1", 1), ("3", 3), ("four", 0), (None, 0)])
def test_onnx_threads_follow_the_cpu_share_the_process_was_given(given, threads, monkeypatch):
    """Ray gives each batch worker OMP_NUM_THREADS = its CPUs, and torch follows it; ONNX Runtime
    took every core in every worker (a 100-exam batch on 2 cores: 51.0 s, 48.3 s with the share).
    0: ONNX Runtime's own default (all cores), also for a value that is not a count."""
    pytest.importorskip("onnxruntime")
    from mrefibrosis.model.onnx_runtime import OnnxNetwork

    if given is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", given)
    net = OnnxNetwork(load_model_file(DEFAULT_MODEL), SHIPPED_GRAPH)
    assert net.session.get_session_options().intra_op_num_threads == threads


def test_cancel_ends_a_running_onnx_segmentation(tiny_pair):
    from mrefibrosis.model.onnx_runtime import OnnxNetwork

    model, report = tiny_pair
    net = OnnxNetwork(load_model_file(model), report.graph_path)
    x = np.random.default_rng(0).random((400, 2, 64, 64), dtype=np.float32)
    t0 = time.perf_counter()
    net.logits(x[:40])
    per_slice = (time.perf_counter() - t0) / 40
    outcome = {}
    stop = threading.Event()

    def run():
        try:
            net.logits(x, stop.is_set)
            outcome["result"] = "finished"
        except SegmentationCancelled:
            outcome["result"] = "cancelled"

    th = threading.Thread(target=run)
    start = time.perf_counter()
    th.start()
    time.sleep(0.05)
    stop.set()
    net.cancel()
    th.join(30)
    assert outcome["result"] == "cancelled"
    assert time.perf_counter() - start < 0.5 * 400 * per_slice + 0.5  # stopped well before the end
    assert net.logits(x[:2]).shape == (2, 2, 64, 64)  # and the network still works afterwards


def test_format1_file_loads_and_converts(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import io

    from mrefibrosis.model.architectures import build_model
    from mrefibrosis.model.model_file import MAGIC_V1
    from mrefibrosis.model.onnx_graph import export_onnx

    torch.manual_seed(0)
    net = build_model("unet_classic", 1, base_channels=4).eval()
    buf = io.BytesIO()
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}
    torch.save({"metadata": _info().to_dict(), "state_dict": state}, buf)
    v1 = tmp_path / "old.mrefmodel"
    v1.write_bytes(MAGIC_V1 + hashlib.sha256(buf.getvalue()).hexdigest().encode() + b"\n" + buf.getvalue())
    old = load_model_file(v1)
    assert old.version == 1 and set(old.arrays) == set(state)
    report = export_onnx(v1, tmp_path / "converted")
    new = load_model_file(report.model_path)
    assert new.version == 2 and all(np.array_equal(new.arrays[k], old.arrays[k]) for k in old.arrays)
    assert v1.read_bytes().startswith(MAGIC_V1)  # the original is left as it was


# ------------------------------------------------------------------ the shipped model on both runtimes
@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    pytest.importorskip("torch")  # both tests compare with torch
    pytest.importorskip("onnxruntime")
    from mrefibrosis.synth.cohort import generate_cohort

    root = tmp_path_factory.mktemp("held_out_onnx")
    generate_cohort(root, 6, seed=9191, vendor="both", stage_mix=None, workers=1)  # a seed no model saw
    return sorted(root.glob("exam_*"))


def _dice(a, b) -> float:
    s = a.sum() + b.sum()
    return 1.0 if s == 0 else float(2 * (a & b).sum() / s)


def test_shipped_onnx_masks_equal_torch_fp32_on_held_out_exams(held_out):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from mrefibrosis.reading.exam_loader import read_exam

    onnx_seg = Segmenter(runtime="onnx", precision="fp32")  # the int8 graph is gated on the held-out cohort (model report)
    torch_seg = Segmenter(device="cpu", precision="fp32", runtime="torch")
    assert (onnx_seg.runtime, torch_seg.runtime) == ("onnx", "torch") and onnx_seg.sha256 == torch_seg.sha256
    scores = []
    for d in held_out:
        exam = read_exam(d / "dicom")
        a, b = onnx_seg.segment(exam), torch_seg.segment(exam)
        assert np.abs(a.probability - b.probability).max() < 1e-3, d.name
        scores.append((min(_dice(a.roi, b.roi), _dice(a.liver, b.liver)), d.name, int(a.roi.sum()), int(b.roi.sum())))
    worst = min(scores)
    print(f"worst ONNX-vs-torch-fp32 Dice (ROI or liver) over {len(scores)} held-out exams: {worst[0]:.5f} ({worst[1]}, {worst[2]} vs {worst[3]} ROI px)")
    assert worst[0] >= 0.999, scores


def test_both_runtimes_write_the_same_result_files(held_out, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from mrefibrosis.cli import main

    exam = next(d for d in held_out if json.loads((d / "truth.json").read_text())["status"] == "ok")
    outs = {}
    for runtime, extra in (("onnx", ["--precision", "fp32"]), ("torch", ["--precision", "fp32", "--device", "cpu"])):
        out = tmp_path / runtime
        assert main(["-q", "measure", str(exam / "dicom"), "--out", str(out), "--runtime", runtime, *extra]) == 0
        outs[runtime] = out
    assert sorted(p.name for p in outs["onnx"].iterdir()) == sorted(p.name for p in outs["torch"].iterdir())
    assert (outs["onnx"] / "measurements.csv").read_text() == (outs["torch"] / "measurements.csv").read_text()
    a, b = (json.loads((outs[r] / "result.json").read_text()) for r in ("onnx", "torch"))
    assert a["exam"]["segmentation"]["runtime"] == "onnx" and b["exam"]["segmentation"]["runtime"] == "torch"
    for r in (a, b):
        r["exam"].pop("segmentation")
        r.get("provenance", {}).pop("model", None)
    assert a == b


# ------------------------------------------------------------------ what each command imports
def _modules_after(args: list[str]) -> set[str]:
    code = (
        f"import sys, json\nfrom mrefibrosis.cli import main\nrc = main({args!r})\nprint(json.dumps([rc, sorted({{m.split('.')[0] for m in sys.modules}})]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    rc, mods = json.loads(proc.stdout.strip().splitlines()[-1])
    assert rc == 0, proc.stderr
    return set(mods)


def test_commands_import_no_torch_stack(ge_exam, tmp_path):
    """inspect, presets and measure --roi never need torch; measure and segment on the CPU use ONNX Runtime."""
    exam = str(ge_exam.path)
    roi = tmp_path / "roi.seg.nrrd"
    from mrefibrosis.cli import main

    assert main(["-q", "segment", exam, "--out", str(tmp_path / "seg")]) == 0
    shutil.copy(tmp_path / "seg" / "roi.seg.nrrd", roi)
    for args in (["inspect", exam], ["presets"], ["-q", "measure", exam, "--roi", str(roi), "--out", str(tmp_path / "m1")]):
        mods = _modules_after(args)
        assert not mods & TORCH_STACK, (args, sorted(mods & TORCH_STACK))
        assert "onnxruntime" not in mods, args
    if shutil.which("nvidia-smi") is None:  # on a CUDA machine auto rightly picks torch
        for args in (["-q", "measure", exam, "--out", str(tmp_path / "m2")], ["-q", "segment", exam, "--out", str(tmp_path / "s2")]):
            mods = _modules_after(args)
            assert "onnxruntime" in mods and not mods & TORCH_STACK, (args, sorted(mods & TORCH_STACK))
