#!/usr/bin/env python3
"""Write Testing/Data/package_index_cp312.json: the files PyPI holds for every package the Slicer
module installs on first use, for the versions its requirement lines allow.

Why: a requirement that has no wheel for one platform Slicer 5.12 supports (onnxruntime 1.30 on
Intel Macs) fails only on that user's machine. Testing/Python/test_first_use_requirements.py checks
every line against this snapshot offline; run this script again (it needs the internet) whenever a
requirements file changes, and commit the result.

Usage: python scripts/snapshot_package_index.py
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "MREFibrosis" / "Resources"
FILES = ("requirements.txt", "requirements-onnx.txt", "requirements-model.txt")
OUT = ROOT / "Testing" / "Data" / "package_index_cp312.json"
KEEP_TAGS = ("cp312", "abi3", "py3-none", "py2.py3-none")


def requirement_lines() -> list[str]:
    lines = []
    for name in FILES:
        for line in (RESOURCES / name).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                lines.append(line)
    return lines


def allowed_somewhere(version: str, requirements: list[Requirement]) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return any(r.specifier.contains(version, prereleases=False) for r in requirements)


def main() -> int:
    by_name: dict[str, list[Requirement]] = {}
    for line in requirement_lines():
        req = Requirement(line)
        by_name.setdefault(req.name.lower(), []).append(req)
    snapshot: dict[str, dict[str, list[str]]] = {}
    for name, reqs in sorted(by_name.items()):
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=60) as response:
            releases = json.load(response)["releases"]
        snapshot[name] = {
            version: sorted(
                f["filename"] for f in files if not f.get("yanked") and (f["filename"].endswith(".tar.gz") or any(t in f["filename"] for t in KEEP_TAGS))
            )
            for version, files in releases.items()
            if allowed_somewhere(version, reqs)
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {', '.join(f'{n} ({len(v)} versions)' for n, v in snapshot.items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
