"""The engine in a child process that the panel can watch and cancel, without Qt.

Why a child process: segmentation takes seconds to minutes on a CPU and must not freeze Slicer.
Why not QProcess: under PythonQt its output comes back as a QByteArray without the buffer protocol,
and Slicer's `PythonSlicer` is a launcher that starts the real interpreter as its own child and
forwards no signal, so killing the process Qt knows leaves the work running. This runner reads the
merged output on a thread, parses progress lines, reports a failure to start at once, and cancels
by ending the whole process tree. The widget only calls `start`, then `poll` from a QTimer.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

PROGRESS_PREFIX = "progress "  # "progress 0.40 segmenting": what `mrefibrosis segment --progress` prints
ENGINE_DIR = Path(__file__).resolve().parent.parent  # the folder that holds mrefibrosis/ beside MREFibrosisLib/


class RunState(StrEnum):
    NOT_STARTED = "not started"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    FAILED_TO_START = "failed to start"


class RunnerStartError(RuntimeError):
    """The child could not be started (no interpreter, no permission); the message is one line."""


@dataclass
class RunnerUpdate:
    """What happened since the last poll: new output lines, the latest progress, the state now."""

    lines: list[str] = field(default_factory=list)
    progress: float | None = None
    message: str | None = None
    state: RunState = RunState.RUNNING

    @property
    def finished(self) -> bool:
        return self.state not in (RunState.RUNNING, RunState.NOT_STARTED)


def python_interpreter() -> str:
    """Slicer's `PythonSlicer` when there is one (it sets up Slicer's library paths), else this Python."""
    found = shutil.which("PythonSlicer")
    return found or sys.executable


def engine_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the engine folder first on PYTHONPATH, so `python -m mrefibrosis`
    finds the engine next to this module in a developer checkout as in an Extensions Manager
    install; unbuffered UTF-8 output, so progress lines arrive as they are printed."""
    env = dict(os.environ if base is None else base)
    parts = [str(ENGINE_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(ENGINE_DIR)]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def parse_progress(line: str) -> tuple[float, str] | None:
    """(fraction 0-1, message) from a progress line, None for any other line."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    parts = line[len(PROGRESS_PREFIX) :].split(" ", 1)
    try:
        fraction = float(parts[0])
    except ValueError:
        return None
    if not 0.0 <= fraction <= 1.0:
        return None
    return fraction, parts[1].strip() if len(parts) > 1 else ""


def _descendants(pid: int) -> list[int]:
    """Every process below pid, deepest last; psutil when installed, /proc on Linux otherwise."""
    try:
        import psutil

        try:
            return [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    except ImportError:
        pass
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the ppid follows the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        import psutil

        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
    except ImportError:
        pass
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _end_tree(root: int, pids: list[int], force: bool) -> None:
    """Ask (SIGTERM) or force (SIGKILL) the root's process group and each listed process to end;
    on Windows, taskkill over the tree."""
    if os.name == "posix":
        sig = signal.SIGKILL if force else signal.SIGTERM
        try:
            os.killpg(root, sig)
        except OSError:
            pass
        for pid in pids:
            _signal(pid, sig)
    else:
        subprocess.run(["taskkill", *(["/F"] if force else []), "/T", "/PID", str(root)], capture_output=True, check=False)


class PollingRunner:
    """What both runners (child process, thread) share on top of their own poll()."""

    def poll(self) -> RunnerUpdate:
        raise NotImplementedError

    def wait(self, timeout: float) -> RunnerUpdate:
        """Poll until finished or timeout seconds passed (scripts and tests; the GUI uses a timer)."""
        deadline = time.monotonic() + timeout
        update = self.poll()
        lines = list(update.lines)
        while not update.finished and time.monotonic() < deadline:
            time.sleep(0.02)
            update = self.poll()
            lines.extend(update.lines)
        update.lines = lines
        return update


class ProcessRunner(PollingRunner):
    """One child process: start, poll, cancel. Not thread-safe; call from one (the GUI) thread."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None, keep_lines: int = 5000):
        self.argv = [str(a) for a in argv]
        self.env = dict(env) if env is not None else None
        self.cwd = str(cwd) if cwd is not None else None
        self.keep_lines = keep_lines
        self.state = RunState.NOT_STARTED
        self.returncode: int | None = None
        self.output: list[str] = []
        self.progress: float | None = None
        self.started_at: float | None = None
        self.seconds: float | None = None
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the child; raise RunnerStartError with a one-line reason when it cannot start."""
        if self.state is not RunState.NOT_STARTED:
            raise RuntimeError("a runner starts once; make a new one")
        kwargs = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # its own process group, so cancel reaches the whole tree
        else:
            kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                **kwargs,
            )
        except OSError as exc:
            self.state = RunState.FAILED_TO_START
            reason = exc.strerror or type(exc).__name__
            raise RunnerStartError(f"could not start {Path(self.argv[0]).name}: {reason}; check the Python interpreter setting.") from None
        self.state = RunState.RUNNING
        self.started_at = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="mrefibrosis-runner-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in iter(self._proc.stdout.readline, b""):
            self._lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
        self._proc.stdout.close()

    def poll(self) -> RunnerUpdate:
        """New lines and the state; the state turns final only after the output is read to its end."""
        update = RunnerUpdate(state=self.state)
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            update.lines.append(line)
            parsed = parse_progress(line)
            if parsed is not None:
                self.progress, update.message = parsed
        self.output.extend(update.lines)
        del self.output[: max(0, len(self.output) - self.keep_lines)]
        update.progress = self.progress
        if self.state is RunState.RUNNING and self._proc is not None:
            code = self._proc.poll()
            if code is not None and (self._reader is None or not self._reader.is_alive()) and self._lines.empty():
                self._finish(RunState.SUCCEEDED if code == 0 else RunState.FAILED, code)
        update.state = self.state
        return update

    def _finish(self, state: RunState, code: int | None) -> None:
        self.state = state
        self.returncode = code
        if self.started_at is not None:
            self.seconds = time.monotonic() - self.started_at

    def cancel(self, grace_seconds: float = 1.0) -> bool:
        """End the child and everything it started; True when none of them is left running.

        Terminate first (the engine leaves no half-written output on SIGTERM: results are staged),
        kill what is left after grace_seconds."""
        if self.state is not RunState.RUNNING or self._proc is None:
            return True
        root = self._proc.pid
        tree = [root, *_descendants(root)]
        _end_tree(root, tree, force=False)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and any(_alive(p) for p in tree):
            self._proc.poll()
            time.sleep(0.02)
        tree = list(dict.fromkeys(tree + _descendants(root)))
        leftover = [p for p in tree if _alive(p)]
        if leftover:
            _end_tree(root, leftover, force=True)
        try:
            self._proc.wait(timeout=max(grace_seconds, 1.0))
        except subprocess.TimeoutExpired:
            pass
        self._finish(RunState.CANCELLED, self._proc.returncode)
        end = time.monotonic() + 1.0
        while time.monotonic() < end and any(_alive(p) for p in tree):
            time.sleep(0.02)
        return not any(_alive(p) for p in tree)

    def error_line(self) -> str:
        """The child's own one-line error ("error: ..."), else its last line, for the error dialog."""
        self.poll()
        for line in reversed(self.output):
            if line.startswith("error"):
                return line
        last = next((ln for ln in reversed(self.output) if ln.strip()), "")
        return last or f"the engine stopped with exit code {self.returncode}"
