"""Cold start and marginal cost of the segmenter on this machine, torch beside ONNX Runtime, in one run.

Prints, as medians of --runs runs of whole processes (wall time and the process's own peak RSS from
wait4): `mrefibrosis measure` of one 4-slice GE-style exam with the shipped model on each runtime,
`inspect`, `measure --roi`; the marginal time per exam when one process measures many; the Slicer
Lib's Segment click-to-ROI after the first click (real MRML, slicer-core); and the machine's matmul
roofline. On a CUDA machine it adds exams per second with many exams batched.

Also: `mrefibrosis segment` in a child process (the Slicer panel's default Segment path), the
marginal cost on ONNX Runtime fp32 and int8 and torch bf16, where one exam's time goes (imports,
reading, the network, post-processing and measuring), and the network's achieved GFLOP/s against the
machine's matmul peak.

Targets (issue 35, 2-core CPU): cold measure <= 1.2 s and <= 450 MB; segment in a child <= 1.3 s;
marginal <= 0.35 s per 4-slice exam; inspect <= 0.6 s. Run it on a quiet machine; with `--against
CHECKOUT` (e.g. `git worktree add /tmp/base <commit>`) every cold run alternates with the same run
of that checkout's engine, so that a before/after comparison does not ride on the machine's drift.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_process(argv: list[str], engine: str | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process, its own rusage (not the children's maximum).
    `engine`: a folder holding another checkout's `mrefibrosis` package, run instead of this one."""
    env = None if engine is None else {**os.environ, "PYTHONPATH": engine}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[2:5])} failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    return wall, usage.ru_maxrss / 1024.0


AGAINST: str | None = None  # --against: the engine folder of a baseline checkout


def cold(label: str, argv: list[str], runs: int, target_s: float | None = None, target_mb: float | None = None) -> None:
    run_process(argv)  # page cache warm, as on a workstation that ran the tool before
    if AGAINST is not None:  # this machine's speed drifts by 10 % over minutes: baseline and now alternate
        run_process(argv, AGAINST)
        pairs = [(run_process(argv, AGAINST), run_process(argv)) for _ in range(runs)]
        base = [b for b, _ in pairs]
        walls, peaks = zip(*(n for _, n in pairs))
        print(
            f"{'  baseline (' + Path(AGAINST).parent.name + ')':<44} {statistics.median(w for w, _ in base):6.2f} s "
            f"(min {min(w for w, _ in base):.2f})  peak {statistics.median(p for _, p in base):6.0f} MB"
        )
    else:
        walls, peaks = zip(*(run_process(argv) for _ in range(runs)))
    wall, peak = statistics.median(walls), statistics.median(peaks)
    goal = []
    if target_s is not None:
        goal.append(f"{'ok' if wall <= target_s else 'OVER'} <= {target_s} s")
    if target_mb is not None:
        goal.append(f"{'ok' if peak <= target_mb else 'OVER'} <= {target_mb:.0f} MB")
    print(f"{label:<44} {wall:6.2f} s (min {min(walls):.2f}, max {max(walls):.2f})  peak {peak:6.0f} MB   {'; '.join(goal)}")


def stages(exams: list[Path], precision: str) -> None:
    """Where one exam's time goes in a warm process (ONNX Runtime), medians over the exams, and the
    network's achieved GFLOP/s (its FLOPs counted by torch when torch is installed)."""
    from mrefibrosis.measure.driver import driver_contact
    from mrefibrosis.measure.roi_stats import measure_roi
    from mrefibrosis.model.inference import Segmenter
    from mrefibrosis.model.roi_margins import away_from_driver
    from mrefibrosis.reading.exam_loader import read_exam

    seg = Segmenter(device="cpu", precision=precision, runtime="onnx")
    seg.segment(read_exam(exams[0]))
    read_s, net_s, post_s, measure_s, slices = [], [], [], [], []
    for d in exams[1:]:
        t0 = time.perf_counter()
        exam = read_exam(d)
        t1 = time.perf_counter()
        probs, _ = seg.probabilities([exam])
        t2 = time.perf_counter()
        contact = driver_contact(exam)  # as `Segmenter.segment_many` does: found once, used twice
        roi, liver = seg.postprocess(exam, probs[0], away_from_driver(exam, seg.margins.driver_mm, contact))
        t3 = time.perf_counter()
        measure_roi(exam, roi, liver=liver, driver_contact=contact)
        t4 = time.perf_counter()
        read_s.append(t1 - t0)
        net_s.append(t2 - t1)
        post_s.append(t3 - t2)
        measure_s.append(t4 - t3)
        slices.append(exam.n_slices)
    med = statistics.median
    print(
        f"{'stages, ONNX ' + seg.precision + ' (median per exam)':<44} read {med(read_s):.3f} s, network {med(net_s):.3f} s "
        f"({med(net_s) / med(slices):.3f} s a slice), post-processing {med(post_s):.3f} s, measure {med(measure_s):.3f} s"
    )
    flops = _network_gflops_per_slice(seg)
    if flops:
        print(f"{'network achieved, ONNX ' + seg.precision:<44} {flops * med(slices) / med(net_s):6.1f} GFLOP/s ({flops:.1f} GFLOP a slice)")


