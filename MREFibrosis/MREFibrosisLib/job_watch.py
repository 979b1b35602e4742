"""Polling one background job from a GUI timer, with the timer stopped before the job's end is handled.

Why: Slicer's error dialog (`slicer.util.errorDisplay`) is modal and spins a nested event loop. If
the poll timer still runs while it is open, each timeout re-enters the poll, finds the same failed
job and opens another dialog: one Segment failure gave a dialog every 200 ms. Here the job is
detached and the timer stopped first, so a nested loop finds nothing to do. Qt-free: the panel
passes its QTimer's start and stop, tests pass plain callables.
"""

from __future__ import annotations

from collections.abc import Callable

from .process_runner import RunnerUpdate


class JobWatch:
    """One job at a time; `tick` is the timer's slot."""

    def __init__(self, start_timer: Callable[[], None], stop_timer: Callable[[], None]):
        self._start_timer = start_timer
        self._stop_timer = stop_timer
        self.job = None

    @property
    def busy(self) -> bool:
        return self.job is not None

    def watch(self, job) -> None:
        if self.job is not None:
            raise RuntimeError("a segmentation is already running: wait for it or press Cancel.")
        self.job = job
        self._start_timer()

    def detach(self):
        """Stop watching (Cancel, scene close) and return the job, or None."""
        job, self.job = self.job, None
        self._stop_timer()
        return job

    def tick(self, on_update: Callable[[RunnerUpdate], None], on_finished: Callable[[object, RunnerUpdate], None]) -> None:
        """Poll the job; when it has ended, detach it and stop the timer, then hand it to on_finished
        (which may open dialogs). A tick with no job only stops the timer."""
        job = self.job
        if job is None:
            self._stop_timer()
            return
        update = job.poll()
        on_update(update)
        if not update.finished:
            return
        self.detach()
        on_finished(job, update)
