"""The evaluation report: a perfect segmenter gives the known answers; a real model gives a full report."""

import csv
import json

import numpy as np
import pytest
from model_fixtures import train_tiny_model

from mrefibrosis.cli import main
from mrefibrosis.evaluation.report import evaluate
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import read_roi
from mrefibrosis.synth.cohort import generate_cohort
from mrefibrosis.training.manifest import manifest_from_synthetic, read_manifest


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_cohort")
    generate_cohort(root, 8, seed=123, vendor="both", stage_mix=None, workers=1)
    return root, manifest_from_synthetic(root, cohort="test")


class ReaderSegmenter:
    """Returns the reader's own ROI: every agreement statistic must be perfect."""

    def __init__(self, manifest):
        self.rois = {}
        for row in read_manifest(manifest):
            exam = read_exam(row.exam_dir)
            self.rois[exam.exam_key] = read_roi(row.roi_path, exam.geometry) if row.roi_path else np.zeros(exam.valid.shape, bool)

    def __call__(self, exam):
        return self.rois[exam.exam_key]


def test_reader_roi_scores_perfectly(cohort, tmp_path):
    _, manifest = cohort
    out = tmp_path / "perfect"
    summary = evaluate(manifest, out, ReaderSegmenter(manifest))
    m = json.loads((out / "metrics.json").read_text())
    assert m["segmentation"]["dice"]["mean"] == pytest.approx(1.0)
    assert m["segmentation"]["iou"]["mean"] == pytest.approx(1.0)
    # manual kPa in the manifest is written with 4 decimals
    assert m["mean_absolute_percent_error"] < 0.01
    assert m["pearson"]["r"] == pytest.approx(1.0, abs=1e-6)
    assert m["icc"]["icc"] == pytest.approx(1.0, abs=1e-6)
    assert abs(m["bland_altman"]["bias"]) < 1e-3
    assert m["staging"]["agreement"] == 1.0 and m["at_least_f2"]["agreement"] == 1.0
    assert m["failures_reported_indeterminate"] == m["reader_indeterminate"]
    assert summary["exams"] == 8
    for name in ("report.md", "per_exam.csv", "correlation.png", "bland_altman.png", "confusion_matrix.png"):
        assert (out / name).stat().st_size > 100
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_report_of_a_model_with_a_two_cohort_table(cohort, tmp_path):
    root, manifest = cohort
    model, _ = train_tiny_model(tmp_path / "model", n_exams=3, steps=40, seed=8)
    other = root / "other.csv"
    lines = manifest.read_text().splitlines()
    other.write_text("\n".join(lines[:1] + lines[1:5]) + "\n")  # a second cohort for Table 2
    out = tmp_path / "report"
    assert (
        main(["evaluate", str(manifest), "--model", str(model), "--out", str(out), "--compare-with", str(other), "--title", "Tiny", "--roi-driver-mm", "30"])
        == 0
    )
    report = (out / "report.md").read_text()
    for heading in ("# Tiny", "## Segmentation", "## Stiffness", "## Failures", "## Cohorts"):
        assert heading in report
    m = json.loads((out / "metrics.json").read_text())
    assert m["model"]["architecture"] == "unet_classic" and m["exams"] == 8
    assert m["model"]["roi_margins_mm"] == {"liver_edge_mm": 10.0, "driver_mm": 30.0}  # the post-processing evaluated
    assert "10 mm inside the predicted liver and 30 mm from the driver" in report
    table = m["cohort_table"]
    assert table["sizes"] == [8, 4] and any(r["variable"] == "age" for r in table["rows"])
    rows = list(csv.DictReader(open(out / "per_exam.csv")))
    assert len(rows) == 8 and "patient" not in rows[0]
    assert not any("SYN-" in v or "SYNTHETIC" in v for r in rows for v in r.values())


def test_evaluate_bad_manifest_is_one_line(tmp_path, capsys):
    (tmp_path / "m.csv").write_text("exam,roi\n")
    assert main(["evaluate", str(tmp_path / "m.csv"), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "none.mrefmodel")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
