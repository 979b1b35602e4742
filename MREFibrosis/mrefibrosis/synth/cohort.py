"""Generate a cohort of synthetic exams on all cores; the same seed gives the same files."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import MREFibrosisError
from ..results.staged_files import atomic_write_text
from .export import GE_SETTINGS, SIEMENS_SETTINGS, make_exam, vendor_arrays
from .preview import save_png, sheet
from .reader import reader_roi
from .simulate import FAILURES, STAGE_MEAN_KPA, simulate_exam

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def parse_stage_mix(text: str | None) -> dict[str, float] | None:
    """'F0=1,F1=1,F2=2,F3=1,F4=1' -> weights; stages missing from the text get weight 0."""
    if not text:
        return None
    mix = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        name = name.strip().upper()
        if name not in STAGE_MEAN_KPA:
            raise MREFibrosisError(f"--stage-mix: unknown stage '{name}'; use F0..F4, e.g. F0=1,F2=2,F4=1.")
        try:
            mix[name] = float(value)
        except ValueError:
            raise MREFibrosisError(f"--stage-mix: '{part}' needs a number, e.g. F2=2.") from None
    if sum(mix.values()) <= 0 or any(v < 0 for v in mix.values()):
        raise MREFibrosisError("--stage-mix weights must be non-negative and not all zero.")
    return mix


def parse_failure(text: str | None) -> str | None:
    """--failure: None (drawn at the cohort rates, the default), "none" or one failure mode."""
    if text is None:
        return "random"
    name = text.strip().lower()
    if name == "none":
        return None
    if name not in FAILURES:
        raise MREFibrosisError(f"--failure: unknown mode '{text}'; use none or one of {', '.join(FAILURES)}.")
    return name


def _one(args):
    return make_exam(*args)


def generate_cohort(
    out: Path, n: int, seed: int, vendor: str, stage_mix: dict | None, workers: int | None = None, log=None, failure: str | None = "random"
) -> list[dict]:
    """`failure`: "random" draws each exam's failure mode at the cohort rates; None or a mode forces it."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(i, seed, vendor, stage_mix, out, failure) for i in range(n)]
    workers = workers or os.cpu_count() or 1
    truths = []
    if workers == 1 or n == 1:
        for job in jobs:
            truths.append(_one(job))
            if log:
                log(len(truths), n)
    else:
        # One BLAS thread per process: SuperLU's dense kernels otherwise oversubscribe the cores
        # (4x slower on 2 cores). Spawned workers read these variables when they load numpy.
        saved = {k: os.environ.get(k) for k in _THREAD_VARS}
        os.environ.update({k: "1" for k in _THREAD_VARS})
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for t in pool.map(_one, jobs, chunksize=1):
                    truths.append(t)
                    if log:
                        log(len(truths), n)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    lines = ["exam,vendor,status,reader_kpa,liver_kpa_true,stage_seed,failure"]
    for i, t in enumerate(truths):
        reader = "" if t["reader_kpa"] is None else f"{t['reader_kpa']:.4f}"
        lines.append(f"exam_{i:05d},{t['vendor']},{t['status']},{reader},{t['liver_kpa_true']:.4f},{t['stages']['seed'] or ''},{t['failure'] or ''}")
    manifest = "\n".join(lines) + "\n"
    atomic_write_text(out / "cohort.csv", manifest)
    atomic_write_text(out / "cohort.json", json.dumps({"seed": seed, "n": n, "vendor": vendor, "stage_mix": stage_mix, "failure": failure}, indent=2) + "\n")
    return truths


def preview_png(path: Path, seed: int, vendor: str) -> None:
    v = "ge" if vendor in ("ge", "both") else "siemens"
    exam = simulate_exam(int(np.random.SeedSequence([seed, 0]).generate_state(1)[0]), GE_SETTINGS if v == "ge" else SIEMENS_SETTINGS)
    arrays = vendor_arrays(exam, v, np.random.default_rng(exam.seed + 7))
    roi = reader_roi(exam, valid=arrays["valid"])
    if v == "ge":
        third, rng3, name = exam.confidence, (0.5, 1.0), "confidence 0.5-1"
    else:
        third, rng3, name = arrays["masked_10pa"] / 100.0, (0, 8), "conf-masked 0-8 kPa"
    img, titles = sheet(exam.magnitude.mean(axis=1), arrays["stored_kpa"], third, rng3, roi, ["magnitude", "elastogram 0-8 kPa", name, "reader ROI"])
    save_png(path, img, titles)
