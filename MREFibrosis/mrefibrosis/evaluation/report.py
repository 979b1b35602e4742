"""`mrefibrosis evaluate`: run a model over a labelled cohort and write the seed paper's report.

Each exam goes through the same segmenter and measurement as `measure`, so the report describes
exactly what users get. Outputs (written all-or-nothing): report.md, metrics.json, per_exam.csv and
PNG plots (correlation, Bland-Altman, confusion matrix).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import MREFibrosisError
from ..measure.fibrosis_stages import Preset, at_least_f2, get_preset
from ..pipeline import process_exam
from ..reading.exam_loader import read_exam
from ..results.roi_files import read_roi
from ..results.staged_files import staged_outputs
from ..training.manifest import ManifestRow, read_manifest
from . import metrics as M
from .cohorts import cohort_table
from .markdown import render_report
from .plots import plot_bland_altman, plot_confusion, plot_correlation

log = logging.getLogger("mrefibrosis")

PER_EXAM_COLUMNS = [
    "exam",
    "stage",
    "fibrosis_stage",
    "reader_status",
    "auto_status",
    "dice",
    "iou",
    "f1",
    "manual_kpa",
    "auto_kpa",
    "abs_error_percent",
    "auto_stage",
    "manual_at_least_f2",
    "auto_at_least_f2",
    "error",
    "outside_liver",
    "status_detail",
    "flags",  # every rule that fired, warning or not (the QC's false-alarm counts come from here)
]


@dataclass
class ExamEvaluation:
    row: ManifestRow
    reader_status: str  # ok: the reader drew a measurable ROI; indeterminate: none
    auto_status: str  # ok / indeterminate / error
    scores: M.SegScores | None = None
    auto_kpa: float | None = None
    auto_stage: str | None = None
    manual_f2: bool | None = None
    auto_f2: bool | None = None
    error: str | None = None
    flags: list[str] = field(default_factory=list)
    outside_liver: float | None = None  # share of the automatic ROI outside the true liver (manifest 'liver' column)
    status_detail: str = ""


def evaluate_exam(row: ManifestRow, segmenter, preset: Preset, without_magnitude: bool = False) -> ExamEvaluation:
    """The exam through the same pipeline as `measure` (segmentation, QC, verdict), scored against
    the reader; `without_magnitude` drops the magnitude images first, as for an exam exported without them."""
    reader_status = "ok" if row.roi_path is not None else "indeterminate"
    manual_f2 = at_least_f2(row.stage, row.manual_kpa, preset) if reader_status == "ok" else None
    try:
        exam = read_exam(row.exam_dir)
        truth = read_roi(row.roi_path, exam.geometry) if row.roi_path is not None else np.zeros(exam.valid.shape, bool)
        if without_magnitude:
            exam.magnitude = None
        result = process_exam(exam, preset=preset, segmenter=segmenter)
        roi, m = result.roi, result.measurement
        liver = read_roi(row.liver_path, exam.geometry) if row.liver_path is not None else None
    except MREFibrosisError as exc:
        return ExamEvaluation(row, reader_status, "error", manual_f2=manual_f2, error=str(exc))
    ev = ExamEvaluation(row, reader_status, str(m.status), M.seg_scores(roi, truth), manual_f2=manual_f2, flags=list(m.flags), status_detail=result.status_text)
    if liver is not None and roi.any():
        ev.outside_liver = float((roi & ~liver).sum() / roi.sum())
    if m.status == "ok":
        ev.auto_kpa = float(m.mean_kpa)
        ev.auto_stage = m.stage
        ev.auto_f2 = at_least_f2(m.stage, ev.auto_kpa, preset)
    return ev


def _seg_summary(evals: list[ExamEvaluation]) -> dict:
    s = [e.scores for e in evals if e.scores is not None]
    if not s:
        return {"exams": 0}
    out = {"exams": len(s)}
    for name in ("dice", "iou", "f1", "precision", "recall"):
        v = np.array([getattr(x, name) for x in s])
        out[name] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "median": float(np.median(v)), "min": float(v.min())}
    return out


def summarize(evals: list[ExamEvaluation], preset: Preset) -> dict:
    measurable = [e for e in evals if e.reader_status == "ok"]
    failures = [e for e in evals if e.reader_status == "indeterminate"]
    pairs = [e for e in measurable if e.row.manual_kpa is not None and e.auto_kpa is not None]
    manual = [e.row.manual_kpa for e in pairs]
    auto = [e.auto_kpa for e in pairs]
    out: dict = {
        "exams": len(evals),
        "reader_measurable": len(measurable),
        "reader_indeterminate": len(failures),
        "errors": sum(e.auto_status == "error" for e in evals),
        "segmentation": _seg_summary(measurable),
        "segmentation_by_stage": {},
        "segmentation_by_fibrosis_stage": {},
        "failures_reported_indeterminate": sum(e.auto_status == "indeterminate" for e in failures),
        "measurable_reported_indeterminate": sum(e.auto_status != "ok" for e in measurable),
        "pairs": len(pairs),
        "pearson": M.as_dict(M.pearson(auto, manual)),
        "icc": M.as_dict(M.icc_2_1(np.column_stack([auto, manual])) if len(pairs) >= 3 else None),
        "bland_altman": M.as_dict(M.bland_altman(auto, manual)),
        "mean_absolute_percent_error": M.mean_absolute_percent_error(auto, manual),
        "preset": preset.name,
    }
    outside = [e.outside_liver for e in evals if e.outside_liver is not None]
    if outside:
        out["roi_outside_liver"] = {
            "exams": len(outside),
            "median": float(np.median(outside)),
            "mean": float(np.mean(outside)),
            "over_10_percent": int(sum(v > 0.1 for v in outside)),
        }
    for key, getter in (
        ("segmentation_by_stage", lambda e: e.row.stage),
        ("segmentation_by_fibrosis_stage", lambda e: e.row.demographics.get("fibrosis_stage")),
    ):
        groups: dict[str, list] = {}
        for e in measurable:
            if getter(e):
                groups.setdefault(getter(e), []).append(e)
        out[key] = {g: _seg_summary(v) for g, v in sorted(groups.items())}
    staged = [e for e in pairs if e.row.stage and e.auto_stage]
    labels = [b.stage for b in preset.bands]
    if staged and all(e.row.stage in labels for e in staged):
        cm = M.confusion_matrix([e.row.stage for e in staged], [e.auto_stage for e in staged], labels)
        kappa = M.cohen_kappa(cm)
        out["staging"] = {
            "labels": labels,
            "confusion_matrix": cm.tolist(),
            "agreement": float(np.trace(cm) / cm.sum()),
            "kappa": M.as_dict(kappa),
            "exams": int(cm.sum()),
        }
    f2 = [e for e in pairs if e.manual_f2 is not None and e.auto_f2 is not None]
    if f2:
        cm2 = M.confusion_matrix(["yes" if e.manual_f2 else "no" for e in f2], ["yes" if e.auto_f2 else "no" for e in f2], ["no", "yes"])
        out["at_least_f2"] = {
            "confusion_matrix": cm2.tolist(),
            "agreement": float(np.trace(cm2) / cm2.sum()),
            "kappa": M.as_dict(M.cohen_kappa(cm2)),
            "manual_positive": int(cm2[1].sum()),
            "auto_positive": int(cm2[:, 1].sum()),
            "exams": int(cm2.sum()),
        }
    return out


def _per_exam_csv(evals: list[ExamEvaluation]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(PER_EXAM_COLUMNS)

    def f(v, d=4):
        return "" if v is None else (f"{v:.{d}f}" if isinstance(v, float) else str(v))

    for e in evals:
        err = None
        if e.auto_kpa is not None and e.row.manual_kpa:
            err = 100.0 * abs(e.auto_kpa - e.row.manual_kpa) / e.row.manual_kpa
        w.writerow(
            [
                e.row.name,
                e.row.stage or "",
                e.row.demographics.get("fibrosis_stage", ""),
                e.reader_status,
                e.auto_status,
                f(e.scores.dice if e.scores else None),
                f(e.scores.iou if e.scores else None),
                f(e.scores.f1 if e.scores else None),
                f(e.row.manual_kpa, 3),
                f(e.auto_kpa, 3),
                f(err, 2),
                e.auto_stage or "",
                f(e.manual_f2),
                f(e.auto_f2),
                e.error or "",
                f(e.outside_liver),
                e.status_detail,
                ";".join(e.flags),
            ]
        )
    return buf.getvalue()


def evaluate(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    segmenter,
    preset: str | None = "seed",
    compare_with: str | os.PathLike | None = None,
    title: str = "",
    progress=None,
    without_magnitude: bool = False,
) -> dict:
    rows = read_manifest(manifest)
    other = read_manifest(compare_with) if compare_with else None
    preset_obj = get_preset(preset)
    evals = []
    for i, row in enumerate(rows):
        evals.append(evaluate_exam(row, segmenter, preset_obj, without_magnitude))
        if progress:
            progress(i + 1, len(rows))
        elif (i + 1) % 25 == 0:
            log.info("evaluate: %d/%d exams", i + 1, len(rows))
    summary = summarize(evals, preset_obj)
    describe = getattr(segmenter, "describe", None)
    model = describe() if callable(describe) else {}
    margins = getattr(segmenter, "margins", None)
    if margins is not None:
        model["roi_margins_mm"] = margins.to_json()  # the post-processing is part of what was evaluated
    table = cohort_table(evals, other, preset_obj)
    summary["cohort_table"] = table
    metrics = {"software": f"MREFibrosis {__version__}", "model": model, "manifest": Path(manifest).name, "without_magnitude": without_magnitude, **summary}
    with staged_outputs(out_dir) as out:
        pairs = [(e.auto_kpa, e.row.manual_kpa) for e in evals if e.auto_kpa is not None and e.row.manual_kpa is not None and e.reader_status == "ok"]
        plots = {}
        if len(pairs) >= 2:
            a, m = np.array(pairs).T
            plot_correlation(out.path("correlation.png"), m, a, summary["pearson"], summary["icc"])
            plot_bland_altman(out.path("bland_altman.png"), a, m, summary["bland_altman"])
            plots.update({"correlation": "correlation.png", "bland_altman": "bland_altman.png"})
        if "staging" in summary:
            plot_confusion(out.path("confusion_matrix.png"), np.array(summary["staging"]["confusion_matrix"]), summary["staging"]["labels"], preset_obj.name)
            plots["confusion_matrix"] = "confusion_matrix.png"
        metrics["plots"] = plots
        out.path("metrics.json").write_text(json.dumps(metrics, indent=2, default=float) + "\n")
        out.path("per_exam.csv").write_text(_per_exam_csv(evals))
        out.path("report.md").write_text(render_report(metrics, title))
    return {
        "exams": len(evals),
        "dice_mean": (summary["segmentation"].get("dice") or {}).get("mean", float("nan")),
        "pearson_r": (summary["pearson"] or {}).get("r"),
        "metrics": metrics,
    }
