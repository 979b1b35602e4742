"""The panel's poll timer stops before a finished Segment is handled, so an error dialog's nested
event loop cannot re-enter the poll and open a dialog every 200 ms (MREFibrosisLib/job_watch)."""

import pytest

from MREFibrosisLib.job_watch import JobWatch
from MREFibrosisLib.process_runner import RunnerUpdate, RunState


class FakeTimer:
    """A QTimer's start/stop; `fire` is one timeout, delivered only while the timer is active."""

    def __init__(self):
        self.active = False
        self.slot = None

    def start(self):
        self.active = True

    def stop(self):
        self.active = False

    def fire(self):
        if self.active:
            self.slot()


class FailingJob:
    def __init__(self, polls_before_end=2):
        self.polls = 0
        self.left = polls_before_end

    def poll(self):
        self.polls += 1
        self.left -= 1
        state = RunState.FAILED if self.left <= 0 else RunState.RUNNING
        return RunnerUpdate(state=state, lines=["error: the model file is damaged"] if state is RunState.FAILED else [])


def test_a_failed_job_opens_one_dialog_whatever_the_nested_loop_does():
    timer = FakeTimer()
    watch = JobWatch(timer.start, timer.stop)
    dialogs, timer_active_at_dialog = [], []

    def on_finished(job, update):
        # errorDisplay's modal dialog spins a nested event loop: the timer's timeouts keep coming
        dialogs.append(update.state)
        timer_active_at_dialog.append(timer.active)
        for _ in range(25):  # 5 s of a 200 ms timer
            timer.fire()

    timer.slot = lambda: watch.tick(lambda update: None, on_finished)
    job = FailingJob()
    watch.watch(job)
    for _ in range(10):
        timer.fire()
    assert dialogs == [RunState.FAILED]
    assert timer_active_at_dialog == [False]
    assert not watch.busy and job.polls == 2


def test_the_old_poll_order_storms_and_the_watch_does_not():
    """The fake nested loop does reproduce the storm when the timer is stopped only after the dialog
    (the panel's former order), so the test above cannot pass by accident."""
    timer = FakeTimer()
    job, dialogs = FailingJob(polls_before_end=1), []

    def old_poll():
        update = job.poll()
        if update.finished:
            if len(dialogs) < 50:
                dialogs.append(1)
                for _ in range(3):
                    timer.fire()
            timer.stop()

    timer.slot = old_poll
    timer.start()
    timer.fire()
    assert len(dialogs) == 50


def test_progress_reaches_the_panel_and_a_second_job_waits():
    timer = FakeTimer()
    watch = JobWatch(timer.start, timer.stop)
    seen = []
    job = FailingJob(polls_before_end=3)
    watch.watch(job)
    with pytest.raises(RuntimeError, match="already running"):
        watch.watch(FailingJob())
    timer.slot = lambda: watch.tick(seen.append, lambda job, update: None)
    for _ in range(5):
        timer.fire()
    assert [u.state for u in seen] == [RunState.RUNNING, RunState.RUNNING, RunState.FAILED]
    assert watch.detach() is None and not timer.active
