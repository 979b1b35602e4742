"""The breath-hold rule on simulated cohorts: how often it flags a slice nobody moved (false alarms)
and how many of the slices the simulated reader left out it finds (detection), with the figures it
reads, so that its thresholds can be chosen on one cohort and reported on another.

    python benchmarks/bench_breath_hold.py COHORT [COHORT ...] [--csv FILE] [--max-shift-mm 6]
        [--ratio 2.0] [--excess 0.3]

Each COHORT is a folder written by `mrefibrosis synth` (truth.json names the moved slices by
location). Only the reader runs (no model): each exam is read as the engine reads a scanner export.
Prints one table; exit status 0 whatever the numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from mrefibrosis.measure.breath_hold import misregistered
from mrefibrosis.measure.qc import QcSettings
from mrefibrosis.reading.exam_loader import ReadOptions, read_exam

FIELDS = ["cohort", "exam", "vendor", "failure", "slice", "moved", "agreement", "shift_mm", "intensity_cv"]


def slice_rows(cohort: Path) -> list[dict]:
    """One row per slice of every exam: the figures and whether the simulator moved that slice."""
    rows = []
    for folder in sorted(cohort.glob("exam_*")):
        truth = json.loads((folder / "truth.json").read_text())
        exam = read_exam(folder / "dicom", ReadOptions(read_waves=False))
        if exam.offset_agreement is None:
            continue
        moved_at = np.array(truth.get("rejected_slice_locations_mm") or [], float)
        for k, loc in enumerate(exam.geometry.slice_locations_mm):
            rows.append(
                {
                    "cohort": cohort.name,
                    "exam": folder.name,
                    "vendor": truth["vendor"],
                    "failure": truth["failure"] or "",
                    "slice": k,
                    "moved": bool(moved_at.size and np.min(np.abs(moved_at - loc)) < 0.5),
                    "agreement": float(exam.offset_agreement[k]),
                    "shift_mm": float(exam.offset_shift_mm[k]),
                    "intensity_cv": float(exam.offset_intensity_cv[k]),
                }
            )
    return rows


def flags(rows: list[dict], qc: QcSettings) -> np.ndarray:
    """The rule's verdict per row, applied exam by exam (its floor is the exam's own)."""
    out = np.zeros(len(rows), bool)
    start = 0
    while start < len(rows):
        end = start
        while end < len(rows) and (rows[end]["cohort"], rows[end]["exam"]) == (rows[start]["cohort"], rows[start]["exam"]):
            end += 1
        part = rows[start:end]
        out[start:end] = misregistered(np.array([r["agreement"] for r in part]), np.array([r["shift_mm"] for r in part]), qc)
        start = end
    return out


def report(rows: list[dict], qc: QcSettings) -> str:
    flagged = flags(rows, qc)
    moved = np.array([r["moved"] for r in rows], bool)
    lines = ["| cohort | exams | still slices | false alarms | exams with a false alarm | moved slices | found |", "|---|---|---|---|---|---|---|"]
    for name in sorted({r["cohort"] for r in rows}):
        sel = np.array([r["cohort"] == name for r in rows])
        exams = {r["exam"] for r in rows if r["cohort"] == name}
        fa_exams = {r["exam"] for r, f, m, s in zip(rows, flagged, moved, sel) if s and f and not m}
        still, mv = sel & ~moved, sel & moved
        fa = f"{int((flagged & still).sum())} ({100 * (flagged & still).sum() / max(still.sum(), 1):.2f} %)"
        found = f"{int((flagged & mv).sum())} ({100 * (flagged & mv).sum() / max(mv.sum(), 1):.1f} %)" if mv.any() else "-"
        lines.append(f"| {name} | {len(exams)} | {int(still.sum())} | {fa} | {len(fa_exams)} | {int(mv.sum())} | {found} |")
    still = ~moved
    figures = []
    for label, sel in (("still", still), ("moved", moved)):
        if sel.any():
            a = np.array([r["agreement"] for r in rows])[sel]
            s = np.array([r["shift_mm"] for r in rows])[sel]
            figures.append(
                f"{label} slices: agreement p1/p50/p99 {np.nanpercentile(a, 1):.3f}/{np.nanpercentile(a, 50):.3f}/{np.nanpercentile(a, 99):.3f}, "
                f"shift mm p50/p99/max {np.nanpercentile(s, 50):.2f}/{np.nanpercentile(s, 99):.2f}/{np.nanmax(s):.2f}, min {np.nanmin(s):.2f}"
            )
    settings = f"max shift {qc.max_offset_shift_mm:g} mm; decorrelation >= {qc.offset_decorrelation_ratio:g} x and >= +{qc.offset_decorrelation_excess:g} over the exam's median"
    return "\n".join([settings, *lines, *figures])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cohorts", nargs="+", type=Path)
    ap.add_argument("--csv", type=Path, help="also write the per-slice figures here (or read them from here when it exists and --reuse is given)")
    ap.add_argument("--reuse", action="store_true", help="read the per-slice figures from --csv instead of the cohorts")
    ap.add_argument("--max-shift-mm", type=float, default=QcSettings().max_offset_shift_mm)
    ap.add_argument("--ratio", type=float, default=QcSettings().offset_decorrelation_ratio)
    ap.add_argument("--excess", type=float, default=QcSettings().offset_decorrelation_excess)
    args = ap.parse_args()
    if args.reuse and args.csv and args.csv.exists():
        with args.csv.open() as fh:
            rows = [
                {**r, "slice": int(r["slice"]), "moved": r["moved"] == "True", **{k: float(r[k]) for k in ("agreement", "shift_mm", "intensity_cv")}}
                for r in csv.DictReader(fh)
                if r["cohort"] in {c.name for c in args.cohorts}
            ]
    else:
        rows = [row for cohort in args.cohorts for row in slice_rows(cohort)]
        if args.csv:
            with args.csv.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, FIELDS)
                writer.writeheader()
                writer.writerows(rows)
    qc = QcSettings(max_offset_shift_mm=args.max_shift_mm, offset_decorrelation_ratio=args.ratio, offset_decorrelation_excess=args.excess)
    print(report(rows, qc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
