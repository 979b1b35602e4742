"""All-or-nothing writing of result files: a failed run leaves no half-written output."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError


class StagedOutputs:
    """Files are written into a hidden staging folder inside the output folder, then renamed into place."""

    def __init__(self, out_dir: Path, staging: Path):
        self.out_dir = out_dir
        self.staging = staging
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        """Where to write `name` now; it lands in out_dir only if the whole run succeeds."""
        if "/" in name or "\\" in name or name.startswith(".") or "\x00" in name:
            raise OutputError(f"refusing output name {name!r}")
        self.names.append(name)
        return self.staging / name


@contextmanager
def staged_outputs(out_dir: str | os.PathLike) -> Iterator[StagedOutputs]:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".mrefibrosis-partial-", dir=out))
    except OSError as exc:
        raise OutputError(f"cannot create output folder {out} ({exc.strerror or exc}); choose a writable --out.") from None
    staged = StagedOutputs(out, staging)
    try:
        yield staged
        for name in staged.names:
            src = staging / name
            if src.exists():
                os.replace(src, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


_UMASK = os.umask(0)  # read once at import, while single-threaded (os.umask can only be read by setting it)
os.umask(_UMASK)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a single file through a temporary name in the same folder, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results follow the user's umask like any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
