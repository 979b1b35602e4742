"""The Slicer build installs only the files its CMakeLists names: keep that list complete, and keep
the panel's .ui file and parameter node in step."""

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "MREFibrosis"


def _listed() -> set:
    text = (MODULE / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", "MREFibrosis")
    return set(re.findall(r"^\s+((?:mrefibrosis|MREFibrosisLib|Resources)/\S+|MREFibrosis\.py)$", text, re.M))


def test_module_cmakelists_lists_every_file():
    present = {
        p.relative_to(MODULE).as_posix()
        for p in MODULE.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.name != "CMakeLists.txt"
        and not any(part.endswith(".egg-info") for part in p.parts)  # written by pip install -e
    }
    listed = _listed()
    assert present - listed == set(), "add these to MREFibrosis/CMakeLists.txt"
    assert listed - present == set(), "these are listed but missing"


def test_engine_imports_no_slicer_or_qt():
    for f in (MODULE / "mrefibrosis").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+(slicer|qt|vtk|ctk|MREFibrosisLib)\b", f.read_text(), re.M), f


def test_logic_imports_no_qt():
    for f in (MODULE / "MREFibrosisLib").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+(qt|ctk)\b", f.read_text(), re.M), f


def test_ui_parameter_names_match_parameter_node():
    tree = ET.parse(MODULE / "Resources" / "UI" / "MREFibrosis.ui")
    names = {p.find("string").text for p in tree.iter("property") if p.get("name") == "SlicerParameterName"}
    module = ast.parse((MODULE / "MREFibrosis.py").read_text())
    cls = next(n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "MREFibrosisParameterNode")
    fields = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)}
    assert names == fields
    widgets = {w.get("name") for w in tree.iter("widget")}
    used = set(re.findall(r"self\.ui\.(\w+)", (MODULE / "MREFibrosis.py").read_text()))
    assert used <= widgets, used - widgets


def test_extension_metadata():
    text = (ROOT / "CMakeLists.txt").read_text()
    for key in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_DESCRIPTION", "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        assert re.search(rf"set\({key} \"[^\"]+\"\)", text), key
    assert 'set(EXTENSION_DEPENDS "PyTorch")' in text
    assert text.index("find_package(Slicer") < text.index("add_subdirectory(MREFibrosis)") < text.index("Slicer_EXTENSION_CPACK")
    assert (ROOT / "Resources" / "Icons" / "MREFibrosis.png").exists()
