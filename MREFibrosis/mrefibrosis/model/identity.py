"""Which model drew an ROI, on which inputs: part of every result's provenance."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelIdentity:
    file: str
    sha256: str
    architecture: str
    model_version: str
    input_size: int
    device: str
    precision: str
    tta: bool
    channels: tuple[str, ...]  # what the network reads, e.g. ("elastogram", "magnitude")
    outputs: tuple[str, ...]  # ("roi",) or ("roi", "liver")
    runtime: str = "torch"  # "torch" or "onnx" (ONNX Runtime)
    margins: tuple[tuple[str, float], ...] = ()  # (name, mm) of the reader's margins the automatic ROI was cut to (roi_margins)

    def legacy_json(self) -> dict:
        """The `exam.segmentation` block of result.json as written since version 0.1."""
        return {
            "file": self.file,
            "sha256": self.sha256,
            "architecture": self.architecture,
            "model_version": self.model_version,
            "input_size": self.input_size,
            "device": self.device,
            "precision": self.precision,
            "tta": self.tta,
            "runtime": self.runtime,
        }

    def to_json(self) -> dict:
        return {**self.legacy_json(), "channels": list(self.channels), "outputs": list(self.outputs), "roi_margins_mm": dict(self.margins)}
