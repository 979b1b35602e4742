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
        and p.parts[len(MODULE.parts)] != "MREFibrosisReview"  # the browser page: pip's [review] extra, not the Slicer build
    }
    listed = _listed()
    assert present - listed == set(), "add these to MREFibrosis/CMakeLists.txt"
    assert listed - present == set(), "these are listed but missing"


def test_engine_imports_no_slicer_or_qt():
    for f in (MODULE / "mrefibrosis").rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+(slicer|qt|vtk|ctk|MREFibrosisLib)\b", f.read_text(), re.M), f


def test_only_the_cli_reaches_the_review_page():
    """The page is a front end above the Lib: the Lib never imports it, and of the engine only the
    CLI's `review` command hands a request over to it (lazily, when the [review] extra is there)."""
    pattern = re.compile(r"^\s*(import|from)\s+MREFibrosisReview\b", re.M)
    users = {
        f.relative_to(MODULE).as_posix()
        for f in [*(MODULE / "mrefibrosis").rglob("*.py"), *(MODULE / "MREFibrosisLib").rglob("*.py")]
        if pattern.search(f.read_text())
    }
    assert users == {"mrefibrosis/cli.py"}


def test_logic_and_review_page_import_no_qt():
    for f in [*(MODULE / "MREFibrosisLib").rglob("*.py"), *(MODULE / "MREFibrosisReview").rglob("*.py")]:
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
    assert 'set(EXTENSION_DEPENDS "NA")' in text  # no PyTorch extension needed: Segment runs on onnxruntime
    assert text.index("find_package(Slicer") < text.index("add_subdirectory(MREFibrosis)") < text.index("Slicer_EXTENSION_CPACK")
    assert (ROOT / "Resources" / "Icons" / "MREFibrosis.png").exists()


def test_license_and_extension_index_entry():
    """The Extension Index wants a LICENSE at the root and a catalog entry that agrees with CMake."""
    import json
    import tomllib

    license_text = (ROOT / "LICENSE").read_text()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    assert declared == "Apache-2.0" and "Apache License" in license_text and "Version 2.0" in license_text
    entry = json.loads((ROOT / "Resources" / "MREFibrosis.json").read_text())
    allowed = {"$schema", "build_dependencies", "build_subdirectory", "category", "enabled", "scm_revision", "scm_type", "scm_url", "tier"}
    assert set(entry) <= allowed and {"$schema", "category", "scm_url"} <= set(entry)
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert f'set(EXTENSION_CATEGORY "{entry["category"]}")' in cmake
    assert f'set(EXTENSION_DEPENDS "{" ".join(entry.get("build_dependencies", [])) or "NA"}")' in cmake
    homepage = re.search(r'set\(EXTENSION_HOMEPAGE "([^"]+)"\)', cmake).group(1)
    assert entry["scm_url"].removesuffix(".git") == homepage


def test_first_use_requirements_are_pinned_and_met_here():
    """What the panel installs on first use is pinned, and these tests ran with exactly those pins."""
    import importlib.util

    from MREFibrosisLib.dependencies import ENGINE_REQUIREMENTS, MODEL_REQUIREMENTS, ONNX_REQUIREMENTS, missing_for, read_requirements, unmet

    for f in (ENGINE_REQUIREMENTS, MODEL_REQUIREMENTS, ONNX_REQUIREMENTS):
        reqs = read_requirements(f)
        assert reqs and all(re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][0-9A-Za-z.]*", r) for r in reqs), reqs
    assert missing_for(segment=False) == []
    if importlib.util.find_spec("torch") is not None or not unmet(read_requirements(ONNX_REQUIREMENTS)):
        assert missing_for(segment=True) == []  # Segment needs one runtime: onnxruntime (CPU) or torch
    assert not any("torch" in r for r in read_requirements(ONNX_REQUIREMENTS))
    assert unmet(["no-such-package-mrefibrosis==1.0", "pytest==0.0.1"]) == ["no-such-package-mrefibrosis==1.0", "pytest==0.0.1"]
