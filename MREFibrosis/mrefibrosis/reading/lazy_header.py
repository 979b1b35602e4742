"""A DICOM file's dataset whose values are converted when first used, quietly and with our errors.

Why: pydicom reads a file's elements as raw bytes and converts a value when it is first asked for.
The reader once converted every header element at read time, so that a damaged value failed there
with a one-line error. That conversion was most of a folder scan: a real Siemens file holds over a
hundred elements of which the reader uses about forty (the real series' scan took 2.3 ms a file with
every value converted, 1.2 ms now). The elements the reader relies on are still converted at read
(`dicom_files.CONVERTED_AT_READ`: a damaged one rejects the file at the scan); `QuietHeader` converts
the others on first use with what eager conversion gave: a conversion neither warns nor logs
(pydicom's value warnings quote the value, which may be a patient's birth date or a UID), and a value
that cannot be converted raises `DicomReadError` naming the file, not a traceback from deep inside a
caller. Elements inside sequences are pydicom's own datasets and convert as pydicom does (as before).
`warnings.catch_warnings` is process-wide: two threads converting at the same moment may let each
other's warnings through (Python 3.11 has no per-thread warning filters); the log filter is per thread.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileDataset
from pydicom.tag import BaseTag, Tag

from ..errors import DicomReadError, MREFibrosisError


class _MutedInThisThread(logging.Filter):
    """Drops pydicom's log records while this thread reads or converts for us (a PACS worker's other
    threads, and Slicer's own DICOM browser, keep theirs)."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.local, "depth", 0)


_MUTE = _MutedInThisThread()
# a logger's filter sees only its own records, not its children's: pydicom's pixel modules log on
# loggers of their own
for _name in ("pydicom", "pydicom.pixels.decoders.base", "pydicom.pixels.encoders.base", "pydicom.pixels.utils"):
    logging.getLogger(_name).addFilter(_MUTE)


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """pydicom's warnings and log records silenced for this block (reading hostile files warns a lot,
    and a warning may quote an identifying value)."""
    _MUTE.local.depth = getattr(_MUTE.local, "depth", 0) + 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        _MUTE.local.depth -= 1


class QuietHeader(FileDataset):
    """A FileDataset whose raw elements are converted on first use inside `quiet_pydicom`, a failure
    raised as DicomReadError. Elements already converted cost one dictionary look-up more."""

    def __getitem__(self, key):  # type: ignore[override]  # pydicom's overloads: slice or tag
        if isinstance(key, slice):
            return super().__getitem__(key)
        try:
            tag = key if isinstance(key, int) else Tag(key)
        except Exception:
            return super().__getitem__(key)  # pydicom's own KeyError for what is not a tag
        if not isinstance(self._dict.get(tag), RawDataElement):
            return super().__getitem__(tag)
        with quiet_pydicom():
            try:
                return super().__getitem__(tag)
            except MREFibrosisError:
                raise
            except Exception as exc:  # pydicom raises many types for values it cannot convert
                name = Path(str(self.filename)).name if self.filename else "a DICOM file"
                raise DicomReadError(f"{name}: element {BaseTag(tag)} cannot be read ({type(exc).__name__}); the file is damaged, re-export it.") from None


def as_quiet_header(ds: FileDataset) -> QuietHeader:
    """The same dataset object, converting lazily from now on (no copy: its elements stay where they are)."""
    ds.__class__ = QuietHeader
    return ds  # type: ignore[return-value]


def quiet_header(filename: str, elements: Dataset, like: FileDataset, implicit: bool, little: bool) -> QuietHeader:
    """A new QuietHeader for `filename` holding `elements`, with `like`'s preamble, file meta and encoding."""
    ds = QuietHeader(filename, elements, preamble=like.preamble, file_meta=like.file_meta, is_implicit_VR=implicit, is_little_endian=little)
    ds.set_original_encoding(implicit, little, like.original_character_set)
    return ds
