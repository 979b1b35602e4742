"""Seconds per training slice (forward + backward + SGD step) for planning a run on this machine.

    python benchmarks/bench_train_step.py --architecture unet_resnext50_32x4d --size 256 --precision bf16

Prints seconds/slice and the time one epoch over N slices would take.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from mrefibrosis.model.architectures import build_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--architecture", default="unet_resnext50_32x4d")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--epoch-slices", type=int, default=1100)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = build_model(a.architecture, 1, 64).to(a.device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.982, weight_decay=4.457e-6)
    x = torch.rand(a.micro_batch, 1, a.size, a.size, device=a.device).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(a.micro_batch, 1, a.size, a.size, device=a.device) > 0.8).float()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    times = []
    for i in range(a.steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        with torch.autocast(device_type="cuda" if a.device.startswith("cuda") else "cpu", dtype=dtype, enabled=dtype is not None):
            out = model(x)
        loss_fn(out.float(), y).backward()
        opt.step()
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:  # the first step warms up kernels and allocators
            times.append(time.perf_counter() - t0)
    per_slice = min(times) / a.micro_batch
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{a.architecture} {a.size}px {a.precision} micro-batch {a.micro_batch} on {a.device} ({torch.get_num_threads()} threads): "
        f"{per_slice:.3f} s/slice, epoch of {a.epoch_slices} slices {per_slice * a.epoch_slices / 60:.1f} min, peak RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    main()
