"""The verdict on one measurement: a number a reader may report, with or without named warnings, or
`indeterminate` with the one-line reason a reader would write instead of a number."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    INDETERMINATE = "indeterminate"


def status_text(status: Status, reason: str | None, warnings: list[str]) -> str:
    """'ok', 'ok with warnings: a, b' or 'indeterminate: reason' — the same words in every output."""
    if status is Status.INDETERMINATE:
        return f"indeterminate: {reason}" if reason else "indeterminate"
    return f"ok with warnings: {', '.join(warnings)}" if warnings else "ok"
