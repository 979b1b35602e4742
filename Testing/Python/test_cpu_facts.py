"""The CPU facts both the runtime probe and the int8 default read, from a known /proc/cpuinfo."""

from __future__ import annotations

import builtins
import io
import sys

from mrefibrosis.model import cpu_facts as facts

CPUINFO = """processor\t: 0
model name\t: Example CPU @ 2.0GHz
flags\t\t: fpu sse2 avx2 avx512f avx512_vnni
processor\t: 1
model name\t: Example CPU @ 2.0GHz
flags\t\t: fpu sse2 avx2 avx512f avx512_vnni
"""


def _read(text, monkeypatch):
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: io.StringIO(text) if str(path) == "/proc/cpuinfo" else real_open(path, *a, **k))
    facts.cpu_facts.cache_clear()
    try:
        return facts.cpu_facts()
    finally:
        facts.cpu_facts.cache_clear()


def test_name_and_int8_flags(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    got = _read(CPUINFO, monkeypatch)
    assert got.name == "Example CPU @ 2.0GHz" and got.int8_dot_products
    arm = _read("processor\t: 0\nFeatures\t: fp asimd asimddp\n", monkeypatch)
    assert arm.int8_dot_products and arm.name  # no model name: the platform's words
    assert not _read(CPUINFO.replace("avx512_vnni", ""), monkeypatch).int8_dot_products
