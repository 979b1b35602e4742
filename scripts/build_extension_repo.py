"""Build the Slicer extension's repository from this one: the files the Slicer build installs, the
top-level CMake, licence, README, resources and docs, without the model's weights and without
history (docs/adr/0007). The Extension Index clones that repository and wants it under 100 MB.

    python scripts/build_extension_repo.py OUT_DIR [--version TAG]

OUT_DIR must not exist. It becomes a git repository with one commit; the script prints its packed
size and refuses (exit 1) when it is over the limit. Publish the weights file of the same version
as the release asset `model_store.RELEASE_URL` names; `mrefibrosis fetch-model` checks it against the
SHA256SUMS this repository carries.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULE = ROOT / "MREFibrosis"
LIMIT_BYTES = 100 * 1024 * 1024  # the Extension Index's clone-size check
WEIGHTS_SUFFIX = ".mrefmodel"
TOP_LEVEL = ("CMakeLists.txt", "LICENSE", "README.md", "Resources", "docs")


def module_files() -> list[str]:
    """What MREFibrosis/CMakeLists.txt installs (the same reading as Testing/Python/test_packaging.py)."""
    text = (MODULE / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", "MREFibrosis")
    listed = re.findall(r"^\s+((?:mrefibrosis|MREFibrosisLib|Resources)/\S+|MREFibrosis\.py)$", text, re.M)
    return sorted(["CMakeLists.txt", *listed])


def tracked(paths: list[str]) -> list[str]:
    """Files git tracks under these top-level paths (no build outputs, caches or local data)."""
    out = subprocess.run(["git", "ls-files", "-z", "--", *paths], cwd=ROOT, capture_output=True, check=True).stdout
    return sorted(p for p in out.decode().split("\0") if p)


def build(out: Path, version: str) -> int:
    if out.exists():
        raise SystemExit(f"error: {out} exists: give a new folder.")
    files = [f for f in tracked(list(TOP_LEVEL)) + ["MREFibrosis/" + f for f in module_files()] if not f.endswith(WEIGHTS_SUFFIX)]
    for rel in sorted(set(files)):
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "MREFibrosis",
        "GIT_AUTHOR_EMAIL": "mrefibrosis@users.noreply.github.com",
        "GIT_COMMITTER_NAME": "MREFibrosis",
        "GIT_COMMITTER_EMAIL": "mrefibrosis@users.noreply.github.com",
    }

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=out, env=env, capture_output=True, text=True, check=True).stdout

    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("commit", "-q", "-m", f"MREFibrosis extension {version} (built from the engine repository; weights are fetched: docs/adr/0007)")
    git("gc", "-q", "--aggressive")
    size = sum(p.stat().st_size for p in (out / ".git").rglob("*") if p.is_file())
    print(f"{out}: {len(set(files))} files, repository {size / 1e6:.1f} MB (limit {LIMIT_BYTES / 1e6:.0f} MB)")
    return 0 if size < LIMIT_BYTES else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--version", default="main")
    args = parser.parse_args(argv)
    return build(args.out, args.version)


if __name__ == "__main__":
    sys.exit(main())
