"""Which CPU runtime is faster on this machine for a given amount of work, measured once and kept.

Why: on a CPU, ONNX Runtime (fp32 or int8) starts in a fraction of a second and torch takes seconds
to import, so one exam belongs on ONNX Runtime. A process that will segment many exams (batch, the
PACS services, `measure` over many studies) pays the start once; which runtime then computes a
slice faster depends on the CPU (int8 dot products, bf16 units, cores) and cannot be guessed. So it
is measured: a few slices of the model's input on each runtime, after a warm-up, and the answer is
cached per machine, model, runtime versions and batch size (~/.cache/mrefibrosis/runtime-probe.json,
or $MREFIBROSIS_CACHE), so that later processes read it instead of measuring again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

# A workload of this many slices or more is worth the probe (about 10 exams): below it, the start-up
# of torch alone costs more than any difference in speed could save.
PROBE_MIN_SLICES = 40
PROBE_BATCH = 4
SLICES_PER_EXAM = 4  # what a workload of exams counts before they are read (MRE exams hold 4-8 slices)
SERVICE_SLICES = 1_000_000  # a PACS service segments exams for as long as it runs
CACHE_NAME = "runtime-probe.json"


def cache_path() -> Path:
    root = os.environ.get("MREFIBROSIS_CACHE") or Path.home() / ".cache" / "mrefibrosis"
    return Path(root) / CACHE_NAME


def _cpu_name() -> str:
    from .cpu_facts import cpu_facts

    return cpu_facts().name


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in ("onnxruntime", "torch"):
        try:
            out.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            out.append(f"{package} -")
    return ", ".join(out)


def probe_key(model_sha256: str, precision: str) -> str:
    text = f"{_cpu_name()}|{os.cpu_count()}|{model_sha256}|{precision}|{_versions()}|batch {PROBE_BATCH}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _seconds_per_slice(network, x, repeats: int = 2) -> float:
    network.logits(x[:1])  # warm-up: allocations, kernel selection
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        network.logits(x)
        best = min(best, time.perf_counter() - t0)
    return best / len(x)


def fastest_cpu_runtime(build: Callable[[str, str], object], precision: str = "auto") -> tuple[str, dict]:
    """('onnx' or 'torch', the measurement) for a model on this CPU; measured once, then cached.
    `build(runtime, precision)` loads the model's segmenter on the CPU (`SegmenterSettings` passes
    its own, so that segmenters are made in one place)."""
    import numpy as np

    onnx = build("onnx", precision)
    key = probe_key(onnx.sha256, onnx.precision)
    path = cache_path()
    try:
        cached = json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        cached = None
    if cached and cached.get("runtime") in ("onnx", "torch"):
        return cached["runtime"], cached
    torch = build("torch", "auto" if precision in ("auto", "int8") else precision)
    pre = onnx.info.preprocessing
    x = np.random.default_rng(0).random((PROBE_BATCH, len(pre.channels), pre.input_size, pre.input_size), dtype=np.float32)
    record = {
        "onnx": {"precision": onnx.precision, "seconds_per_slice": round(_seconds_per_slice(onnx.network, x), 4)},
        "torch": {"precision": torch.precision, "seconds_per_slice": round(_seconds_per_slice(torch.network, x), 4)},
        "cpu": _cpu_name(),
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    record["runtime"] = "onnx" if record["onnx"]["seconds_per_slice"] <= record["torch"]["seconds_per_slice"] else "torch"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            table = json.loads(path.read_text())
        except (OSError, ValueError):
            table = {}
        table[key] = record
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: measured again next time, never fatal
    return record["runtime"], record
