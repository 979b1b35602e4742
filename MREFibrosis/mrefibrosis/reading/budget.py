"""Bounded work per exam: bytes parsed, values decoded and seconds spent.

Why: a folder is untrusted input. A file with a valid header followed by gigabytes of zeros, a
research export with 4096 x 4096 raw images, or thousands of junk files must not stall a PACS
worker or exhaust its memory. One budget is opened per exam read (`exam_budget`); the file reader
charges it, and going over raises a one-line ReadBudgetError. The caps are settings
(`ReadOptions.budget`), documented in docs/reading-exams.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass, replace

from ..errors import MREFibrosisError

MB = 1 << 20


class ReadBudgetError(MREFibrosisError):
    """The exam needs more bytes, pixels or time than the caps allow."""


@dataclass(frozen=True)
class BudgetLimits:
    max_file_bytes: int = 256 * MB  # a file larger than this is not read at all
    max_header_bytes: int = 16 * MB  # DICOM elements before the pixel data, per file
    max_parsed_bytes_per_exam: int = 2048 * MB  # headers and pixel data read, all files of one exam
    # pixel values decoded, all series of one exam, held in memory at once: the real GE exam decodes
    # about 9 M (raw phase and magnitude 4.2 M, waves 4.2 M, maps 0.5 M); four 4096 x 4096 slices
    # (67 M, 3 GB while converted) are refused before the first is decoded
    max_decoded_values_per_exam: int = 32 * MB
    max_seconds_per_exam: float = 120.0
    # the folder scan before an exam is chosen: its headers are not the exam's, so unrelated files
    # beside a good exam cannot spend the exam's budget; bounded on its own
    max_scan_bytes: int = 32 * 1024 * MB
    max_scan_seconds: float = 600.0

    def for_scan(self) -> BudgetLimits:
        """The caps of a folder scan: the scan's own bytes and seconds, the same per-file caps."""
        return replace(self, max_parsed_bytes_per_exam=self.max_scan_bytes, max_seconds_per_exam=self.max_scan_seconds)


class ExamBudget:
    """What one exam read has used so far; raises once a cap is passed."""

    def __init__(self, limits: BudgetLimits, what: str = "the exam"):
        self.limits = limits
        self.what = what
        self.cap = "per-exam" if what == "the exam" else "folder-scan"
        self.started = time.monotonic()
        self.parsed_bytes = 0
        self.decoded_values = 0

    def check_time(self) -> None:
        spent = time.monotonic() - self.started
        if spent > self.limits.max_seconds_per_exam:
            raise ReadBudgetError(
                f"reading {self.what} took over {self.limits.max_seconds_per_exam:g} s (the {self.cap} time cap); "
                "the folder holds too much or damaged data: point at the MRE series only, or raise the cap."
            )

    def charge_bytes(self, n: int) -> None:
        self.parsed_bytes += int(n)
        if self.parsed_bytes > self.limits.max_parsed_bytes_per_exam:
            raise ReadBudgetError(
                f"the files of {self.what} add up to over {self.limits.max_parsed_bytes_per_exam // MB} MB (the {self.cap} cap); "
                "point at the MRE series only, or raise the cap."
            )
        self.check_time()

    def charge_values(self, n: int, what: str) -> None:
        if self.decoded_values + int(n) > self.limits.max_decoded_values_per_exam:
            raise ReadBudgetError(
                f"{what}: decoding it would pass the {self.cap} cap of {self.limits.max_decoded_values_per_exam // MB} M pixel values; "
                "MRE series are far smaller: point at the MRE series only, or raise the cap."
            )
        self.decoded_values += int(n)
        self.check_time()


_current: contextvars.ContextVar[ExamBudget | None] = contextvars.ContextVar("mrefibrosis_exam_budget", default=None)


def current_budget() -> ExamBudget | None:
    return _current.get()


@contextlib.contextmanager
def exam_budget(limits: BudgetLimits, fresh: bool = False, what: str = "the exam"):
    """Open a budget for one exam read (nested reads share the outer one unless `fresh`: the exam
    read after a folder scan starts from zero)."""
    outer = _current.get()
    if outer is not None and not fresh:
        yield outer
        return
    budget = ExamBudget(limits, what)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
