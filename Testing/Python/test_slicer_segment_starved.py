"""Segment under the conditions of a real Slicer: the main thread holds Python's GIL while it idles in
the Qt event loop and runs Python only in the panel's 200 ms timer callback.

PythonQt's thread support is off by default and neither CTK nor Slicer releases the GIL around the
event loop, so a Python worker thread in Slicer runs only during those short callbacks. pytest waits
in `time.sleep`, which releases the GIL, so an ordinary test cannot see it. Here the idle loop is
emulated by a C `usleep` called through `ctypes.PyDLL`, which keeps the GIL held during the call,
and the Lib is driven exactly as the panel's timer drives it (poll, then idle). The default Segment
path (a child process) must finish within 1.5x of its free-running time; the opt-in thread path is
shown to crawl, which is why it is not the default.
"""

import ctypes
import time

import pytest

pytest.importorskip("onnxruntime")

from mrefibrosis.model.inference import DEFAULT_MODEL  # noqa: E402
from mrefibrosis.model.onnx_format import graph_path_for  # noqa: E402
from mrefibrosis.model.segmenter_settings import SegmenterSettings
from MREFibrosisLib import MREFibrosisLogic  # noqa: E402
from MREFibrosisLib.process_runner import RunState  # noqa: E402
from MREFibrosisLib.thread_runner import ThreadRunner  # noqa: E402

pytestmark = pytest.mark.skipif(not graph_path_for(DEFAULT_MODEL).exists(), reason="the shipped model has no ONNX graph")

POLL_S = 0.2  # the panel's POLL_MS

_usleep = ctypes.PyDLL(None).usleep  # PyDLL: the GIL stays held for the whole call, as in Qt's event loop
_usleep.argtypes = [ctypes.c_uint]


def idle_holding_the_gil(seconds: float) -> None:
    _usleep(int(seconds * 1e6))


def drive(job, idle, limit_s: float):
    """The panel's timer: poll (a short Python callback), then idle; (seconds, last update)."""
    t0 = time.monotonic()
    while True:
        update = job.poll()
        if update.finished or time.monotonic() - t0 > limit_s:
            return time.monotonic() - t0, update
        idle(POLL_S)


@pytest.fixture(scope="module")
def sim_exam(tmp_path_factory):
    from mrefibrosis.synth.cohort import generate_cohort

    root = tmp_path_factory.mktemp("starved_exam")
    generate_cohort(root, 1, seed=31, vendor="ge", stage_mix=None, workers=1)
    return root / "exam_00000"


def test_the_emulated_idle_loop_really_starves_python_threads():
    """A pure-Python counter thread gets almost no time while the main thread idles in usleep."""
    import threading

    counts = {"free": 0, "starved": 0}
    stop = threading.Event()
    key = ["free"]

    def count():
        while not stop.is_set():
            counts[key[0]] += 1

    worker = threading.Thread(target=count, daemon=True)
    worker.start()
    time.sleep(0.6)
    key[0] = "starved"
    idle_holding_the_gil(0.6)
    stop.set()
    worker.join(2)
    assert counts["starved"] < counts["free"] / 20, counts


def test_default_segment_is_a_child_process_that_keeps_its_speed_when_starved(scene, sim_exam, tmp_path):
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, sim_exam / "dicom")
    assert not logic.segments_in_process(SegmenterSettings(device="cpu"))
    seconds = {}
    for mode, idle in (("free", time.sleep), ("starved", idle_holding_the_gil)):
        job = logic.start_segment(nodes.stiffness, SegmenterSettings(device="cpu"), work_dir=tmp_path / mode)
        assert not isinstance(job.runner, ThreadRunner)
        seconds[mode], update = drive(job, idle, limit_s=180)
        assert update.state is RunState.SUCCEEDED, job.runner.output[-3:]
        assert logic.finish_segment(scene, job) is not None
    print(f"child process Segment: free {seconds['free']:.2f} s, starved {seconds['starved']:.2f} s")
    assert seconds["starved"] <= 1.5 * seconds["free"], seconds


def test_the_opt_in_thread_path_crawls_when_starved(scene, sim_exam, monkeypatch):
    """The reason the thread is not the default: the same Segment on a thread takes several times
    longer when the main thread holds the GIL between polls (a warm segmenter, so only the
    segmentation itself is timed)."""
    monkeypatch.setenv("MREFIBROSIS_SEGMENT_IN", "thread")
    logic = MREFibrosisLogic()
    nodes = logic.load_exam(scene, sim_exam / "dicom")
    assert logic.segments_in_process(SegmenterSettings(device="cpu"))
    logic.segmenter(SegmenterSettings(device="cpu"))  # loaded once, as after a first click
    free_job = logic.start_segment(nodes.stiffness, SegmenterSettings(device="cpu"))
    free, update = drive(free_job, time.sleep, limit_s=120)
    assert isinstance(free_job.runner, ThreadRunner) and update.state is RunState.SUCCEEDED
    starved_job = logic.start_segment(nodes.stiffness, SegmenterSettings(device="cpu"))
    starved, update = drive(starved_job, idle_holding_the_gil, limit_s=max(10 * free, 20))
    starved_job.runner.cancel()
    print(f"thread Segment: free {free:.2f} s, starved {starved:.2f} s ({update.state.value})")
    assert starved > 3 * free, (free, starved)
