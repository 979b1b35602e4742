"""Batch scoring speed: exams per minute with `mrefibrosis batch` (Ray Data) vs the sequential engine,
and the per-exam overhead Ray adds. Uses a UNet-ResNeXt50-32x4d (random weights) at --size."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from mrefibrosis.batch.run import run_batch
from mrefibrosis.model.architectures import UNET_RESNEXT50, build_model
from mrefibrosis.model.inference import Segmenter
from mrefibrosis.model.model_file import ModelInfo, Preprocessing, save_model
from mrefibrosis.model.segmenter_settings import SegmenterSettings
from mrefibrosis.pipeline import process_many
from mrefibrosis.synth.cohort import generate_cohort


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--exams", type=int, default=12)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_cohort(tmp / "cohort", args.exams, seed=5, vendor="both", stage_mix=None)
        archive = tmp / "archive"
        archive.mkdir()
        for d in sorted((tmp / "cohort").glob("exam_*")):
            shutil.copytree(d / "dicom", archive / d.name)
        model = tmp / "m.mrefmodel"
        save_model(
            model, build_model(UNET_RESNEXT50).eval(), ModelInfo(UNET_RESNEXT50, Preprocessing(input_size=args.size), validated_precisions=("fp32", "bf16"))
        )
        folders = sorted(archive.iterdir())
        t = time.perf_counter()
        seg = Segmenter(model, device="cpu")
        load = time.perf_counter() - t
        t = time.perf_counter()
        for f in folders:
            list(process_many([f], tmp / "seq" / f.name, segmenter=seg))
        seq = time.perf_counter() - t
        print(f"{args.exams} exams (4-8 slices), UNet-ResNeXt50 at {args.size}, CPU bf16")
        print(f"sequential engine: {seq / args.exams:.2f} s/exam, {args.exams / seq * 60:.1f} exams/min (+{load:.1f} s model load)")
        for workers in (1, 2):
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            t = time.perf_counter()
            run_batch(archive, tmp / f"batch{workers}", workers=workers, settings=SegmenterSettings(model=str(model), device="cpu"))
            dt = time.perf_counter() - t
            ray.shutdown()
            print(
                f"batch, {workers} worker(s): {dt:.1f} s total, {args.exams / dt * 60:.1f} exams/min; "
                f"overhead vs sequential {(dt - seq) / args.exams:+.2f} s/exam (includes Ray start, model load per worker)"
            )


if __name__ == "__main__":
    main()