def _network_gflops_per_slice(seg) -> float | None:
    try:
        import torch
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    from mrefibrosis.model.architectures import build_model

    info = seg.info
    net = build_model(info.architecture, len(info.preprocessing.channels), info.base_channels, len(info.outputs)).eval()
    x = torch.rand(1, len(info.preprocessing.channels), info.preprocessing.input_size, info.preprocessing.input_size)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        net(x)
    return fc.get_total_flops() / 1e9


def marginal(exams: list[Path], runtime: str, precision: str) -> tuple[float, float]:
    """Seconds per exam in one process after the first: (read + segment + measure, one exam at a
    time; segmentation alone, all exams in one batch)."""
    from mrefibrosis.model.inference import Segmenter
    from mrefibrosis.pipeline import process_exam
    from mrefibrosis.reading.exam_loader import read_exam

    seg = Segmenter(device="cpu", precision=precision, runtime=runtime)
    process_exam(read_exam(exams[0]), None, segmenter=seg)
    times = []
    for d in exams[1:]:
        t0 = time.perf_counter()
        process_exam(read_exam(d), None, segmenter=seg)
        times.append(time.perf_counter() - t0)
    loaded = [read_exam(d) for d in exams]
    t0 = time.perf_counter()
    seg.segment_many(loaded)
    return statistics.median(times), (time.perf_counter() - t0) / len(loaded)


def slicer_click(exam: Path, clicks: int) -> list[float] | None:
    """Seconds from Segment to the ROI segment in the scene, per click, with the Lib as the panel calls it."""
    try:
        import slicer
    except ImportError:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "MREFibrosis"))
    from mrefibrosis.model.segmenter_settings import SegmenterSettings
    from MREFibrosisLib import MREFibrosisLogic

    scene = slicer.vtkMRMLScene()
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, exam)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(clicks):
            t0 = time.perf_counter()
            job = logic.start_segment(nodes.stiffness, SegmenterSettings(device="cpu"), work_dir=Path(tmp) / f"job{n}")
            while not job.poll().finished:
                time.sleep(0.02)  # the panel's timer polls every 200 ms; 20 ms here measures the work
            logic.finish_segment(scene, job)
            out.append(time.perf_counter() - t0)
    return out


