"""A job on a thread of this process, with the ProcessRunner's surface (start, poll, cancel).

Why: with ONNX Runtime the segmenter loads in a fraction of a second and computes without holding
the GIL, so Slicer can keep one loaded segmenter and run each Segment on a thread: no cold start per
click. Cancel reaches the running computation through the work's own cancel hook (ONNX Runtime's
terminate flag), so it ends within one slice. Torch runs keep using the child process, the only way
to stop a torch forward pass.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from mrefibrosis.errors import printable

from .process_runner import PollingRunner, RunnerUpdate, RunState

Progress = Callable[[float, str], None]


class JobCancelled(Exception):
    """Raised inside the work when cancel() was called."""


class ThreadRunner(PollingRunner):
    """Runs work(progress, cancelled) once on a daemon thread; poll() from the GUI thread."""

    def __init__(self, work: Callable[[Progress, Callable[[], bool]], object], cancel_hook: Callable[[], None] | None = None, name: str = "mrefibrosis-job"):
        self._work = work
        self._cancel_hook = cancel_hook
        self._name = name
        self._events: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.state = RunState.NOT_STARTED
        self.output: list[str] = []
        self.progress: float | None = None
        self.result: object = None
        self.started_at: float | None = None
        self.seconds: float | None = None
        self.returncode: int | None = None

    def start(self) -> None:
        if self.state is not RunState.NOT_STARTED:
            raise RuntimeError("a runner starts once; make a new one")
        self.state = RunState.RUNNING
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        def progress(fraction: float, message: str) -> None:
            self._events.put(("progress", float(fraction), message))

        try:
            result = self._work(progress, self._cancel.is_set)
        except BaseException as exc:  # reported through poll(); the GUI shows the one line
            if self._cancel.is_set():
                self._events.put(("end", RunState.CANCELLED, None))
            else:
                self._events.put(("line", f"error: {printable(exc)}" if str(exc) else f"error: {type(exc).__name__}", None))
                self._events.put(("end", RunState.FAILED, None))
            return
        if self._cancel.is_set():
            self._events.put(("end", RunState.CANCELLED, None))
        else:
            self._events.put(("end", RunState.SUCCEEDED, result))

    def poll(self) -> RunnerUpdate:
        update = RunnerUpdate(state=self.state)
        while True:
            try:
                kind, value, extra = self._events.get_nowait()
            except queue.Empty:
                break
            if kind == "progress":
                self.progress, update.message = value, extra
                update.lines.append(f"progress {value:.3f} {extra}")
            elif kind == "line":
                update.lines.append(value)
            elif self.state is RunState.RUNNING:  # "end"
                self.state, self.result = value, extra
                self.returncode = 0 if value is RunState.SUCCEEDED else 1
                self.seconds = time.monotonic() - (self.started_at or time.monotonic())
        self.output.extend(update.lines)
        update.progress = self.progress
        update.state = self.state
        return update

    def cancel(self, grace_seconds: float = 2.0) -> bool:
        """Ask the work to stop; True when the thread ended within grace_seconds. Its result is dropped."""
        if self.state is not RunState.RUNNING:
            return True
        self._cancel.set()
        if self._cancel_hook is not None:
            self._cancel_hook()
        if self._thread is not None:
            self._thread.join(grace_seconds)
        self.state = RunState.CANCELLED
        self.seconds = time.monotonic() - (self.started_at or time.monotonic())
        return self._thread is None or not self._thread.is_alive()

    def error_line(self) -> str:
        self.poll()
        for line in reversed(self.output):
            if line.startswith("error"):
                return line
        return f"the segmentation {self.state.value}"
