"""Named arrays in one flat byte layout that numpy, torch and ONNX Runtime all read without pickle.

Why a layout of our own: the weights must have one source of truth that the torch path (state
dict), the ONNX Runtime path (external initializers at byte offsets) and a torch-free reader can all
use. The layout is a one-line JSON table followed by the raw little-endian arrays, each starting at
a multiple of ALIGN bytes *of the whole file* (so that a view of the file gives aligned arrays):

    <prefix bytes (the model file's magic and checksum lines)>
    {"arrays": [{"name", "dtype", "shape", "offset", "nbytes"}, ...], "metadata": {...}}\n
    <zero padding to a multiple of ALIGN>   <- data start; offsets are relative to it
    <arrays>
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

ALIGN = 64
DTYPES = {"float32", "float16", "int64", "int32", "uint8", "bool"}


class TensorStoreError(ValueError):
    """The byte layout is damaged or describes arrays this reader does not know."""


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass(frozen=True)
class StoredArray:
    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int  # absolute byte offset in the whole file
    nbytes: int


def encode(arrays: dict[str, np.ndarray], metadata: dict, prefix_len: int) -> bytes:
    """The payload that follows `prefix_len` bytes of file prefix."""
    table, offset = [], 0
    arrays = {name: np.asarray(a, order="C") for name, a in arrays.items()}  # (not ascontiguousarray: it makes scalars 1-d)
    for name, a in arrays.items():
        if a.dtype.name not in DTYPES:
            raise TensorStoreError(f"array {name} has dtype {a.dtype.name}, which the model file cannot hold")
        table.append({"name": name, "dtype": a.dtype.name, "shape": list(a.shape), "offset": offset, "nbytes": int(a.nbytes)})
        offset = _align(offset + a.nbytes)
    head = json.dumps({"arrays": table, "metadata": metadata}, separators=(",", ":")).encode() + b"\n"
    data_start = _align(prefix_len + len(head))
    out = bytearray(head + bytes(data_start - prefix_len - len(head)))
    for entry, a in zip(table, arrays.values()):
        out += bytes(data_start - prefix_len + entry["offset"] - len(out))
        out += a.astype(np.dtype(entry["dtype"]).newbyteorder("<"), copy=False).tobytes()
    return bytes(out)


def decode(raw: memoryview | bytes, prefix_len: int) -> tuple[dict, list[StoredArray]]:
    """(metadata, array table with absolute offsets) of a whole file; checks every array lies inside it."""
    raw = memoryview(raw)
    end = bytes(raw[prefix_len : prefix_len + (1 << 24)]).find(b"\n")
    if end < 0:
        raise TensorStoreError("no array table")
    try:
        head = json.loads(bytes(raw[prefix_len : prefix_len + end]))
        table, metadata = head["arrays"], head["metadata"]
    except (ValueError, KeyError, TypeError):
        raise TensorStoreError("unreadable array table") from None
    data_start = _align(prefix_len + end + 1)
    out, seen, spans = [], set(), []
    for e in table:
        try:
            name, dtype = str(e["name"]), str(e["dtype"])
            shape = tuple(int(s) for s in e["shape"])
            offset, nbytes = int(e["offset"]), int(e["nbytes"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise TensorStoreError("unreadable array entry") from None
        if dtype not in DTYPES or name in seen or any(s < 0 for s in shape) or offset < 0 or offset % ALIGN:
            raise TensorStoreError(f"array {name}: unknown dtype, repeated name, or bad shape/offset")
        count = 1
        for s in shape:  # Python integers: no wrap-around
            count *= s
        if nbytes != count * np.dtype(dtype).itemsize or data_start + offset + nbytes > len(raw):
            raise TensorStoreError(f"array {name} does not fit the file")
        seen.add(name)
        spans.append((offset, offset + nbytes, name))
        out.append(StoredArray(name, dtype, shape, data_start + offset, nbytes))
    spans.sort()
    for (_, end_a, a), (start_b, _, b) in zip(spans, spans[1:]):
        if start_b < end_a:
            raise TensorStoreError(f"arrays {a} and {b} overlap")
    return metadata, out


def view(raw: memoryview | bytes, entry: StoredArray) -> np.ndarray:
    """A read-only array over the file bytes (no copy)."""
    a = np.frombuffer(raw, dtype=np.dtype(entry.dtype).newbyteorder("<"), count=int(np.prod(entry.shape, dtype=np.int64)), offset=entry.offset)
    return a.reshape(entry.shape)
