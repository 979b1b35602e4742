"""Synthetic exam generation speed: one 4-slice exam (median of repeats) and a cohort on all cores.

Prints numbers; run with --cohort N to time N exams (the issue's target: 500 in under 15 minutes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from mrefibrosis.synth.cohort import generate_cohort
from mrefibrosis.synth.export import GE_SETTINGS, SIEMENS_SETTINGS, write_exam
from mrefibrosis.synth.simulate import simulate_exam


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cohort", type=int, default=20, help="exams in the cohort timing (0 to skip)")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}")
    for name, settings in (("GE 256x256", GE_SETTINGS), ("Siemens 204x256", SIEMENS_SETTINGS)):
        sim, total = [], []
        for r in range(args.repeats):
            t0 = time.perf_counter()
            exam = simulate_exam(1000 + r, settings, n_slices=4, failure=None)
            t1 = time.perf_counter()
            with tempfile.TemporaryDirectory() as d:
                write_exam(Path(d) / "exam", exam, "ge" if settings is GE_SETTINGS else "siemens", f"bench-{r}")
            t2 = time.perf_counter()
            sim.append(t1 - t0)
            total.append(t2 - t0)
        print(f"{name}: 4-slice exam simulate median {statistics.median(sim):.2f} s, with DICOM writing {statistics.median(total):.2f} s (target <= 2 s)")
    if args.cohort:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            generate_cohort(Path(d), args.cohort, seed=1, vendor="both", stage_mix=None)
            dt = time.perf_counter() - t0
        rate = args.cohort / dt
        print(f"cohort of {args.cohort} exams (4-8 slices, both vendors) on {os.cpu_count()} cores: {dt:.1f} s, {rate * 60:.1f} exams/min")
        print(f"projected 500 exams: {500 / rate / 60:.1f} min (target < 15 min)")


if __name__ == "__main__":
    main()
