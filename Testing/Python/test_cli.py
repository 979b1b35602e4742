"""The `mrefibrosis` command line contract: files, columns, exit codes, privacy."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from mrefibrosis.cli import main
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import write_seg_nrrd


def run_cli(*args):
    """Run the real console entry point in a subprocess, as users do."""
    proc = subprocess.run([sys.executable, "-m", "mrefibrosis", *map(str, args)], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def roi_file(ge_exam, tmp_path_factory):
    exam = read_exam(ge_exam.path)
    roi = np.zeros(exam.geometry.shape, bool)
    roi[:, 22:34, 14:28] = True  # inside the high-confidence patch on every slice
    roi[0] = False
    path = tmp_path_factory.mktemp("roi") / "reader.seg.nrrd"
    write_seg_nrrd(path, roi, exam.geometry)
    return path, roi


def test_measure_with_roi_reproduces_pooled_mean(tmp_path, ge_exam, roi_file):
    path, roi = roi_file
    out = tmp_path / "out"
    code, _, err = run_cli("measure", ge_exam.path, "--out", out, "--roi", path)
    assert code == 0, err
    s = ge_exam.stiffness_pa
    valid = (s != 0) & (s != 32766)
    expected = s[roi & valid].astype(float).mean() / 1000.0
    result = json.loads((out / "result.json").read_text())
    assert result["mean_kpa"] == pytest.approx(expected, rel=1e-3)
    assert result["median_kpa"] == pytest.approx(np.median(s[roi & valid]) / 1000.0, rel=1e-3)
    assert result["status"] == "ok" and result["preset"] == "seed"
    assert result["stage"] == (">=F2" if round(expected, 2) >= 2.8 else "F0-F1")
    assert result["software"]["version"]
    assert result["roi_area_cm2"] == pytest.approx((roi & valid).sum() * 6.25 * 6.25 / 100)
    rows = list(csv.DictReader((out / "measurements.csv").open()))
    assert [r["slice"] for r in rows] == ["1", "2", "3", "all"]
    for col in ("slice_location_mm", "roi_pixels", "roi_area_cm2", "mean_kpa", "median_kpa", "sd_kpa"):
        assert col in rows[0]
    for r in rows[:-1]:
        k = int(r["slice"])
        assert float(r["mean_kpa"]) == pytest.approx(s[k][roi[k] & valid[k]].mean() / 1000.0, rel=1e-3)
    assert rows[-1]["stage"] == result["stage"] and rows[-1]["preset"] == "seed"
    assert (out / "roi.seg.nrrd").exists()
    assert sorted(p.name for p in out.iterdir()) == ["measurements.csv", "result-set.json", "result.json", "roi.seg.nrrd"]
    # the ROI written back is the one measured: measuring it again gives the same number
    out2 = tmp_path / "again"
    assert run_cli("measure", ge_exam.path, "--out", out2, "--roi", out / "roi.seg.nrrd")[0] == 0
    assert json.loads((out2 / "result.json").read_text())["mean_kpa"] == pytest.approx(result["mean_kpa"], rel=1e-9)


def test_no_patient_identifiers_by_default(tmp_path, ge_exam, roi_file):
    out = tmp_path / "out"
    code, stdout, err = run_cli("measure", ge_exam.path, "--out", out, "--roi", roi_file[0])
    assert code == 0
    everything = stdout + err + "".join(p.read_bytes().decode("latin-1") for p in out.iterdir())
    for secret in ("PID-SECRET-123", "DOE", "JANE"):
        assert secret not in everything
    code, _, _ = run_cli("measure", ge_exam.path, "--out", tmp_path / "ids", "--roi", roi_file[0], "--include-identifiers")
    assert json.loads((tmp_path / "ids" / "result.json").read_text())["identifiers"]["PatientID"] == "PID-SECRET-123"


def test_without_roi_or_model_says_what_to_do(tmp_path, ge_exam, monkeypatch):
    monkeypatch.delenv("MREFIBROSIS_MODEL", raising=False)
    code, _, err = run_cli("measure", ge_exam.path, "--out", tmp_path / "o", "--model", tmp_path / "missing.mrefmodel")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error:") and "--model" in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_preset_and_unknown_preset(tmp_path, ge_exam, roi_file):
    assert main(["-q", "measure", str(ge_exam.path), "--out", str(tmp_path / "a"), "--roi", str(roi_file[0]), "--preset", "radelement"]) == 0
    assert json.loads((tmp_path / "a" / "result.json").read_text())["preset"] == "radelement"
    assert main(["-q", "measure", str(ge_exam.path), "--out", str(tmp_path / "b"), "--roi", str(roi_file[0]), "--preset", "nope"]) == 2
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_inspect_lists_series_and_reasons(ge_exam):
    code, out, err = run_cli("inspect", ge_exam.path)
    assert code == 0, err
    assert "-> stiffness" in out and "-> confidence" in out and "-> raw_mre" in out
    assert "usable: GE, 4 slices" in out and "60 Hz" in out
    assert "PID-SECRET-123" not in out


def test_failed_run_leaves_previous_results_and_no_partial_files(tmp_path, ge_exam, roi_file):
    out = tmp_path / "out"
    assert main(["-q", "measure", str(ge_exam.path), "--out", str(out), "--roi", str(roi_file[0])]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.seg.nrrd"
    bad.write_bytes(b"garbage")
    assert main(["-q", "measure", str(ge_exam.path), "--out", str(out), "--roi", str(bad)]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_segmenter_without_torch_says_what_to_install(tmp_path, ge_exam, monkeypatch, capsys):
    """Slicer's Python before the PyTorch extension: one line saying what to install, no internal error."""
    from mrefibrosis.model.inference import default_model_path

    monkeypatch.setitem(sys.modules, "torch", None)
    code = main(["measure", str(ge_exam.path), "--out", str(tmp_path / "o"), "--model", str(default_model_path()), "--runtime", "torch"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error:")
    assert "torch" in err and "--roi" in err
    assert not (tmp_path / "o").exists()
    # neither runtime: auto names both ways out
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code = main(["measure", str(ge_exam.path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "onnxruntime" in err and "torch" in err
    assert not (tmp_path / "o").exists()


def _run_with_exit_marker(tmp_path, *args):
    """The real entry point, with an atexit handler (from a sitecustomize on PYTHONPATH) that leaves a
    marker when the interpreter's ordinary teardown runs."""
    marker = tmp_path / "teardown-ran"
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(f"import atexit, pathlib\natexit.register(pathlib.Path({str(marker)!r}).touch)\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}
    proc = subprocess.run([sys.executable, "-m", "mrefibrosis", *map(str, args)], capture_output=True, text=True, timeout=120, env=env)
    ran = marker.exists()
    marker.unlink(missing_ok=True)
    return proc, ran


def test_short_commands_end_without_teardown_and_lose_no_output(tmp_path, ge_exam, roi_file, capsys):
    """measure, segment and inspect end as soon as their output is flushed (the teardown was a tenth
    of a cold run): what they print through a pipe and the files they write are whole, and exit codes
    stay; other commands keep the ordinary exit."""
    proc, teardown = _run_with_exit_marker(tmp_path, "inspect", ge_exam.path)
    assert proc.returncode == 0 and not teardown
    assert main(["inspect", str(ge_exam.path)]) == 0
    assert proc.stdout == capsys.readouterr().out  # every line reached the pipe

    path, _ = roi_file
    proc, teardown = _run_with_exit_marker(tmp_path, "measure", ge_exam.path, "--roi", path, "--out", tmp_path / "out")
    assert proc.returncode == 0 and not teardown, proc.stderr
    record = json.loads((tmp_path / "out" / "result.json").read_text())
    with open(tmp_path / "out" / "measurements.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    pooled = [r for r in rows if r["slice"] == "all"]
    assert len(rows) == 4 and len(pooled) == 1  # three slices with ROI and the pooled row: nothing cut off
    assert float(pooled[0]["mean_kpa"]) == pytest.approx(record["mean_kpa"], abs=0.01)

    proc, teardown = _run_with_exit_marker(tmp_path, "measure", tmp_path / "no-such-exam", "--out", tmp_path / "out2")
    assert proc.returncode == 2 and not teardown
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "no such file or folder" in proc.stderr

    proc, teardown = _run_with_exit_marker(tmp_path, "presets")
    assert proc.returncode == 0 and teardown and proc.stdout.strip()


def _two_exams_the_first_damaged(root):
    """Two exams in one folder; the first in the run's order has its elastograms' pixel data cut short."""
    from fixtures import make_ge_exam

    from mrefibrosis.reading import classify as roles
    from mrefibrosis.reading.exam import exam_key_for
    from mrefibrosis.reading.exam_loader import ReadOptions, find_exams

    make_ge_exam(root / "a", seed=1, study_key="a")
    make_ge_exam(root / "b", seed=2, study_key="b")
    found = find_exams([root], ReadOptions())
    assert len(found) == 2
    for series in found[0][1]:
        if series.role in roles.MEASURABLE:
            for ref in series.instances:
                ref.path.write_bytes(ref.path.read_bytes()[:-200])
    return exam_key_for(found[0][0]), exam_key_for(found[1][0])


def test_a_first_exam_read_while_the_model_loads_fails_in_its_turn(tmp_path):
    """The first exam is read before the model is waited for; its error is still that exam's line
    and the run goes on to the next exam; a model error still comes first, as one line."""
    pytest.importorskip("onnxruntime")
    broken, good = _two_exams_the_first_damaged(tmp_path / "exams")
    code, _, err = run_cli("measure", tmp_path / "exams", "--out", tmp_path / "out", "--runtime", "onnx")
    assert code == 2
    assert [line.split(":")[0:2] for line in err.splitlines() if line.startswith("error")] == [["error", f" exam {broken}"]]
    assert "pixel data" in err and "Traceback" not in err
    assert json.loads((tmp_path / "out" / good / "result.json").read_text())["status"] == "ok"
    assert not (tmp_path / "out" / broken / "result.json").exists()
    code, _, err = run_cli("segment", tmp_path / "exams", "--out", tmp_path / "seg", "--runtime", "onnx")
    assert code == 2 and err.count(f"error: exam {broken}") == 1 and (tmp_path / "seg" / good / "roi.seg.nrrd").exists()
    code, _, err = run_cli("measure", tmp_path / "exams", "--out", tmp_path / "out2", "--model", tmp_path / "missing.mrefmodel")
    assert code != 0 and err.startswith("error: model file") and len(err.strip().splitlines()) == 1
    # a model that loads on the thread and fails there (its bytes changed, its SHA256SUMS did not)
    import shutil

    from mrefibrosis.model.inference import DEFAULT_MODEL

    changed = tmp_path / "model" / DEFAULT_MODEL.name
    shutil.copytree(DEFAULT_MODEL.parent, changed.parent)
    data = bytearray(changed.read_bytes())
    data[-100] ^= 0xFF
    changed.write_bytes(bytes(data))
    code, _, err = run_cli("measure", tmp_path / "exams", "--out", tmp_path / "out3", "--model", changed, "--runtime", "onnx")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "error: exam" not in err, err
    assert "checksum" in err.lower() or "sha" in err.lower(), err


def test_the_first_exam_is_read_before_the_model_is_waited_for(tmp_path, ge_exam, monkeypatch):
    """The model's load on its thread is held until the first exam has been built: a command that
    waited for the model before reading would hang here, and the test fail, not time out."""
    pytest.importorskip("onnxruntime")
    import threading

    from mrefibrosis.model.segmenter_settings import SegmenterSettings
    from mrefibrosis.reading import exam_loader

    built, order = threading.Event(), []
    real_build_exam, real_build = exam_loader.build_exam, SegmenterSettings.build

    def build_exam(*args, **kwargs):
        exam = real_build_exam(*args, **kwargs)
        order.append("exam")
        built.set()
        return exam

    def build(self, *args, **kwargs):
        assert built.wait(20), "the model was waited for before the first exam was read"
        order.append("model")
        return real_build(self, *args, **kwargs)

    monkeypatch.setattr(exam_loader, "build_exam", build_exam)
    monkeypatch.setattr(SegmenterSettings, "build", build)
    assert main(["-q", "segment", str(ge_exam.path), "--out", str(tmp_path / "seg"), "--runtime", "onnx"]) == 0
    assert order == ["exam", "model"] and (tmp_path / "seg" / "roi.seg.nrrd").exists()
