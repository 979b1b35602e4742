"""A result folder holds one complete set or says it does not (results/result_set.py): the writer
stopped at every step of publishing, and killed for real at random moments, never leaves a folder
that passes as a set while mixing two runs (the review page's Export left a new CSV beside an old
JSON, SEG and SR in 1 of 18 kills), and the next write cleans what the killed one left."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mrefibrosis.results.result_set as result_set
from mrefibrosis.pipeline import process_exam, write_results
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.result_set import MANIFEST, PARTIAL_PREFIX, verify_result_set
from mrefibrosis.results.roi_files import write_seg_nrrd


@pytest.fixture()
def two_results(ge_exam, tmp_path):
    """Two measurements of one exam over different ROIs (the old and the new set)."""
    exam = read_exam(ge_exam.path)
    core = (ge_exam.confidence >= 950) & ge_exam.liver[None]
    rows = np.nonzero(core.any(axis=(0, 2)))[0]
    half = core.copy()
    half[:, : int(np.median(rows)), :] = False  # the lower half of the patch
    out = []
    for name, mask in (("old", core), ("new", half)):
        roi = tmp_path / f"{name}.seg.nrrd"
        write_seg_nrrd(roi, mask, exam.geometry)
        out.append(process_exam(ge_exam.path, roi))
    assert all(r.measurement.status == "ok" for r in out) and out[0].measurement.mean_kpa != out[1].measurement.mean_kpa
    return out


def _state(folder: Path):
    """'old', 'new' or None (no complete set) for a result folder."""
    manifest = verify_result_set(folder)
    if manifest is None:
        return None
    return json.loads((folder / "result.json").read_text())["mean_kpa"]


def test_a_written_folder_is_a_verified_set_and_a_changed_file_breaks_it(two_results, tmp_path):
    old, _ = two_results
    out = tmp_path / "out"
    placed = write_results(old, out)
    manifest = verify_result_set(out)
    assert manifest is not None and set(manifest["files"]) == {"measurements.csv", "result.json", "roi.seg.nrrd"}
    assert {p.name for p in placed} == set(manifest["files"])
    (out / "measurements.csv").write_text("edited\n")
    assert verify_result_set(out) is None


@pytest.mark.parametrize("stop_at", range(5))  # write_seg_nrrd, three files, the manifest
def test_a_writer_stopped_at_any_rename_leaves_no_set_that_mixes_runs(two_results, tmp_path, monkeypatch, stop_at):
    old, new = two_results
    out = tmp_path / "out"
    write_results(old, out)
    real_replace, calls = os.replace, [0]

    def stopping_replace(src, dst):
        if calls[0] == stop_at:
            raise KeyboardInterrupt("killed")
        calls[0] += 1
        return real_replace(src, dst)

    monkeypatch.setattr(result_set.os, "replace", stopping_replace)
    with pytest.raises(KeyboardInterrupt):
        write_results(new, out)
    monkeypatch.setattr(result_set.os, "replace", real_replace)
    # stopped while staging: the old set, whole; while moving files in: no set (the manifest went
    # first); never the new set with old files, or the old one with new files
    assert _state(out) in (old.measurement.mean_kpa, None)
    if calls[0] >= 1 and list((out).glob("*.csv")) and (out / "measurements.csv").read_text() == new.csv_text():
        assert _state(out) is None
    write_results(new, out)
    assert _state(out) == new.measurement.mean_kpa
    assert not list(out.glob(f"{PARTIAL_PREFIX}*"))


def test_a_writer_stopped_before_publishing_leaves_the_old_set_whole(two_results, tmp_path, monkeypatch):
    old, new = two_results
    out = tmp_path / "out"
    write_results(old, out)

    def killed(*_args, **_kw):
        raise KeyboardInterrupt("killed while staging")

    monkeypatch.setattr("mrefibrosis.pipeline.write_seg_nrrd", killed)
    with pytest.raises(KeyboardInterrupt):
        write_results(new, out)
    assert _state(out) == old.measurement.mean_kpa


WRITER = """
import sys, json, itertools
from mrefibrosis.pipeline import process_exam, write_results
exam, out, rois = sys.argv[1], sys.argv[2], sys.argv[3:]
results = [process_exam(exam, r) for r in rois]
print("ready", flush=True)
for r in itertools.cycle(results):
    write_results(r, out)
"""


def test_a_writer_killed_at_random_moments_never_leaves_a_mixed_set(two_results, ge_exam, tmp_path):
    old, new = two_results
    out = tmp_path / "out"
    rois = [str(tmp_path / "old.seg.nrrd"), str(tmp_path / "new.seg.nrrd")]
    rng = random.Random(7)
    seen = {None: 0, old.measurement.mean_kpa: 0, new.measurement.mean_kpa: 0}
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(ge_exam.path), str(out), *rois], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = _state(out)
        assert state in seen, state  # a complete old set, a complete new set, or a folder that says it is neither
        seen[state] += 1
        if state is not None:  # the set's files agree with each other, not only with the manifest
            csv_mean = float(next(line for line in (out / "measurements.csv").read_text().splitlines() if ",all," in line).split(",")[5])
            assert csv_mean == pytest.approx(state, abs=5e-4)
    assert seen[old.measurement.mean_kpa] + seen[new.measurement.mean_kpa] > 0
    write_results(new, out)
    assert _state(out) == new.measurement.mean_kpa and not list(out.glob(f"{PARTIAL_PREFIX}*"))
    assert (out / MANIFEST).is_file()
