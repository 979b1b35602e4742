"""The Slicer build installs only the files its CMakeLists names: keep that list complete."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_module_cmakelists_lists_every_engine_file():
    text = (ROOT / "MREFibrosis" / "CMakeLists.txt").read_text()
    listed = set(re.findall(r"^\s+(mrefibrosis/\S+)$", text, re.M))
    package = ROOT / "MREFibrosis" / "mrefibrosis"
    present = {f"mrefibrosis/{p.relative_to(package).as_posix()}" for p in package.rglob("*") if p.suffix in (".py", ".json") and "__pycache__" not in p.parts}
    assert present - listed == set(), "add these to MREFibrosis/CMakeLists.txt"
    assert listed - present == set(), "these are listed but missing"


def test_engine_imports_no_slicer_or_qt():
    package = ROOT / "MREFibrosis" / "mrefibrosis"
    for f in package.rglob("*.py"):
        src = f.read_text()
        assert not re.search(r"^\s*(import|from)\s+(slicer|qt|vtk|ctk)\b", src, re.M), f
