"""Segment in the Slicer module with only onnxruntime: a thread with the loaded shipped model, the
same ROI file as the CLI's child process, Cancel that stops it, no torch (real MRML via slicer-core)."""

import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from mrefibrosis.cli import main as cli_main  # noqa: E402
from mrefibrosis.model.inference import DEFAULT_MODEL  # noqa: E402
from mrefibrosis.model.onnx_format import graph_path_for  # noqa: E402
from mrefibrosis.results.roi_files import read_roi  # noqa: E402
from MREFibrosisLib import MREFibrosisLogic  # noqa: E402
from MREFibrosisLib.process_runner import RunState  # noqa: E402
from MREFibrosisLib.segment_nodes import find_roi_segment, segment_mask  # noqa: E402
from MREFibrosisLib.thread_runner import ThreadRunner  # noqa: E402

pytestmark = pytest.mark.skipif(not graph_path_for(DEFAULT_MODEL).exists(), reason="the shipped model has no ONNX graph")


@pytest.fixture(scope="module")
def sim_exam(tmp_path_factory):
    from mrefibrosis.synth.cohort import generate_cohort

    root = tmp_path_factory.mktemp("thread_exam")
    generate_cohort(root, 1, seed=31, vendor="ge", stage_mix=None, workers=1)
    return root / "exam_00000"


def test_segment_runs_on_a_thread_and_matches_the_cli(scene, sim_exam, tmp_path):
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, sim_exam / "dicom")
    assert logic.segments_in_process(device="cpu")
    timings = []
    for n in range(2):  # the second click reuses the loaded segmenter
        job = logic.start_segment(nodes.stiffness, device="cpu", work_dir=tmp_path / f"job{n}")
        assert isinstance(job.runner, ThreadRunner)
        update = job.runner.wait(120)
        assert update.state is RunState.SUCCEEDED, job.runner.output[-3:]
        assert update.progress == 1.0 and any("segmenting" in line for line in job.runner.output)
        timings.append(job.runner.seconds)
        seg = logic.finish_segment(scene, job)
    assert len(logic._segmenters) == 1
    mask = segment_mask(seg, find_roi_segment(seg), nodes.stiffness)
    # the CLI's `segment` (what the child process runs) writes the same ROI
    assert cli_main(["-q", "segment", str(sim_exam / "dicom"), "--out", str(tmp_path / "cli"), "--device", "cpu"]) == 0
    from mrefibrosis.reading.exam_loader import read_exam

    geometry = read_exam(sim_exam / "dicom").geometry
    cli_roi = read_roi(tmp_path / "cli" / "roi.seg.nrrd", geometry)
    thread_roi = read_roi(tmp_path / "job1" / "roi.seg.nrrd", geometry)
    assert np.array_equal(cli_roi, thread_roi) and thread_roi.sum() > 0
    assert mask.sum() == thread_roi.sum()
    if "torch" not in sys.modules:  # the compatibility run has no torch at all: nothing asked for it
        assert not any(m.split(".")[0] in ("torch", "segmentation_models_pytorch") for m in sys.modules)


def test_child_process_can_be_forced(monkeypatch):
    monkeypatch.setenv("MREFIBROSIS_SEGMENT_IN", "child")
    assert not MREFibrosisLogic.segments_in_process(device="cpu")
    monkeypatch.delenv("MREFIBROSIS_SEGMENT_IN")
    assert MREFibrosisLogic.segments_in_process(device="cpu")


def test_cancel_stops_the_thread_and_imports_nothing(scene, sim_exam, tmp_path):
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, sim_exam / "dicom")
    logic.segmenter(device="cpu", runtime="onnx")  # loaded, as after a first Segment
    job = logic.start_segment(nodes.stiffness, device="cpu", work_dir=tmp_path / "job")
    while not any("segmenting" in line for line in job.runner.output) and job.runner.poll().state is RunState.RUNNING:
        time.sleep(0.005)
    t0 = time.perf_counter()
    assert job.runner.cancel() is True
    assert time.perf_counter() - t0 < 2.0
    assert job.runner.poll().state is RunState.CANCELLED
    with pytest.raises(RuntimeError, match="cancelled"):
        logic.finish_segment(scene, job)
    assert not (tmp_path / "job" / "roi.seg.nrrd").exists()
    assert nodes.stiffness.GetNodeReference("MREFibrosis.roi") is None


def test_thread_runner_reports_errors_as_one_line_and_cancels_through_its_hook():
    def failing(progress, cancelled):
        progress(0.5, "half way")
        raise ValueError("the exam folder is empty; choose another")

    r = ThreadRunner(failing)
    r.start()
    update = r.wait(10)
    assert update.state is RunState.FAILED and update.progress == 0.5
    assert r.error_line() == "error: the exam folder is empty; choose another"

    stop = threading.Event()

    def blocking(progress, cancelled):
        stop.wait(30)
        return "late"

    r = ThreadRunner(blocking, cancel_hook=stop.set)
    r.start()
    assert r.cancel(grace_seconds=5) is True
    assert r.poll().state is RunState.CANCELLED and r.result is None


def test_panel_margins_cut_the_roi_alike_on_the_thread_and_in_the_child_process(scene, sim_exam, tmp_path):
    """The panel's margin spin boxes reach both ways Segment runs: the thread's ROI with margins off
    equals `mrefibrosis segment` run with the child process's arguments, and differs from the default."""
    from mrefibrosis.reading.exam_loader import read_exam

    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, sim_exam / "dicom")
    off = logic.roi_margins(0, 0)
    rois = {}
    for name, margins in (("default", None), ("off", off)):
        job = logic.start_segment(nodes.stiffness, device="cpu", work_dir=tmp_path / name, margins=margins)
        assert job.runner.wait(120).state is RunState.SUCCEEDED, job.runner.output[-3:]
        rois[name] = job.roi_file
    argv = logic.segment_arguments(job.identity, tmp_path / "child", device="cpu", margins=off)
    assert argv[:2] == ["-m", "mrefibrosis"] and argv[-4:] == ["--roi-edge-mm", "0", "--roi-driver-mm", "0"]
    assert "--roi-edge-mm" not in logic.segment_arguments(job.identity, tmp_path / "x", device="cpu")
    assert cli_main(["-q", *argv[2:]]) == 0
    geometry = read_exam(sim_exam / "dicom").geometry
    child = read_roi(tmp_path / "child" / "roi.seg.nrrd", geometry)
    thread_off, thread_default = (read_roi(rois[k], geometry) for k in ("off", "default"))
    assert np.array_equal(child, thread_off)
    assert thread_off.sum() > thread_default.sum() > 0  # the margins only ever take pixels away
    assert len(logic._segmenters) == 2  # one loaded segmenter per set of margins
    with pytest.raises(ValueError, match="between 0 and 100 mm"):
        logic.roi_margins(150, 25)
