"""Where the segmenter's weights live, and how they get there when they were not shipped.

Why: the weights file is 64 MB, and the Slicer Extension Index clones the extension's repository
and wants it under 100 MB; a repository that carries every model generation in its history cannot
stay under that (ADR 0007). So the extension ships the model's *checksum* (SHA256SUMS) and its two
small ONNX graphs, and fetches the weights once, with the user's consent, from a release URL, or
takes them from a file for computers without internet. A fetched file is accepted only when its
SHA-256 equals the shipped one, so neither a broken download nor another model can take its place.

Order in which the default model is found: $MREFIBROSIS_MODEL; the weights beside the package
(a source checkout, the wheel); the user's model folder ($MREFIBROSIS_MODEL_DIR, else the
platform's per-user data folder) where `mrefibrosis fetch-model` installs them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import MREFibrosisError
from .model_file import CHECKSUMS, published_checksum
from .onnx_format import graph_path_for, int8_graph_path_for

MODEL_NAME = "mrefibrosis-unet-resnext50.mrefmodel"
PACKAGED_DIR = Path(__file__).resolve().parent / "weights"
URL_ENV, DIR_ENV = "MREFIBROSIS_MODEL_URL", "MREFIBROSIS_MODEL_DIR"
RELEASE_URL = "https://github.com/mrefibrosis/SlicerMREFibrosis/releases/download/model-{sha12}/" + MODEL_NAME
MAX_MODEL_BYTES = 512 * 1024 * 1024  # a larger answer is not our model: stop reading
CHUNK = 1 << 20


class ModelFetchError(MREFibrosisError):
    """The weights could not be fetched or did not match the shipped checksum."""


def user_model_dir() -> Path:
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "mrefibrosis" / "models"


def shipped_checksum() -> str | None:
    """The SHA-256 the package publishes for its model (present even where the weights are not)."""
    return published_checksum(PACKAGED_DIR / MODEL_NAME)


def installed_model() -> Path | None:
    """The default model's weights where they are installed, or None (fetch them)."""
    for folder in (PACKAGED_DIR, user_model_dir()):
        path = folder / MODEL_NAME
        if path.is_file():
            return path
    return None


def release_url() -> str:
    checksum = shipped_checksum() or "unknown"
    return os.environ.get(URL_ENV) or RELEASE_URL.format(sha12=checksum[:12])


def _copy_stream(read: Callable[[int], bytes], out, total_hint: int | None, progress: Callable[[int, int | None], None] | None) -> str:
    digest, done = hashlib.sha256(), 0
    while chunk := read(CHUNK):
        done += len(chunk)
        if done > MAX_MODEL_BYTES:
            raise ModelFetchError(f"the download is larger than {MAX_MODEL_BYTES >> 20} MB, so it is not the model: check {URL_ENV} or the address given.")
        digest.update(chunk)
        out.write(chunk)
        if progress is not None:
            progress(done, total_hint)
    return digest.hexdigest()


def fetch_model(
    source: str | os.PathLike | None = None,
    target_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Install the default model's weights into target_dir (the user's model folder) from a URL
    (default: the release address) or a local file, beside copies of the package's graphs and
    SHA256SUMS, and return its path. The file is written under a temporary name and renamed into
    place only after its SHA-256 matched the shipped one: nothing half-written is ever found."""
    expected = shipped_checksum()
    if expected is None:
        raise ModelFetchError(f"this installation has no {CHECKSUMS} for {MODEL_NAME}, so a fetched file could not be verified: reinstall MREFibrosis.")
    target = Path(target_dir) if target_dir is not None else user_model_dir()
    src = str(source) if source is not None else release_url()
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd, partial = tempfile.mkstemp(prefix=f".{MODEL_NAME}.", suffix=".partial", dir=target)
    except OSError as exc:
        raise ModelFetchError(f"cannot write to the model folder {target} ({exc.strerror or exc}): set {DIR_ENV} to a writable folder.") from None
    partial = Path(partial)
    try:
        with os.fdopen(fd, "wb") as out:
            got = _fetch_into(src, out, progress, timeout_s)
        if got != expected:
            raise ModelFetchError(f"{src} is not this version's model (SHA-256 {got[:12]}..., expected {expected[:12]}...): nothing was installed.")
        _install_companions(target)
        final = target / MODEL_NAME
        os.replace(partial, final)
        return final
    finally:
        partial.unlink(missing_ok=True)


def _fetch_into(src: str, out, progress, timeout_s: float) -> str:
    if "://" not in src:
        path = Path(src)
        try:
            with open(path, "rb") as fh:
                return _copy_stream(fh.read, out, path.stat().st_size, progress)
        except OSError as exc:
            raise ModelFetchError(f"cannot read {path} ({exc.strerror or exc}): give the model file ({MODEL_NAME}) you were given.") from None
    if not src.startswith(("https://", "http://")):
        raise ModelFetchError(f"{src}: only http(s) addresses or a file path can be fetched from.")
    import urllib.error  # here: every command imports this module, few download
    import urllib.request

    try:
        with urllib.request.urlopen(src, timeout=timeout_s) as answer:  # noqa: S310 (scheme checked above)
            length = answer.headers.get("Content-Length")
            return _copy_stream(answer.read, out, int(length) if length and length.isdigit() else None, progress)
    except urllib.error.HTTPError as exc:
        raise ModelFetchError(f"{src} answered {exc.code} {exc.reason}: check the address, or fetch the file elsewhere and use --from FILE.") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelFetchError(f"cannot download {src} ({reason}): check the network or proxy, or fetch the file elsewhere and use --from FILE.") from None


def _install_companions(target: Path) -> None:
    """The graphs and SHA256SUMS beside the weights, as the runtimes expect them."""
    if target.resolve() == PACKAGED_DIR:
        return
    weights = PACKAGED_DIR / MODEL_NAME
    for companion in (graph_path_for(weights), int8_graph_path_for(weights), PACKAGED_DIR / CHECKSUMS):
        if companion.is_file():
            shutil.copyfile(companion, target / companion.name)