def roofline() -> None:
    import numpy as np

    n = 2048
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(5))
    print(f"{'matmul roofline numpy fp32 (2048^3)':<44} {2 * n**3 / best / 1e9:6.1f} GFLOP/s")
    try:
        import torch
    except ImportError:
        return
    for dtype in (torch.float32, torch.bfloat16):
        t = torch.rand(n, n, dtype=dtype)
        t @ t
        best = min(_timed(lambda t=t: t @ t) for _ in range(5))
        print(f"{'matmul roofline torch ' + str(dtype).split('.')[-1]:<44} {2 * n**3 / best / 1e9:6.1f} GFLOP/s")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def gpu_throughput(exams: list[Path]) -> None:
    try:
        import torch
    except ImportError:
        return
    if not torch.cuda.is_available():
        print("GPU: no CUDA device here; exams per second batched not measured")
        return
    from mrefibrosis.model.inference import Segmenter
    from mrefibrosis.reading.exam_loader import read_exam

    seg = Segmenter(device="cuda", runtime="torch")
    loaded = [read_exam(d) for d in exams]
    seg.segment_many(loaded)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(3):
        seg.segment_many(loaded)
    torch.cuda.synchronize()
    print(f"GPU {torch.cuda.get_device_name(0)}: {3 * len(loaded) / (time.perf_counter() - t0):.1f} exams/s batched ({len(loaded)} exams per batch)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--exams", type=int, default=6, help="exams for the marginal cost (default 6)")
    ap.add_argument("--work", default=None, help="folder for the simulated exams (default: a temporary folder)")
    ap.add_argument(
        "--against",
        default=None,
        metavar="CHECKOUT",
        help="another checkout of this repository (e.g. a git worktree of an older commit): each cold run alternates with the same run of its engine",
    )
    args = ap.parse_args()
    global AGAINST
    if args.against:
        AGAINST = str(Path(args.against).resolve() / "MREFibrosis")
        if not (Path(AGAINST) / "mrefibrosis" / "__init__.py").is_file():
            raise SystemExit(f"--against {args.against}: no MREFibrosis/mrefibrosis package there")
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(AGAINST) / "mrefibrosis")], check=True, stdout=subprocess.DEVNULL)
    # The cold runs come first, from this process while it holds only the standard library: Linux
    # reports a child's peak RSS as at least its parent's at fork, so a parent that had loaded numpy
    # or torch would inflate every child's figure. The exams are made in a child for the same reason.
    work = Path(args.work or tempfile.mkdtemp(prefix="mrefibrosis-bench-"))
    if not (work / "cohort" / "exam_00000").exists():
        subprocess.run(
            [sys.executable, "-m", "mrefibrosis", "-q", "synth", str(work / "cohort"), "--n", str(max(2, args.exams)), "--seed", "2026", "--vendor", "ge"],
            check=True,
        )
    # An installed copy has its bytecode compiled (pip does it for a wheel; a workstation's first run
    # writes it); an editable checkout under PYTHONDONTWRITEBYTECODE=1 would recompile every module
    # in every cold run (about 0.4 s here), which no user pays
    package = Path(__file__).resolve().parents[1] / "MREFibrosis" / "mrefibrosis"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True, stdout=subprocess.DEVNULL)
    exams = sorted(p / "dicom" for p in (work / "cohort").glob("exam_*"))
    exam, out = str(exams[0]), str(work / "out")
    roi = str(exams[0].parent / "roi.seg.nrrd")
    mre = [sys.executable, "-m", "mrefibrosis", "-q"]
    print(f"exam: 4-slice GE-style simulated exam; {os.cpu_count()} CPUs; medians of {args.runs} runs")
    cold("cold measure, ONNX Runtime (auto on CPU)", [*mre, "measure", exam, "--out", out, "--runtime", "onnx"], args.runs, 1.2, 450)
    cold("cold measure, ONNX Runtime fp32", [*mre, "measure", exam, "--out", out, "--runtime", "onnx", "--precision", "fp32"], args.runs)
    cold("cold segment (Slicer's child process)", [*mre, "segment", exam, "--out", str(work / "seg")], args.runs, 1.3)
    import importlib.util

    have_torch = importlib.util.find_spec("torch") is not None
    if have_torch:
        cold("cold measure, torch bf16", [*mre, "measure", exam, "--out", out, "--runtime", "torch", "--device", "cpu"], args.runs, 1.5, 500)
        cold("cold measure, torch fp32", [*mre, "measure", exam, "--out", out, "--runtime", "torch", "--precision", "fp32", "--device", "cpu"], args.runs)
    cold("cold inspect", [*mre, "inspect", exam], args.runs, 0.6)
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "siemens-brain-mre-raw" / "dicom"
    if real.is_dir():  # files nobody here made: a real scanner's headers hold many more elements
        cold("cold inspect, real Siemens series (48 files)", [*mre, "inspect", str(real)], args.runs)
    cold("cold measure --roi (no model)", [*mre, "measure", exam, "--roi", roi, "--out", out], args.runs)
    for runtime, precision in (("onnx", "fp32"), ("onnx", "int8"), ("torch", "bf16")) if have_torch else (("onnx", "fp32"), ("onnx", "int8")):
        try:
            whole, batched = marginal(exams, runtime, precision)
        except Exception as exc:  # e.g. no int8 graph beside the model
            print(f"marginal per exam, {runtime} {precision}: not measured ({exc})")
            continue
        label = f"marginal per exam, {runtime} {precision}"
        goal = "ok" if whole <= 0.35 else "OVER"
        print(f"{label:<44} {whole:6.2f} s read+segment+measure ({goal} <= 0.35 s); {batched:.2f} s segmentation batched")
    for precision in ("fp32", "int8"):
        try:
            stages(exams, precision)
        except Exception as exc:
            print(f"stages, ONNX {precision}: not measured ({exc})")
    clicks = slicer_click(exams[0], 3)
    if clicks is None:
        print("Slicer Lib Segment click: slicer-core not installed, not measured")
    else:
        later = statistics.median(clicks[1:])
        print(f"{'Slicer Lib Segment click to ROI, first':<44} {clicks[0]:6.2f} s")
        print(f"{'Slicer Lib Segment click to ROI, later':<44} {later:6.2f} s   {'ok' if later <= 2.0 else 'OVER'} <= 2 s")
    roofline()
    gpu_throughput(exams)


if __name__ == "__main__":
    main()
