"""End-to-end speed and memory of the segmenter: read + segment + measure a 4-slice exam.

Prints the model's FLOPs, achieved GFLOP/s, and a matrix-multiply GFLOP/s measured in the same run.
Uses a randomly initialised UNet-ResNeXt50-32x4d (speed does not depend on the weights) unless
--model is given. On a CUDA machine it also measures exams per second with slices of many exams
batched together. Targets (issue 4): 512 x 512 median <= 2.0 s, 256 x 256 <= 0.6 s, peak RSS <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from mrefibrosis.measure.roi_stats import measure_roi
from mrefibrosis.model.architectures import UNET_RESNEXT50, build_model
from mrefibrosis.model.inference import Segmenter
from mrefibrosis.model.model_file import ModelInfo, Preprocessing, save_model
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.synth.export import GE_SETTINGS, write_exam
from mrefibrosis.synth.simulate import simulate_exam


def matmul_gflops(device: str, dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def model_gflops(model, size: int, batch: int, device: str) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(batch, 1, size, size, device=device)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model(x)
    return fc.get_total_flops() / 1e9


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--model", help="model file to time instead of a random UNet-ResNeXt50")
    ap.add_argument("--gpu-exams", type=int, default=32, help="exams batched together on a GPU")
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        exam_dir = tmp / "exam"
        write_exam(exam_dir, simulate_exam(11, GE_SETTINGS, n_slices=4, failure=None), "ge", "bench")
        dev = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
        print(
            f"device: {dev} ({torch.cuda.get_device_name(0) if dev.startswith('cuda') else 'CPU'}), torch {torch.__version__}, threads {torch.get_num_threads()}"
        )
        mm32 = matmul_gflops(dev, torch.float32)
        mm16 = matmul_gflops(dev, torch.bfloat16)
        print(f"matmul 2048^3: fp32 {mm32:.1f} GFLOP/s, bf16 {mm16:.1f} GFLOP/s")
        print(f"{'size':>5} {'prec':>5} {'read s':>7} {'segment s':>9} {'measure s':>9} {'total s':>8} {'GFLOP':>7} {'GFLOP/s':>8} {'of matmul':>9}")
        for size in [int(s) for s in args.sizes.split(",")]:
            if args.model:
                path = Path(args.model)
            else:
                path = tmp / f"random{size}.mrefmodel"
                info = ModelInfo(UNET_RESNEXT50, Preprocessing(input_size=size), validated_precisions=("fp32", "bf16", "fp16"))
                save_model(path, build_model(UNET_RESNEXT50).eval(), info)
            for prec in args.precisions.split(","):
                seg = Segmenter(path, device=dev, precision=prec)
                flops = model_gflops(seg.model, seg.info.preprocessing.input_size, 4, dev)
                times = {"read": [], "segment": [], "measure": [], "total": []}
                for r in range(args.repeats + 1):
                    t0 = time.perf_counter()
                    exam = read_exam(exam_dir / "dicom")
                    t1 = time.perf_counter()
                    roi = seg(exam)
                    if dev.startswith("cuda"):
                        torch.cuda.synchronize()
                    t2 = time.perf_counter()
                    measure_roi(exam, roi)
                    t3 = time.perf_counter()
                    if r == 0:
                        continue  # warm-up
                    for k, v in zip(times, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                        times[k].append(v)
                med = {k: statistics.median(v) for k, v in times.items()}
                rate = flops / med["segment"]
                ref = mm16 if prec in ("bf16", "fp16") else mm32
                print(
                    f"{seg.info.preprocessing.input_size:>5} {prec:>5} {med['read']:7.3f} {med['segment']:9.3f} {med['measure']:9.3f} {med['total']:8.3f} {flops:7.1f} {rate:8.1f} {rate / ref:8.0%}"
                )
                if dev.startswith("cuda"):
                    exams = [exam] * args.gpu_exams
                    seg.segment_many(exams)
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                    seg.segment_many(exams)
                    torch.cuda.synchronize()
                    dt = time.perf_counter() - t
                    gf = flops * args.gpu_exams / dt
                    print(
                        f"      GPU batch of {args.gpu_exams} exams ({4 * args.gpu_exams} slices): {args.gpu_exams / dt:.1f} exams/s, {gf:.0f} GFLOP/s = {gf / ref:.0%} of matmul"
                    )
        print("peak RSS of one 'mrefibrosis measure' run (4-slice exam, model at the last size, fresh process):")
        for prec in args.precisions.split(","):
            cmd = [
                sys.executable,
                "-m",
                "mrefibrosis",
                "-q",
                "measure",
                str(exam_dir / "dicom"),
                "--out",
                str(tmp / f"out-{prec}"),
                "--model",
                str(path),
                "--precision",
                prec,
                "--device",
                dev,
            ]
            code = subprocess.call(["/usr/bin/time", "-f", "%M %e", "-o", str(tmp / "rss.txt"), *cmd])
            kb, wall = (tmp / "rss.txt").read_text().split()[-2:]
            print(
                f"  {prec}: {int(kb) / 1024 / 1024:.2f} GB peak RSS, {float(wall):.1f} s wall including Python and torch start-up (exit {code}; target <= 1.5 GB)"
            )


if __name__ == "__main__":
    main()
