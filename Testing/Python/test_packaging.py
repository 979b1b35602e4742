"""The Slicer build installs only the files its CMakeLists names: keep that list complete, and keep
the panel's .ui file and parameter node in step."""

import ast
import re
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "MREFibrosis"


def _listed() -> set:
    """What MREFibrosis/CMakeLists.txt installs, read as the extension-repository script reads it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_extension_repo", ROOT / "scripts" / "build_extension_repo.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return set(script.module_files()) - {"CMakeLists.txt"}


# What the Slicer build leaves to a pip install: the browser page ([review] extra) and the engine
# packages Slicer never calls (docs/adr/0001).
NOT_IN_SLICER = ("MREFibrosisReview/", "mrefibrosis/pacs/", "mrefibrosis/batch/", "mrefibrosis/evaluation/", "mrefibrosis/training/")


def _present() -> set:
    return {
        p.relative_to(MODULE).as_posix()
        for p in MODULE.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and p.name != "CMakeLists.txt"
        and not any(part.endswith(".egg-info") for part in p.parts)  # written by pip install -e
    }


def test_module_cmakelists_lists_every_file_slicer_uses_and_nothing_else():
    present = {f for f in _present() if not f.startswith(NOT_IN_SLICER)}
    listed = _listed()
    assert present - listed == set(), "add these to MREFibrosis/CMakeLists.txt"
    assert listed - present == set(), "these are listed but missing"
    assert not any(f.startswith(NOT_IN_SLICER) for f in listed)


def test_the_slicer_install_runs_on_its_own(tmp_path):
    """The files CMake installs, copied alone: the Lib imports, the command line the panel's child
    process runs measures an exam, and the commands of the parts left out refuse in one line."""
    import subprocess
    import sys

    from mrefibrosis.synth.export import GE_SETTINGS, write_exam
    from mrefibrosis.synth.simulate import simulate_exam

    install = tmp_path / "MREFibrosis"
    for f in _listed():
        (install / f).parent.mkdir(parents=True, exist_ok=True)
        (install / f).write_bytes((MODULE / f).read_bytes())
    exam = tmp_path / "exam"
    write_exam(exam, simulate_exam(7, GE_SETTINGS, n_slices=2, liver_kpa=2.5, snr=30), "ge", "install")
    env = {"PYTHONPATH": str(install), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*argv):
        return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)

    probe = run("-c", "import mrefibrosis, MREFibrosisLib.dependencies as d; print(mrefibrosis.__file__)")
    assert probe.returncode == 0 and probe.stdout.strip().startswith(str(install)), probe.stderr[-500:]
    measured = run("-m", "mrefibrosis", "-q", "measure", str(exam / "dicom"), "--roi", str(exam / "liver.seg.nrrd"), "--out", str(tmp_path / "out"))
    assert measured.returncode == 0, measured.stderr[-500:]
    assert (tmp_path / "out" / "result.json").exists()
    for command in (["worker", "--config", "x.json"], ["batch", "in", "--out", "o"], ["train", "m.csv", "--out", "o"], ["evaluate", "m.csv", "--out", "o"]):
        refused = run("-m", "mrefibrosis", *command)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode != 0 and len(lines) == 1 and "not part of this install" in lines[0], (command, refused.stderr[-300:])


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


def test_a_wheel_built_from_the_repo_installs_offline_and_measures_with_its_own_model(tmp_path, ge_exam):
    """The lean install for the main job: a wheel holds the model, its graph and their checksums, installs
    with no index, and measures an exam from the installed copy (not from this checkout)."""
    import os
    import subprocess
    import sys
    import zipfile

    import pytest

    pytest.importorskip("setuptools")  # the build backend, used in place (the test builds offline)
    pytest.importorskip("onnxruntime")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("mrefibrosis-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("mrefibrosis-unet-resnext50.mrefmodel", "mrefibrosis-unet-resnext50.onnx", "SHA256SUMS"):
        assert f"mrefibrosis/model/weights/{shipped}" in names
    assert "mrefibrosis/measure/presets.json" in names
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = (
        "import sys, mrefibrosis; assert mrefibrosis.__file__.startswith(sys.argv[1]), mrefibrosis.__file__; "
        "from mrefibrosis.cli import main; sys.exit(main(['measure', sys.argv[2], '--out', sys.argv[3]]))"
    )
    run = subprocess.run([sys.executable, "-c", code, str(site), str(ge_exam.path), str(tmp_path / "out")], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "out" / "result.json").is_file()


def test_the_extension_repository_is_small_and_segments_once_the_weights_are_fetched(tmp_path, ge_exam):
    """The repository the Extension Index clones (scripts/build_extension_repo.py, ADR 0007): one
    commit, no weights, far under 100 MB; from it, `fetch-model --from FILE` installs the weights
    and the segmenter then measures an exam."""
    import os
    import subprocess
    import sys

    import pytest

    weights = MODULE / "mrefibrosis" / "model" / "weights" / "mrefibrosis-unet-resnext50.mrefmodel"
    if not weights.is_file():
        pytest.skip("the shipped model is not in this checkout")
    pytest.importorskip("onnxruntime")
    repo = tmp_path / "SlicerMREFibrosis"
    built = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_extension_repo.py"), str(repo)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-500:]
    files = [p for p in repo.rglob("*") if p.is_file() and ".git" not in p.relative_to(repo).parts]
    assert not any(p.suffix == ".mrefmodel" for p in files)
    assert sum(p.stat().st_size for p in (repo / ".git").rglob("*") if p.is_file()) < 20 * 1024 * 1024
    log = subprocess.run(["git", "log", "--oneline"], cwd=repo, capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(log) == 1
    for needed in ("CMakeLists.txt", "LICENSE", "README.md", "Resources/MREFibrosis.json", "docs/review.png", "MREFibrosis/CMakeLists.txt"):
        assert (repo / needed).is_file(), needed
    assert {f for f in _listed() if not f.endswith(".mrefmodel")} <= {
        p.relative_to(repo / "MREFibrosis").as_posix() for p in files if p.is_relative_to(repo / "MREFibrosis")
    }

    env = {
        "PYTHONPATH": str(repo / "MREFibrosis"),
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "MREFIBROSIS_MODEL_DIR": str(tmp_path / "models"),
        "MREFIBROSIS_CACHE": str(tmp_path / "cache"),
    }

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "mrefibrosis", "-q", *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)

    before = run("measure", str(ge_exam.path), "--out", str(tmp_path / "o1"), "--runtime", "onnx", "--device", "cpu")
    assert before.returncode != 0 and "fetch-model" in before.stderr and len(before.stderr.strip().splitlines()) == 1, before.stderr[-400:]
    assert run("fetch-model", "--from", str(weights)).returncode == 0
    after = run("measure", str(ge_exam.path), "--out", str(tmp_path / "o2"), "--runtime", "onnx", "--device", "cpu")
    assert after.returncode == 0, after.stderr[-400:]
    assert (tmp_path / "o2" / "result.json").is_file()
