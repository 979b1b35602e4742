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
from dataclasses import dataclass

from ..errors import MREFibrosisError

MB = 1 << 20


class ReadBudgetError(MREFibrosisError):
    """The exam needs more bytes, pixels or time than the caps allow."""


@dataclass(frozen=True)
class BudgetLimits:
    max_file_bytes: int = 256 * MB  # a file larger than this is not read at all
    max_header_bytes: int = 16 * MB  # DICOM elements before the pixel data, per file
    max_parsed_bytes_per_exam: int = 2048 * MB  # headers and pixel data read, all files of one exam
    max_decoded_values_per_exam: int = 96 * MB  # pixel values decoded (the elastogram needs ~0.3 M)
    max_seconds_per_exam: float = 120.0


class ExamBudget:
    """What one exam read has used so far; raises once a cap is passed."""

    def __init__(self, limits: BudgetLimits):
        self.limits = limits
        self.started = time.monotonic()
        self.parsed_bytes = 0
        self.decoded_values = 0

    def check_time(self) -> None:
        spent = time.monotonic() - self.started
        if spent > self.limits.max_seconds_per_exam:
            raise ReadBudgetError(
                f"reading the exam took over {self.limits.max_seconds_per_exam:g} s (the per-exam time cap); "
                "the folder holds too much or damaged data: point at the MRE series only, or raise the cap."
            )

    def charge_bytes(self, n: int) -> None:
        self.parsed_bytes += int(n)
        if self.parsed_bytes > self.limits.max_parsed_bytes_per_exam:
            raise ReadBudgetError(
                f"the exam's files add up to over {self.limits.max_parsed_bytes_per_exam // MB} MB (the per-exam cap); "
                "point at the MRE series only, or raise the cap."
            )
        self.check_time()

    def charge_values(self, n: int, what: str) -> None:
        if self.decoded_values + int(n) > self.limits.max_decoded_values_per_exam:
            raise ReadBudgetError(
                f"{what}: decoding it would pass the per-exam cap of {self.limits.max_decoded_values_per_exam // MB} M pixel values; "
                "MRE series are far smaller: point at the MRE series only, or raise the cap."
            )
        self.decoded_values += int(n)
        self.check_time()


_current: contextvars.ContextVar[ExamBudget | None] = contextvars.ContextVar("mrefibrosis_exam_budget", default=None)


def current_budget() -> ExamBudget | None:
    return _current.get()


@contextlib.contextmanager
def exam_budget(limits: BudgetLimits):
    """Open a budget for one exam read (nested reads share the outer one)."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    budget = ExamBudget(limits)
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
