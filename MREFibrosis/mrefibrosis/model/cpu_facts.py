"""What this CPU is, read once: its name (the runtime probe's cache key) and its instruction flags
(whether an int8 graph pays). One reader of /proc/cpuinfo instead of one per question."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from functools import lru_cache

INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})  # x86 VNNI, AMX; Arm dot-product


@dataclass(frozen=True)
class CpuFacts:
    name: str
    flags: frozenset[str]

    @property
    def int8_dot_products(self) -> bool:
        if sys.platform == "darwin":
            return platform.machine() == "arm64"  # Apple silicon has the Arm dot-product instructions
        return bool(self.flags & INT8_DOT_FLAGS)


@lru_cache(maxsize=1)
def cpu_facts() -> CpuFacts:
    name, flags = "", set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name") and not name:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith(("flags", "Features")):
                    flags.update(line.split(":", 1)[1].split())
    except OSError:
        pass
    return CpuFacts(name or platform.processor() or platform.machine(), frozenset(flags))
