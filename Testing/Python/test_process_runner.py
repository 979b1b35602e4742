"""The panel's background runner with real child processes: progress, success, failure, a process
tree cancelled as a whole, a child that cannot start, and the engine found through the environment."""

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from MREFibrosisLib.process_runner import (
    ENGINE_DIR,
    ProcessRunner,
    RunnerStartError,
    RunState,
    _alive,
    engine_environment,
    parse_progress,
)


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_progress_lines_stream_and_success(tmp_path):
    argv = _script(
        tmp_path,
        """
        import sys, time
        for i in range(1, 5):
            print(f"progress {i / 4:.2f} step {i} of 4", flush=True)
            time.sleep(0.05)
        print("INFO: done")
        """,
    )
    runner = ProcessRunner(argv)
    runner.start()
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        update = runner.poll()
        if update.message:
            seen.append((update.progress, update.message))
        if update.finished:
            break
        time.sleep(0.01)
    assert runner.state is RunState.SUCCEEDED and runner.returncode == 0
    assert seen[-1] == (1.0, "step 4 of 4")
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)
    assert runner.output[-1] == "INFO: done"
    assert runner.seconds is not None and runner.seconds > 0


def test_failure_reports_the_childs_error_line(tmp_path):
    argv = _script(
        tmp_path,
        """
        import sys
        print("INFO: reading the exam")
        print("error: no elastogram series found; check the folder.", file=sys.stderr)
        sys.exit(2)
        """,
    )
    runner = ProcessRunner(argv)
    runner.start()
    update = runner.wait(20)
    assert update.state is RunState.FAILED and runner.returncode == 2
    assert runner.error_line() == "error: no elastogram series found; check the folder."


def test_failure_without_error_line_names_the_last_line_or_exit_code(tmp_path):
    runner = ProcessRunner([sys.executable, "-c", "import sys; sys.exit(7)"])
    runner.start()
    runner.wait(20)
    assert runner.state is RunState.FAILED
    assert "exit code 7" in runner.error_line()


@pytest.mark.parametrize("with_psutil", [True, False], ids=["psutil", "proc-fallback"])
def test_cancel_ends_child_and_grandchild(tmp_path, monkeypatch, with_psutil):
    """A launcher-like child (as PythonSlicer is) starting the real worker as a grandchild; Slicer
    installs psutil with the module, the /proc fallback serves a Python without it."""
    if not with_psutil:
        monkeypatch.setitem(sys.modules, "psutil", None)
    pid_file = tmp_path / "grandchild.pid"
    argv = _script(
        tmp_path,
        f"""
        import subprocess, sys, time
        # its own session: out of the child's process group, so only a tree walk finds it
        g = subprocess.Popen([sys.executable, "-c", "import time\\nwhile True: time.sleep(0.1)"], start_new_session=True)
        open({str(pid_file)!r}, "w").write(str(g.pid))
        print("progress 0.10 started", flush=True)
        g.wait()
        """,
    )
    runner = ProcessRunner(argv)
    runner.start()
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.02)
    grandchild = int(pid_file.read_text())
    child = runner.pid
    assert _alive(child) and _alive(grandchild)
    t0 = time.monotonic()
    assert runner.cancel() is True
    elapsed = time.monotonic() - t0
    assert not _alive(child) and not _alive(grandchild)
    assert elapsed < 2.0, f"cancel took {elapsed:.2f} s"
    assert runner.state is RunState.CANCELLED and runner.poll().finished


def test_cancel_kills_a_child_that_ignores_sigterm(tmp_path):
    argv = _script(
        tmp_path,
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("progress 0.5 stubborn", flush=True)
        while True:
            time.sleep(0.1)
        """,
    )
    runner = ProcessRunner(argv)
    runner.start()
    deadline = time.monotonic() + 20
    while runner.poll().message is None and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = runner.pid
    t0 = time.monotonic()
    assert runner.cancel(grace_seconds=0.5) is True
    assert time.monotonic() - t0 < 2.0 and not _alive(pid)


def test_a_child_that_cannot_start_is_reported_at_once(tmp_path):
    runner = ProcessRunner([str(tmp_path / "no-such-python"), "-m", "mrefibrosis"])
    with pytest.raises(RunnerStartError) as err:
        runner.start()
    assert "no-such-python" in str(err.value) and "\n" not in str(err.value)
    assert runner.state is RunState.FAILED_TO_START
    assert runner.poll().finished


def test_engine_found_through_the_environment_from_any_folder(tmp_path):
    """`python -m mrefibrosis` from a folder where only PYTHONPATH can find the engine."""
    env = engine_environment({k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ENGINE_DIR)
    code = "import mrefibrosis, pathlib; print(pathlib.Path(mrefibrosis.__file__).resolve())"
    # -I would drop PYTHONPATH; -S keeps site-packages (and any installed copy of the engine) out
    runner = ProcessRunner([sys.executable, "-S", "-c", code], env=env, cwd=tmp_path)
    runner.start()
    runner.wait(30)
    assert runner.state is RunState.SUCCEEDED, runner.output
    assert Path(runner.output[-1]) == ENGINE_DIR / "mrefibrosis" / "__init__.py"


@pytest.mark.parametrize(
    "line, expected",
    [
        ("progress 0.25 reading the exam", (0.25, "reading the exam")),
        ("progress 1", (1.0, "")),
        ("progress 1.5 too far", None),
        ("progress x bad", None),
        ("INFO: progress 0.5", None),
    ],
)
def test_parse_progress(line, expected):
    assert parse_progress(line) == expected
