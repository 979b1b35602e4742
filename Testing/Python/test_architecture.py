"""The engine's shape: packages in layers, lower layers never importing upper ones, no import cycles
(function-level and type-checking imports count: a cycle is a cycle whenever it is resolved)."""

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "MREFibrosis" / "mrefibrosis"

# Lower number = lower layer. A module may import its own layer's and lower layers' modules only.
LAYERS = {
    "mrefibrosis": 0,
    "errors": 0,
    "_lazy": 0,
    "reading": 1,
    "measure": 2,
    "model": 3,
    "results": 4,
    "pipeline": 5,
    "synth": 6,
    "training": 6,
    "evaluation": 7,
    "pacs": 7,
    "batch": 7,
    "cli": 8,
    "__main__": 9,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ENGINE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ENGINE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Engine modules imported anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("mrefibrosis"):
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) for m, p in mods.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else parts[0]
    assert key in LAYERS, f"{module}: add its package to LAYERS (and docs/architecture.md)"
    return LAYERS[key]


def _is_package_init(module: str, graph) -> bool:
    return any(other.startswith(module + ".") for other in graph)


def test_no_upward_imports():
    graph = _graph()
    upward = []
    for mod, deps in graph.items():
        for dep in deps:
            if dep == "mrefibrosis":  # the version string only
                continue
            if _layer(dep) > _layer(mod):
                upward.append(f"{mod} -> {dep}")
    assert not upward, "imports that reach up a layer:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = _graph()
    # a package's __init__ that re-exports its modules is not an edge back into the package
    edges = {m: {d for d in deps if not (_is_package_init(d, graph) and m.startswith(d + "."))} for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d) :] + [d]))
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("package", ["reading", "measure", "model", "results", "synth", "training", "evaluation", "pacs", "batch"])
def test_each_package_names_its_public_api(package):
    init = ENGINE / package / "__init__.py"
    tree = ast.parse(init.read_text())
    names = [n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in n.targets)]
    assert ast.get_docstring(tree), f"{package}/__init__.py: say what the package is for"
    assert names, f"{package}/__init__.py: list the public API in __all__"


@pytest.mark.parametrize("package", ["reading", "measure", "model", "results", "synth", "training", "evaluation", "pacs", "batch"])
def test_every_public_name_resolves(package):
    import importlib

    mod = importlib.import_module(f"mrefibrosis.{package}")
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"mrefibrosis.{package}.{name}"


def test_the_command_line_starts_without_torch():
    """Every command builds the full parser; describing the train options must not load torch
    (about 1.5 s of every `inspect` or `measure --roi` call)."""
    import subprocess
    import sys

    code = "import sys, mrefibrosis.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
