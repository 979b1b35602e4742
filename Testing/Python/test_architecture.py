"""The engine's shape. The import rules themselves are declared in pyproject.toml
([tool.importlinter]) and checked by `lint-imports` in scripts/run_tests.sh; these tests keep that
declaration complete and check what import-linter cannot: start-up cost and the hand-over to the
review page."""

import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "MREFibrosis" / "mrefibrosis"
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _engine_layers() -> set[str]:
    contract = next(c for c in CONFIG["contracts"] if c["type"] == "layers" and any("mrefibrosis.cli" in layer for layer in c["layers"]))
    return {name.strip() for layer in contract["layers"] for name in layer.replace("|", ":").split(":")}


def test_every_engine_package_and_top_module_has_a_declared_layer():
    """A new package or top-level module must be placed in the layers before it can land."""
    declared = _engine_layers()
    present = {f"mrefibrosis.{p.name}" for p in ENGINE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    present |= {f"mrefibrosis.{p.stem}" for p in ENGINE.glob("*.py") if p.name != "__init__.py"}
    assert present - declared == set(), "add these to [tool.importlinter] layers in pyproject.toml (and docs/architecture.md)"
    assert declared - present == set(), "declared in the layers but gone"


def test_the_import_rules_cover_every_front_end_package():
    roots = set(CONFIG["root_packages"])
    assert roots == {"mrefibrosis", "MREFibrosisLib", "MREFibrosisReview"}
    types = {c["type"] for c in CONFIG["contracts"]}
    assert {"layers", "forbidden", "acyclic_siblings"} <= types


def test_the_engine_reaches_the_review_page_only_through_its_entry_point():
    """`mrefibrosis review` loads the page through the `mrefibrosis.front_ends` entry point, so the
    engine never imports a front end (the layers contract holds it)."""
    found = {e.name: e.value for e in entry_points(group="mrefibrosis.front_ends")}
    assert found == {"review": "MREFibrosisReview.command:run"}


def test_the_command_line_starts_without_torch_or_scipy():
    """Every command builds the full parser; describing the options (segmenter settings included)
    must load neither torch (about 1.5 s) nor scipy (0.4 s) before a command needs them."""
    code = "import sys, mrefibrosis.cli as c; c.build_parser(); print(sorted({'torch', 'scipy', 'MREFibrosisReview'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_every_module_is_named_in_the_architecture_page():
    """docs/architecture.md keeps a module index; a module added without a line there fails."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    modules = {
        p.relative_to(ROOT / "MREFibrosis").as_posix()
        for p in (ROOT / "MREFibrosis").rglob("*.py")
        if p.name != "__init__.py" and "__pycache__" not in p.parts and not any(part.endswith(".egg-info") for part in p.parts)
    }
    missing = sorted(m for m in modules if f"`{m}`" not in page)
    assert missing == [], "add these to the module index of docs/architecture.md"
