"""Which of the module's first-use requirement lines apply here and are not met, without installing anything.

Why Qt-free: the panel asks before installing (and the self-test must never install), so the check
itself is plain Python that pytest runs on both the project's and Slicer 5.12's package sets.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "Resources"
ENGINE_REQUIREMENTS = RESOURCES / "requirements.txt"
MODEL_REQUIREMENTS = RESOURCES / "requirements-model.txt"  # torch runtime: GPU and training
ONNX_REQUIREMENTS = RESOURCES / "requirements-onnx.txt"  # CPU Segment without PyTorch


def _requirement(line: str):
    """A parsed requirement line (PEP 508: name, specifier, environment marker). `packaging` ships
    with Slicer; pip's vendored copy stands in where it does not."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - every supported Slicer bundles packaging
        from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    try:
        return Requirement(line)
    except InvalidRequirement:
        raise ValueError(f"unsupported requirement line {line!r}: use 'name>=version' with an optional '; marker'.") from None


def read_requirements(path: str | Path) -> list[str]:
    """The requirement lines of a requirements file (comments and blanks dropped)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def applies_here(line: str, environment: dict[str, str] | None = None) -> bool:
    """Whether a line's environment marker selects it on this platform (or on `environment`)."""
    req = _requirement(line)
    return req.marker is None or bool(req.marker.evaluate(environment))


def unmet(requirements: list[str]) -> list[str]:
    """The requirement lines that apply here and are not satisfied by what is installed."""
    missing = []
    for line in requirements:
        req = _requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(line)
            continue
        if req.specifier and not req.specifier.contains(installed, prereleases=True):
            missing.append(line)
    return missing


def torch_available() -> bool:
    from mrefibrosis._packages import installed

    return installed("torch")


def torch_runtime_ready() -> bool:
    return torch_available() and not unmet(read_requirements(MODEL_REQUIREMENTS))


def missing_for(segment: bool) -> list[str]:
    """What Compute (segment=False) or Segment (segment=True) still needs. Segment needs one
    runtime: the pinned onnxruntime (CPU, small) unless the torch runtime is already complete;
    PyTorch is never asked for here (it is for GPUs and training: docs/slicer.md)."""
    missing = unmet(read_requirements(ENGINE_REQUIREMENTS))
    if segment and not torch_runtime_ready():
        missing += unmet(read_requirements(ONNX_REQUIREMENTS))
    return missing


def requirement_files(segment: bool) -> list[Path]:
    """The files whose pins ensure_dependencies installs for Compute or Segment."""
    return [ENGINE_REQUIREMENTS] + ([ONNX_REQUIREMENTS] if segment and not torch_runtime_ready() else [])


def compute_device_text(force_cpu: bool) -> str:
    """What Segment will run on, for the panel's label, without importing torch unless it is the runtime."""
    from mrefibrosis.model.inference import runtime_for

    try:
        runtime = runtime_for(device="cpu" if force_cpu else "auto")
    except Exception as exc:  # a one-line reason is all the label can show
        return f"not available ({exc})"
    if runtime == "onnx":
        return "CPU, ONNX Runtime" + (" (forced)" if force_cpu else "")
    if not torch_runtime_ready():
        return "not available: install onnxruntime (CPU) or the PyTorch extension (GPU)"
    import torch

    if not force_cpu and torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}, PyTorch"
    return "CPU, PyTorch" + (" (forced)" if force_cpu else "")
