"""Realism of the simulator: simulate N GE-style exams, read them back with the engine as a scanner
export, and print the fourteen texture figures of docs (domain section 5) next to the real GE exam and
the bounds a realistic cohort must meet (median over exams).

    python benchmarks/bench_realism.py --n 5 --seed 31 [--stage-mix F0=1,F1=1] [--plot PNG] [--json FILE]

Exit status 0 whatever the result: it prints numbers; the verdict column says which figures are in.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import read_roi
from mrefibrosis.synth.cohort import generate_cohort, parse_stage_mix
from mrefibrosis.synth.realism import BOUNDS, REAL_GE, cohort_medians, figures_of_exam, within_bounds


def plot_against_bounds(path: Path, medians: dict, per_exam: list[dict]) -> None:
    """One row per figure: the bound as a band, the real exam as a line, the exams as dots and their
    median as a diamond, all relative to the real value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(REAL_GE)
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    for i, name in enumerate(names):
        lo, hi = BOUNDS[name]
        real = REAL_GE[name]
        ax.barh(i, (hi - lo) / real, left=lo / real, height=0.6, color="#cfe3cf")
        xs = [f[name] / real for f in per_exam if np.isfinite(f[name])]
        ax.plot(xs, [i] * len(xs), "o", color="#7a9cc6", ms=4)
        ax.plot(medians[name] / real, i, "D", color="#1f3b73", ms=7)
    ax.axvline(1.0, color="#b03030", lw=1.2, label="real GE exam")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("figure / real GE value (band: bound; dots: exams; diamond: median)")
    ax.set_xlim(0, 2.2)
    ax.legend(loc="lower right")
    ax.set_title("Synthetic GE-style exams against the real scanner")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


REAL_DESCRIPTION = [
    "REAL GE MR-Touch exam (OPTIMA MR360 1.5 T),",
    "as described in the domain notes (no image",
    "may be shipped):",
    "",
    "- elastogram covers the whole body; the liver",
    "  is not outlined by it; blobs of about 1.5 cm",
    "- body reads 1.3-4.2 kPa (p5-p95), median 2.26",
    "- confidence >= 0.95 on about 12 % of the body,",
    "  83 % of it on the image left (patient right),",
    "  3-4 patches a slice, median 5.5 cm2: inside",
    "  the right lobe plus spots in muscle and spleen",
    "- magnitude: liver at 0.68 of the body's p95,",
    "  anatomy plain (fat bright, muscle dark)",
    "- reader: small convex ROIs of 4-8 cm2 a slice,",
    "  98.6 cm2 over 8 slices, 2.06 kPa pooled",
]


def save_sheet(path: Path, exam, roi) -> None:
    """The first slices of a synthetic exam (magnitude, elastogram 0-8 kPa, confidence >= 0.95, reader
    ROI) beside a panel that describes the real exam it is held against."""
    from PIL import Image, ImageDraw

    from mrefibrosis.synth.preview import sheet

    confident = exam.confidence_valid.astype(float)
    img, titles = sheet(
        exam.magnitude, exam.stiffness_kpa, confident, (0, 1), roi, ["magnitude", "elastogram 0-8 kPa", "confidence >= 0.95", "reader ROI"], max_slices=3
    )
    panel = Image.new("RGB", (330, img.shape[0]), (24, 24, 24))
    draw = ImageDraw.Draw(panel)
    for i, line in enumerate(REAL_DESCRIPTION):
        draw.text((10, 10 + 16 * i), line, fill=(235, 235, 235))
    left = Image.fromarray(img)
    d = ImageDraw.Draw(left)
    w = img.shape[1] // 4
    for n, t in enumerate(titles):
        d.text((n * w + 4, 3), f"synthetic: {t}" if n == 0 else t, fill=(255, 255, 255))
    out = Image.new("RGB", (left.width + panel.width + 6, img.shape[0]), (60, 60, 60))
    out.paste(left, (0, 0))
    out.paste(panel, (left.width + 6, 0))
    out.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--stage-mix", default=None, help="e.g. F0=1,F1=1 (default: all stages alike)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--plot", type=Path, help="PNG of the figures against the bounds")
    ap.add_argument("--json", type=Path, help="write the figures as JSON")
    ap.add_argument("--sheet", type=Path, help="PNG: the first exam beside the description of the real exam")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        truths = generate_cohort(Path(tmp), args.n, seed=args.seed, vendor="ge", stage_mix=parse_stage_mix(args.stage_mix), workers=args.workers)
        dt = time.perf_counter() - t0
        per_exam = []
        for i, truth in enumerate(truths):
            folder = Path(tmp) / f"exam_{i:05d}"
            exam = read_exam(folder / "dicom")
            roi = read_roi(folder / "roi.seg.nrrd", exam.geometry)
            figs = figures_of_exam(exam, roi)
            per_exam.append(figs)
            if args.sheet and i == 0:
                save_sheet(args.sheet, exam, roi)
            kpa = "-" if truth["reader_kpa"] is None else f"{truth['reader_kpa']:.2f}"
            print(f"exam {i}: liver {truth['liver_kpa_true']:.2f} kPa, reader {kpa} kPa, failure {truth['failure'] or '-'}, {truth['status']}")
    medians = cohort_medians(per_exam)
    inside = within_bounds(medians)
    print(f"\n{args.n} GE-style exams, seed {args.seed}, simulated and written in {dt:.1f} s ({args.n / dt * 60:.0f} exams/min)")
    print(f"{'figure':26s} {'median':>8s} {'real GE':>8s} {'bound':>17s}  in?   per exam")
    for name, real in REAL_GE.items():
        lo, hi = BOUNDS[name]
        per = " ".join(f"{f[name]:.3g}" for f in per_exam)
        print(f"{name:26s} {medians[name]:8.3f} {real:8.3f} {lo:8.3f}-{hi:<8.3f}  {'yes' if inside[name] else 'NO ':3s}   {per}")
    print(f"inside the bounds: {sum(inside.values())} of {len(inside)}")
    if args.plot:
        plot_against_bounds(args.plot, medians, per_exam)
        print(f"plot: {args.plot}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"seed": args.seed, "n": args.n, "median": medians, "per_exam": per_exam, "real_ge": REAL_GE, "bounds": BOUNDS, "inside": inside}, indent=2
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
