"""Errors of choosing and starting a runtime, shared by both runtimes and the segmenter."""

from __future__ import annotations

from ..errors import MREFibrosisError


class ModelUnavailableError(MREFibrosisError):
    """Neither runtime's packages are installed (the Slicer panel installs onnxruntime on first Segment)."""


class DeviceError(MREFibrosisError):
    """The requested compute device or runtime combination is not available."""


class SegmentationCancelled(MREFibrosisError):
    """A cancel() ended the run; nothing was produced."""
