"""Segment in the Slicer module with only onnxruntime, on the opt-in thread path (the default is the
child process: test_slicer_segment_starved.py): the loaded shipped model on the kept Exam, the same
ROI as the CLI's child process, Cancel that stops it, no torch (real MRML via slicer-core)."""

import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from mrefibrosis.cli import main as cli_main  # noqa: E402
from mrefibrosis.model.inference import DEFAULT_MODEL  # noqa: E402
from mrefibrosis.model.margin_settings import RoiMargins
from mrefibrosis.model.onnx_format import graph_path_for  # noqa: E402
from mrefibrosis.model.segmenter_settings import SegmenterSettings
from mrefibrosis.results.roi_files import read_roi  # noqa: E402
from MREFibrosisLib import MREFibrosisLogic  # noqa: E402
from MREFibrosisLib.process_runner import RunState  # noqa: E402
from MREFibrosisLib.segment_nodes import find_roi_segment, segment_mask  # noqa: E402
from MREFibrosisLib.thread_runner import ThreadRunner  # noqa: E402

pytestmark = pytest.mark.skipif(not graph_path_for(DEFAULT_MODEL).exists(), reason="the shipped model has no ONNX graph")


@pytest.fixture(autouse=True)
def thread_opt_in(monkeypatch):
    monkeypatch.setenv("MREFIBROSIS_SEGMENT_IN", "thread")


@pytest.fixture(scope="module")
def sim_exam(tmp_path_factory):
    from mrefibrosis.synth.cohort import generate_cohort

    root = tmp_path_factory.mktemp("thread_exam")
    generate_cohort(root, 1, seed=31, vendor="ge", stage_mix=None, workers=1)
    return root / "exam_00000"


def test_segment_runs_on_a_thread_and_matches_the_cli(scene, sim_exam, tmp_path):
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, sim_exam / "dicom")
    assert logic.segments_in_process(SegmenterSettings(device="cpu"))
    timings = []
    for n in range(2):  # the second click reuses the loaded segmenter
        job = logic.start_segment(nodes.stiffness, SegmenterSettings(device="cpu"), work_dir=tmp_path / f"job{n}")
        assert isinstance(job.runner, ThreadRunner)
        update = job.runner.wait(120)
        assert update.state is RunState.SUCCEEDED, job.runner.output[-3:]
        assert update.progress == 1.0 and any("segmenting" in line for line in job.runner.output)
        timings.append(job.runner.seconds)
        seg = logic.finish_segment(scene, job)
    assert len(logic._segmenters) == 1
    mask = segment_mask(seg, find_roi_segment(seg), nodes.stiffness)
    assert not (tmp_path / "job1" / "roi.seg.nrrd").exists()  # the thread hands the ROI over in memory
    # the CLI's `segment` (what the child process runs) writes the same ROI
    assert cli_main(["-q", "segment", str(sim_exam / "dicom"), "--out", str(tmp_path / "cli"), "--device", "cpu"]) == 0
    from mrefibrosis.reading.exam_loader import read_exam

    geometry = read_exam(sim_exam / "dicom").geometry
    cli_roi = read_roi(tmp_path / "cli" / "roi.seg.nrrd", geometry)
    assert np.array_equal(cli_roi, mask) and mask.sum() > 0
    if "torch" not in sys.modules:  # the compatibility run has no torch at all: nothing asked for it
        assert not any(m.split(".")[0] in ("torch", "segmentation_models_pytorch") for m in sys.modules)


def test_child_process_is_the_default_and_the_thread_an_opt_in(monkeypatch):
    assert MREFibrosisLogic.segments_in_process(SegmenterSettings(device="cpu"))
    for value in ("child", "", "yes"):
        monkeypatch.setenv("MREFIBROSIS_SEGMENT_IN", value)
        assert not MREFibrosisLogic.segments_in_process(SegmenterSettings(device="cpu"))
    monkeypatch.delenv("MREFIBROSIS_SEGMENT_IN")
    assert not MREFibrosisLogic.segments_in_process(SegmenterSettings(device="cpu"))


def test_cancel_stops_the_thread_and_imports_nothing(scene, sim_exam, tmp_path):
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, sim_exam / "dicom")
    logic.segmenter(SegmenterSettings(device="cpu"))  # loaded, as after a first Segment
    job = logic.start_segment(nodes.stiffness, SegmenterSettings(device="cpu"), work_dir=tmp_path / "job")
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
    off = logic.panel_settings(None, True, 0, 0).margins
    rois = {}
    for name, margins in (("default", None), ("off", off)):
        job = logic.start_segment(nodes.stiffness, SegmenterSettings(device="cpu", margins=margins or RoiMargins()), work_dir=tmp_path / name)
        assert job.runner.wait(120).state is RunState.SUCCEEDED, job.runner.output[-3:]
        seg = logic.finish_segment(scene, job)
        rois[name] = segment_mask(seg, find_roi_segment(seg), nodes.stiffness)
    argv = logic.segment_arguments(job.identity, tmp_path / "child", SegmenterSettings(device="cpu", margins=off))
    assert argv[:2] == ["-m", "mrefibrosis"] and argv[-4:] == ["--roi-edge-mm", "0", "--roi-driver-mm", "0"]
    assert argv[argv.index("--device") + 1] == "cpu"
    assert cli_main(["-q", *argv[2:]]) == 0
    geometry = read_exam(sim_exam / "dicom").geometry
    child = read_roi(tmp_path / "child" / "roi.seg.nrrd", geometry)
    thread_off, thread_default = rois["off"], rois["default"]
    assert np.array_equal(child, thread_off)
    assert thread_off.sum() > thread_default.sum() > 0  # the margins only ever take pixels away
    assert len(logic._segmenters) == 1  # the margins are post-processing: one loaded network
    with pytest.raises(ValueError, match="between 0 and 100 mm"):
        logic.panel_settings(None, True, 150, 25)


def test_memory_stays_flat_over_margin_values():
    """The panel's spin boxes pass through many margin values; each used to load its own ONNX Runtime
    session (+315, +569, +838, +1062 MiB for 1-4 values). Now they share one loaded network."""
    import psutil

    logic = MREFibrosisLogic()
    process = psutil.Process()
    first = logic.segmenter(SegmenterSettings(device="cpu", margins=RoiMargins(10, 25)))
    after_one = process.memory_info().rss
    others = [logic.segmenter(SegmenterSettings(device="cpu", margins=RoiMargins(edge, 25))) for edge in (5, 6, 7, 8, 9, 11, 12)]
    grown_mib = (process.memory_info().rss - after_one) / 2**20
    assert len(logic._segmenters) == 1
    assert all(o.network is first.network for o in others) and {o.margins.liver_edge_mm for o in others} == {5, 6, 7, 8, 9, 11, 12}
    assert first.margins.liver_edge_mm == 10  # a margin change never alters another caller's segmenter
    assert grown_mib < 50, f"{grown_mib:.0f} MiB for 7 more margin values"
