"""Batch scoring on Ray: equals the sequential CLI, records failures, resumes, spans two nodes, survives a crash."""

import csv
import json
import shutil

import pytest

ray = pytest.importorskip("ray")

from model_fixtures import train_tiny_model  # noqa: E402

from mrefibrosis.batch.run import model_version_of, run_batch  # noqa: E402
from mrefibrosis.batch.scorer import CRASH_HOOK, done_marker, folder_key  # noqa: E402
from mrefibrosis.model.inference import Segmenter  # noqa: E402
from mrefibrosis.model.margin_settings import RoiMargins  # noqa: E402
from mrefibrosis.model.segmenter_settings import SegmenterSettings  # noqa: E402
from mrefibrosis.pipeline import process_many  # noqa: E402
from mrefibrosis.synth.cohort import generate_cohort  # noqa: E402


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    model, _ = train_tiny_model(root / "model", n_exams=3, steps=60, seed=4)
    generate_cohort(root / "cohort", 19, seed=77, vendor="both", stage_mix=None, workers=2)
    archive = root / "archive"
    archive.mkdir()
    for d in sorted((root / "cohort").glob("exam_*")):
        shutil.copytree(d / "dicom", archive / d.name)
    bad = archive / "zz_corrupt"
    bad.mkdir()
    (bad / "IM0001.dcm").write_bytes(b"\0" * 132 + b"not really dicom")
    return archive, model


@pytest.fixture()
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _table(out):
    return {r["input_key"]: r for r in csv.DictReader((out / "batch_results.csv").open())}


def test_batch_equals_sequential_cli_records_failure_and_resumes(archive, tmp_path, local_ray):
    folders, model = archive
    out = tmp_path / "out"
    summary = run_batch(folders, out, workers=2, settings=SegmenterSettings(model=str(model), device="cpu"))
    assert summary["folders"] == 20 and summary["scored"] == 20 and summary["failed"] == 1
    table = _table(out)
    assert len(table) == 20
    bad = table[folder_key(folders / "zz_corrupt")]
    assert bad["status"] == "failed" and bad["error"]
    assert (out / "batch_results.parquet").exists()
    seg = Segmenter(model, device="cpu")
    for d in sorted(folders.glob("exam_*")):
        seq = next(process_many([d], tmp_path / "seq" / d.name, segmenter=seg))
        row = table[folder_key(d)]
        assert row["status"] == seq.result.measurement.status
        if row["status"] == "ok":
            assert float(row["mean_kpa"]) == pytest.approx(seq.result.measurement.mean_kpa, rel=1e-9)
            assert row["stage"] == seq.result.measurement.stage
        assert row["model_version"] == model_version_of(str(model))
    # a rerun recomputes nothing
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "done").iterdir()}
    again = run_batch(folders, out, workers=2, settings=SegmenterSettings(model=str(model), device="cpu"))
    assert again["scored"] == 0 and again["skipped"] == 20
    assert {p.name: p.stat().st_mtime_ns for p in (out / "done").iterdir()} == stamps
    assert len(_table(out)) == 20
    # other ROI margins reach the workers, name the run's version, and score the folders again
    off = RoiMargins(0.0, 0.0)
    few = sorted(folders.glob("exam_*"))[:6]
    listing = tmp_path / "few.csv"
    listing.write_text("path\n" + "".join(f"{d}\n" for d in few))
    other = run_batch(listing, out, workers=2, settings=SegmenterSettings(model=str(model), device="cpu", margins=off))
    assert other["scored"] == 6 and other["model_version"] == model_version_of(str(model)) + " margins 0/0 mm"
    loose = _table(out)
    seg_off = Segmenter(model, device="cpu", margins=off)
    changed = 0
    for d in few:
        seq = next(process_many([d], tmp_path / "seq_off" / d.name, segmenter=seg_off))
        row = loose[folder_key(d)]
        assert row["status"] == seq.result.measurement.status
        if row["status"] == "ok":
            assert float(row["roi_area_cm2"]) == pytest.approx(seq.result.measurement.pooled.area_cm2, abs=1e-4)  # the table rounds
            changed += float(row["roi_area_cm2"]) != float(table[folder_key(d)]["roi_area_cm2"] or 0)
    assert changed, "the driver margin cut none of these ROIs: the test shows nothing"


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(archive, tmp_path, monkeypatch):
    folders, model = archive
    flag = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_HOOK, str(flag))  # before Ray starts, so its workers inherit it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    out = tmp_path / "out"
    try:
        summary = run_batch(folders, out, workers=2, settings=SegmenterSettings(model=str(model), device="cpu"))
    finally:
        ray.shutdown()
    assert flag.exists(), "the fault was injected"
    rows = list(csv.DictReader((out / "batch_results.csv").open()))
    assert len(rows) == 20 and len({r["input_key"] for r in rows}) == 20
    assert summary["failed"] == 1


def test_two_node_cluster(archive, tmp_path):
    from ray.cluster_utils import Cluster

    folders, model = archive
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        out = tmp_path / "out"
        run_batch(folders, out, address=cluster.address, workers=2, settings=SegmenterSettings(model=str(model), device="cpu"))
        nodes = {json.loads(done_marker(out, k).read_text())["rows"][0]["node"] for k in _table(out)}
        assert len(nodes) == 2
    finally:
        ray.shutdown()
        cluster.shutdown()
