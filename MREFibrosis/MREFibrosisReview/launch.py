"""What `mrefibrosis review` checks before it serves a page, and the guard that keeps one exam in
one review: each refusal is one line that says what to do.

Why here, apart from the page: these are the safety rules (loopback by default, a token for any
other address, a free port, one reviewer per exam) and they must hold, and be tested, without a
browser or trame installed.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import re
import secrets
import socket
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mrefibrosis.errors import MREFibrosisError

TOKEN_ENV = "MREFIBROSIS_REVIEW_TOKEN"
MIN_TOKEN_CHARS = 16
TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")  # URL-safe as it is: the address carries it unencoded


class ReviewError(MREFibrosisError):
    """A review page cannot be served as asked."""


@dataclass(frozen=True)
class ReviewRequest:
    study: Path
    host: str
    port: int
    token: str  # the page's access token: every browser connection must present it
    out_dir: Path
    roi_file: Path | None = None

    def url(self, port: int | None = None, with_token: bool = True) -> str:
        """The page's address as another computer reaches it: on all interfaces (0.0.0.0, ::) that is
        this computer's own network address, not the wildcard a browser cannot open."""
        host = reachable_host(self.host)
        host = f"[{host}]" if ":" in host else host
        address = f"http://{host}:{port if port is not None else self.port}/"
        return address + f"?secret={self.token}" if with_token else address


def reachable_host(host: str) -> str:
    if host not in ("0.0.0.0", "::", ""):
        return host
    family, probe = (socket.AF_INET6, "2001:db8::1") if host == "::" else (socket.AF_INET, "192.0.2.1")
    try:  # the address the default route leaves from; a UDP connect sends nothing
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))
            found = s.getsockname()[0]
        if not ipaddress.ip_address(found).is_unspecified:
            return found
    except OSError:
        pass
    return socket.getfqdn()


def read_token_file(path: str | os.PathLike) -> str:
    """The token from a file (its first line), so it never appears in the process list."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReviewError(
            f"cannot read the token file {path} ({getattr(exc, 'strerror', None) or exc}): give a readable text file holding the token."
        ) from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise ReviewError(f"the token file {path} is empty: write the token on its first line.")
    return token


def check_out_dir(out: Path) -> None:
    """Export must be able to write there: found out now, not after an hour of edits."""
    probe_dir = out
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise ReviewError(f"--out {out}: {probe_dir} is not a folder: give a folder Export can write to.")
    if not os.access(probe_dir, os.W_OK | os.X_OK):
        raise ReviewError(f"--out {out}: {probe_dir} is not writable: give a folder Export can write to.")
    try:
        with tempfile.TemporaryFile(dir=probe_dir):
            pass
    except OSError as exc:
        raise ReviewError(f"--out {out}: cannot write in {probe_dir} ({exc.strerror}): give a folder Export can write to.") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> str:
    """The page's token: the one given (argument or environment), else a random one on loopback.
    Another address without a token is refused: the page would show the exam to the network."""
    token = token or os.environ.get(TOKEN_ENV) or None
    if token is None:
        if not is_loopback(host):
            raise ReviewError(
                f"listening on {host} exposes the exam beyond this computer: give an access token with --token or {TOKEN_ENV}, or use --host 127.0.0.1."
            )
        return secrets.token_urlsafe(24)
    if len(token) < MIN_TOKEN_CHARS or not TOKEN_CHARS.fullmatch(token):
        raise ReviewError(
            f"the access token must be at least {MIN_TOKEN_CHARS} characters of A-Z, a-z, 0-9, _ and -: use e.g. the output of 'python -c \"import secrets; print(secrets.token_urlsafe(24))\"'."
        )
    return token


def check_port(host: str, port: int) -> None:
    """Refuse a port that is taken before minutes of loading, not after."""
    if not 0 <= port <= 65535:
        raise ReviewError(f"--port {port} is not a port number: give 1-65535, or 0 for any free port.")
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT leftovers are no refusal
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (98, 48):  # EADDRINUSE on Linux, macOS
                raise ReviewError(f"port {port} on {host} is in use: pass --port with a free port, or --port 0 for any.") from None
            raise ReviewError(f"cannot listen on {host}:{port} ({exc.strerror}): check --host and --port.") from None


def make_request(study: str | os.PathLike, host: str = "127.0.0.1", port: int = 8080, token: str | None = None, out_dir=None, roi_file=None) -> ReviewRequest:
    study = Path(study)
    if not study.is_dir():
        raise ReviewError(f"{study} is not a folder: give the folder that holds the exam's DICOM files.")
    if roi_file is not None and not Path(roi_file).is_file():
        raise ReviewError(f"ROI file {roi_file} does not exist: give a .seg.nrrd, labelmap or DICOM SEG file, or leave out --roi to run the segmenter.")
    token = resolve_token(host, token)
    check_port(host, port)
    out = Path(out_dir) if out_dir is not None else Path.cwd() / "mrefibrosis-review"
    check_out_dir(out)
    return ReviewRequest(study, host, port, token, out, Path(roi_file) if roi_file is not None else None)


class ExamLock:
    """One review of an exam at a time on this computer: a second page on the same exam (another
    reader, another tab's server) is refused instead of two sets of edits racing to one export.
    An OS file lock, so it is released whenever the process ends, even killed."""

    def __init__(self, exam_key: str, lock_dir: str | os.PathLike | None = None):
        self.folder = Path(lock_dir) if lock_dir is not None else Path(tempfile.gettempdir()) / "mrefibrosis-review-locks"
        self.path = self.folder / f"{exam_key}.lock"
        self.address_path = self.folder / f"{exam_key}.address"  # where the holder serves (no token)
        self._fd: int | None = None

    def _shared_folder(self) -> None:
        """A folder every reader of this computer can lock in (sticky, like /tmp), not a symlink."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            info = os.lstat(self.folder)
            if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
                raise ReviewError(f"{self.folder} is not a plain folder: remove it, then start the review again.")
            if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != 0o1777:
                os.chmod(self.folder, 0o1777)
        except OSError as exc:
            raise ReviewError(f"cannot use the review lock folder {self.folder} ({exc.strerror}): check its permissions.") from None

    def acquire(self) -> ExamLock:
        self._shared_folder()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as exc:
            raise ReviewError(f"cannot open the review lock {self.path} ({exc.strerror}): check the permissions of {self.folder}.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            where = self._running_address()
            at = f" at {where} (a browser that opened it reconnects there; else use the address that command printed)" if where else ""
            raise ReviewError(
                f"this exam is already open in another review page on this computer{at}: finish there, or stop that page's server first."
            ) from None
        self._fd = fd
        return self

    def publish_address(self, address: str) -> None:
        """Say where this page is served (no token), for a second `review` of the exam to print."""
        tmp = self.address_path.with_name(f".{self.address_path.name}.{os.getpid()}")
        try:
            tmp.write_text(address)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.address_path)
        except OSError:
            tmp.unlink(missing_ok=True)  # only a hint is lost

    def _running_address(self) -> str | None:
        try:
            text = self.address_path.read_text().strip()
        except OSError:
            return None
        return text if re.fullmatch(r"https?://[^\s?#]+/", text) else None

    def release(self) -> None:
        if self._fd is not None:
            self.address_path.unlink(missing_ok=True)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ExamLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
