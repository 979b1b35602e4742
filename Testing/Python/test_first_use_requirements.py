"""What the Slicer panel installs on first use: minimums that leave Slicer's bundled packages alone,
a wheel on every platform Slicer 5.12 supports (checked offline against a snapshot of PyPI's file
lists, scripts/snapshot_package_index.py), and exact versions only as CI constraints."""

import json
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from MREFibrosisLib.dependencies import ENGINE_REQUIREMENTS, MODEL_REQUIREMENTS, ONNX_REQUIREMENTS, applies_here, missing_for, read_requirements, unmet

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = json.loads((ROOT / "Testing" / "Data" / "package_index_cp312.json").read_text())
CONSTRAINTS = ROOT / "scripts" / "constraints-ci.txt"
FILES = (ENGINE_REQUIREMENTS, ONNX_REQUIREMENTS, MODEL_REQUIREMENTS)

# What Slicer 5.12.3 bundles (ecosystem notes; SuperBuild/External_python*.cmake): never to be moved.
SLICER_512_BUNDLED = {"numpy": "2.4.6", "scipy": "1.17.1", "pydicom": "3.0.2", "highdicom": "0.27.0", "simpleitk": "2.5.5", "pillow": "12.2.0"}


def _env(sys_platform, platform_system, machine):
    return {
        "sys_platform": sys_platform,
        "platform_system": platform_system,
        "platform_machine": machine,
        "os_name": "nt" if sys_platform == "win32" else "posix",
        "python_version": "3.12",
        "python_full_version": "3.12.10",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


# The platforms Slicer 5.12 ships for, with the wheel platform tags each can install.
PLATFORMS = {
    "Windows x86_64": (_env("win32", "Windows", "AMD64"), lambda p: p == "win_amd64"),
    "Linux x86_64": (_env("linux", "Linux", "x86_64"), lambda p: p.startswith("manylinux") and p.endswith("x86_64")),
    "macOS arm64": (_env("darwin", "Darwin", "arm64"), lambda p: p.startswith("macosx") and (p.endswith("arm64") or p.endswith("universal2"))),
    "macOS x86_64": (
        _env("darwin", "Darwin", "x86_64"),
        lambda p: p.startswith("macosx") and (p.endswith("x86_64") or p.endswith("universal2") or p.endswith("intel")),
    ),
}


def _installable(filename: str, platform_ok) -> bool:
    """A file pip can install for CPython 3.12 on that platform (a pure-Python sdist counts)."""
    if filename.endswith(".tar.gz"):
        return False  # sdists of compiled packages would need a compiler on the user's machine
    _, _, _, tags = parse_wheel_filename(filename)
    for tag in tags:
        python_ok = tag.interpreter in ("cp312", "py3", "py2.py3") or (
            tag.abi == "abi3" and tag.interpreter.startswith("cp3") and int(tag.interpreter[3:]) <= 12
        )
        if python_ok and (tag.platform == "any" or platform_ok(tag.platform)):
            return True
    return False


def resolves(line: str, environment: dict, platform_ok) -> str | None:
    """The newest version the line allows that has a wheel for this platform, or None."""
    req = Requirement(line)
    versions = sorted((Version(v) for v in SNAPSHOT.get(req.name.lower(), {})), reverse=True)
    for version in versions:
        if req.specifier.contains(version, prereleases=False) and any(_installable(f, platform_ok) for f in SNAPSHOT[req.name.lower()][str(version)]):
            return str(version)
    return None


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_requirement_line_resolves_on_each_slicer_platform(platform):
    environment, platform_ok = PLATFORMS[platform]
    checked = 0
    for path in FILES:
        for line in read_requirements(path):
            if not applies_here(line, environment):
                continue
            assert resolves(line, environment, platform_ok), f"{path.name}: {line!r} has no CPython 3.12 wheel for {platform}"
            checked += 1
    assert checked >= 5


def test_the_check_would_have_caught_the_intel_mac_pin():
    environment, platform_ok = PLATFORMS["macOS x86_64"]
    assert resolves("onnxruntime==1.30.0", environment, platform_ok) is None
    assert resolves("onnxruntime==1.30.0", *PLATFORMS["macOS arm64"]) == "1.30.0"
    mac_lines = [line for line in read_requirements(ONNX_REQUIREMENTS) if applies_here(line, environment)]
    assert len(mac_lines) == 1 and resolves(mac_lines[0], environment, platform_ok).startswith("1.23.")


def test_every_platform_gets_exactly_one_onnxruntime_line():
    for name, (environment, _) in PLATFORMS.items():
        assert sum(applies_here(line, environment) for line in read_requirements(ONNX_REQUIREMENTS)) == 1, name


def test_requirements_are_minimums_that_keep_slicers_bundled_versions():
    """'==' would move a package other extensions share; every minimum is met by what Slicer bundles."""
    for path in FILES:
        for line in read_requirements(path):
            req = Requirement(line)
            assert all(s.operator in (">=", "<") for s in req.specifier), line
            bundled = SLICER_512_BUNDLED.get(req.name.lower())
            if bundled:
                assert req.specifier.contains(bundled), f"{line} would replace Slicer 5.12's {req.name} {bundled}"


def test_ci_constraints_pin_what_the_requirements_allow_and_are_installed_here():
    pins = [Requirement(line) for line in read_requirements(CONSTRAINTS)]
    assert pins and all(len(p.specifier) == 1 and next(iter(p.specifier)).operator == "==" for p in pins)
    lines = [Requirement(line) for path in FILES for line in read_requirements(path)]
    for pin in pins:
        version = next(iter(pin.specifier)).version
        assert any(r.name == pin.name and r.specifier.contains(version) for r in lines), pin
    assert missing_for(segment=False) == []
    assert unmet([f"{p.name}=={next(iter(p.specifier)).version}" for p in pins if p.name != "segmentation-models-pytorch"]) == []


def test_unmet_reads_markers_and_minimums():
    assert unmet(["no-such-package-mrefibrosis>=1.0", "pytest>=0.0.1"]) == ["no-such-package-mrefibrosis>=1.0"]
    assert unmet(["pytest>=999"]) == ["pytest>=999"]
    assert unmet(['no-such-package-mrefibrosis>=1; sys_platform == "no-such-os"']) == []
    with pytest.raises(ValueError, match="unsupported requirement line"):
        unmet(["scipy=>1"])
