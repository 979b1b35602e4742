"""One self-contained model file: weights plus metadata, protected by a SHA-256.

Layout: a magic line, the hex SHA-256 of the payload, then the payload. Format 2 (this version
writes it): the metadata and the arrays in the pickle-free layout of ``tensor_store``, readable
without torch, which the ONNX Runtime graph (``onnx_graph``) also reads its weights from: one source
of truth for both runtimes. Format 1 (``torch.save`` of metadata and a state dict) is still read,
with ``weights_only=True`` (torch >= 2.6, where that mode runs no pickled code: CVE-2025-32434).

The checksum inside the file catches corruption, not tampering: whoever rewrites the payload can
rewrite it too. So the whole file is also checked against a checksum published outside it: the
``SHA256SUMS`` file next to it (the shipped model's, also printed in docs/model-card.md), or the one a
site passes (``--model-sha256``).
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import MREFibrosisError
from . import tensor_store

MAGIC = b"MREFIBROSIS-MODEL 2\n"
MAGIC_V1 = b"MREFIBROSIS-MODEL 1\n"
PREFIX_LEN = len(MAGIC) + 65  # magic, 64 hex digits and a newline
SUFFIX = ".mrefmodel"
CHECKSUMS = "SHA256SUMS"  # "<sha256 of the whole file>  <file name>" lines, as sha256sum writes them


class ModelFileError(MREFibrosisError):
    """A model file is missing, corrupt, tampered with, or does not match this software."""


@dataclass
class Preprocessing:
    """How exams become network input; a model is refused when this does not match the code."""

    kind: str = "confidence_masked_elastogram"
    window_kpa: tuple[float, float] = (0.0, 8.0)  # window 400/800 in 10 Pa units
    hatch_period_px: int = 8
    hatch_width_px: int = 1
    hatch_cross: bool = True
    hatch_value: float = 1.0  # display maximum
    input_size: int = 512
    resize: str = "bilinear"
    channels: tuple[str, ...] = ("elastogram",)  # optionally "magnitude"
    fit: str = "stretch"  # "stretch": each axis to input_size; "pad": zero-pad to a centred square first (keeps the aspect ratio)


@dataclass
class ModelInfo:
    architecture: str
    preprocessing: Preprocessing
    base_channels: int = 64
    threshold: float = 0.5
    min_piece_cm2: float = 1.0
    validated_precisions: tuple[str, ...] = ("fp32",)
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    software_version: str = __version__
    model_version: str = "untrained"
    outputs: tuple[str, ...] = ("roi",)  # ("roi", "liver"): the network also maps the liver

    @property
    def has_liver(self) -> bool:
        return "liver" in self.outputs

    def to_dict(self) -> dict:
        d = asdict(self)
        d["preprocessing"]["window_kpa"] = list(d["preprocessing"]["window_kpa"])
        d["preprocessing"]["channels"] = list(d["preprocessing"]["channels"])
        d["validated_precisions"] = list(d["validated_precisions"])
        d["outputs"] = list(d["outputs"])
        return d

    @staticmethod
    def from_dict(d: dict) -> ModelInfo:
        pre = dict(d["preprocessing"])
        pre["window_kpa"] = tuple(pre["window_kpa"])
        pre["channels"] = tuple(pre["channels"])
        known = set(Preprocessing.__dataclass_fields__)
        unknown = set(pre) - known
        if unknown:
            raise ModelFileError(f"model preprocessing uses {sorted(unknown)}, which this version does not know; update MREFibrosis.")
        out = dict(d)
        out["preprocessing"] = Preprocessing(**pre)
        out["validated_precisions"] = tuple(d.get("validated_precisions", ("fp32",)))
        out["outputs"] = tuple(d.get("outputs", ("roi",)))
        return ModelInfo(**{k: v for k, v in out.items() if k in ModelInfo.__dataclass_fields__})


SUPPORTED_PREPROCESSING = {"confidence_masked_elastogram"}
SUPPORTED_CHANNELS = {"elastogram", "magnitude"}
SUPPORTED_OUTPUTS = {("roi",), ("roi", "liver")}
SUPPORTED_FITS = ("stretch", "pad")


def _numpy_state(model, half: bool) -> dict[str, np.ndarray]:
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if v.is_floating_point():
            v = v.half() if half else v.float()
        out[k] = v.numpy()
    return out


def save_model(path: str | os.PathLike, model, info: ModelInfo, half: bool = True) -> str:
    """Write the model file (format 2) atomically; returns its payload SHA-256."""
    import json

    metadata = json.loads(json.dumps(info.to_dict(), default=str))  # plain types only
    return write_model_arrays(path, _numpy_state(model, half), metadata)


def write_model_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict) -> str:
    payload = tensor_store.encode(arrays, metadata, PREFIX_LEN)
    digest = hashlib.sha256(payload).hexdigest()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as fh:
        fh.write(MAGIC + digest.encode() + b"\n" + payload)
    os.replace(tmp, path)
    return digest


def published_checksum(path: Path) -> str | None:
    """The whole-file SHA-256 that a SHA256SUMS file next to `path` lists for it, if any."""
    sums = path.parent / CHECKSUMS
    if not sums.is_file():
        return None
    for line in sums.read_text(encoding="ascii", errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            return parts[0].lower()
    return None


def publishes_checksums(path: Path) -> bool:
    return (path.parent / CHECKSUMS).is_file()


def read_verified(path: Path, expected_sha256: str | None, what: str = "model file", hint: str = "pass an existing --model FILE") -> tuple[bytes, bool]:
    """(the file's bytes, whether a checksum vouched for them) after checking them against
    expected_sha256 or the SHA256SUMS next to it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {what} {path} ({exc.strerror or exc}); {hint}.") from None
    expected = (expected_sha256 or "").strip().lower() or published_checksum(path)
    if expected and hashlib.sha256(raw).hexdigest() != expected:
        source = "the checksum given" if expected_sha256 else f"its published checksum ({CHECKSUMS})"
        raise ModelFileError(f"{path.name}: the file does not match {source}; it was modified or damaged: install the model again.")
    return raw, bool(expected)


@dataclass
class ModelFile:
    """A verified model file: metadata, and its arrays as read-only numpy views of `raw`."""

    info: ModelInfo
    arrays: dict[str, np.ndarray]
    sha256: str  # of the payload
    raw: bytes  # the whole file (format 2: what ONNX Runtime reads its external initializers from)
    version: int

    def torch_state(self) -> dict:
        import torch

        return {k: torch.from_numpy(np.array(v)) for k, v in self.arrays.items()}


def load_model_file(path: str | os.PathLike, expected_sha256: str | None = None) -> ModelFile:
    """Read and verify a model file: the checksum inside it, and the whole file's against
    expected_sha256 or the published SHA256SUMS next to it. Format 2 needs no torch."""
    path = Path(path)
    raw, whole_file_checked = read_verified(path, expected_sha256)
    magic = next((m for m in (MAGIC, MAGIC_V1) if raw.startswith(m)), None)
    if magic is None:
        raise ModelFileError(f"{path.name} is not an MREFibrosis model file; pass a {SUFFIX} file written by 'mrefibrosis train'.")
    newline = raw.find(b"\n", len(magic))
    head = raw[len(magic) : newline] if newline > 0 else b""
    payload = memoryview(raw)[newline + 1 :] if newline > 0 else memoryview(b"")
    recorded = head.decode("ascii", "replace")
    # a whole file equal to its published checksum holds the digest it was published with
    digest = recorded if whole_file_checked and len(recorded) == 64 else hashlib.sha256(payload).hexdigest()
    if recorded != digest:
        raise ModelFileError(f"{path.name}: SHA-256 mismatch, the file is corrupt or was modified; copy it again.")
    try:
        if magic == MAGIC:
            metadata, table = tensor_store.decode(raw, PREFIX_LEN)
            arrays = {e.name: tensor_store.view(raw, e) for e in table}
        else:
            metadata, arrays = _read_v1_payload(payload)
        info = ModelInfo.from_dict(metadata)
    except ModelFileError:
        raise
    except ImportError:
        raise ModelFileError(f"{path.name} uses the version-1 format, which needs torch to read; convert it with 'mrefibrosis export-onnx'.") from None
    except Exception as exc:
        raise ModelFileError(f"{path.name}: unreadable model payload ({type(exc).__name__}); copy the file again.") from None
    _check_supported(path, info)
    return ModelFile(info, arrays, digest, raw, 2 if magic == MAGIC else 1)


def _read_v1_payload(payload: memoryview) -> tuple[dict, dict[str, np.ndarray]]:
    """Format 1 (up to model rxliver-e11): a torch.save payload, loaded with weights_only=True."""
    import torch

    blob = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    return blob["metadata"], {k: v.numpy() for k, v in blob["state_dict"].items()}


def _check_supported(path: Path, info: ModelInfo) -> None:
    pre = info.preprocessing
    if pre.kind not in SUPPORTED_PREPROCESSING or not set(pre.channels) <= SUPPORTED_CHANNELS or pre.input_size % 32 or pre.fit not in SUPPORTED_FITS:
        raise ModelFileError(
            f"{path.name}: preprocessing {pre.kind}/{list(pre.channels)}/{pre.input_size}/{pre.fit} does not match this software; use a model made for MREFibrosis {__version__}."
        )
    if info.outputs not in SUPPORTED_OUTPUTS:
        raise ModelFileError(f"{path.name}: outputs {list(info.outputs)} are not known to this software; use a model made for MREFibrosis {__version__}.")


def read_model_file(path: str | os.PathLike, expected_sha256: str | None = None) -> tuple[ModelInfo, dict, str]:
    """(metadata, torch state dict, payload sha256) of a verified model file (for training and the torch runtime)."""
    mf = load_model_file(path, expected_sha256)
    return mf.info, mf.torch_state(), mf.sha256
