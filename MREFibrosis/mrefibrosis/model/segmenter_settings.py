"""One set of segmenter settings for every front end: command-line options, service configs, the
Slicer panel and the review page all build their segmenter from a `SegmenterSettings`.

Why: the segmenter used to be built in five places with five different subsets of its arguments
(the receiver could not check a model checksum, the review page could not choose a runtime, a new
option took seven commits to reach every front end). Here the settings are validated once, Enums
are resolved at the boundary (a string from argv, JSON or a parameter node becomes a `Runtime` or a
`Precision` or a one-line error), and each front end's own form (argv, JSON, the panel's fields) is a
method of this one class, so a child process gets exactly the settings the panel holds.

Light on purpose: no numpy, scipy or torch, so parsing a command line costs nothing.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from ..errors import MREFibrosisError
from .margin_settings import RoiMargins, checked_mm

if TYPE_CHECKING:
    from .inference import Segmenter


class Runtime(StrEnum):
    AUTO = "auto"  # torch on a CUDA GPU, ONNX Runtime on the CPU when it and the model's graph are there
    TORCH = "torch"
    ONNX = "onnx"


class Precision(StrEnum):
    AUTO = "auto"  # reduced precision only where the model file says it was validated
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"
    INT8 = "int8"  # ONNX Runtime on the CPU with the model's quantized graph


_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
JSON_KEYS = ("model", "model_sha256", "device", "runtime", "precision", "tta", "roi_margins_mm")


class SettingsError(MREFibrosisError, ValueError):
    """A setting out of range or of the wrong kind (one line that names it)."""


def _enum(kind: type[StrEnum], value, name: str):
    try:
        return kind(str(value).lower())
    except ValueError:
        raise SettingsError(f"{name} '{value}' is not one of {', '.join(m.value for m in kind)}.") from None


@dataclass(frozen=True)
class SegmenterSettings:
    """What decides a segmenter's output: the model (and its published checksum), where and how it
    runs, test-time augmentation, and the reader's margins kept around the automatic ROI."""

    model: str | None = None  # None: the shipped model, or $MREFIBROSIS_MODEL
    model_sha256: str | None = None  # refused on mismatch
    device: str = "auto"  # auto, cpu, cuda or cuda:N
    runtime: Runtime = Runtime.AUTO
    precision: Precision = Precision.AUTO
    tta: bool = False
    margins: RoiMargins = field(default_factory=RoiMargins)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: values are normalised once, here
        set_(self, "model", str(self.model) if self.model not in (None, "") else None)
        device = str(self.device or "auto").lower()
        if not _DEVICE.fullmatch(device):
            raise SettingsError(f"device '{self.device}' is not auto, cpu or cuda[:N].")
        set_(self, "device", device)
        set_(self, "runtime", _enum(Runtime, self.runtime, "runtime"))
        set_(self, "precision", _enum(Precision, self.precision, "precision"))
        if self.model_sha256 is not None:
            digest = str(self.model_sha256).strip().lower()
            if not _SHA256.fullmatch(digest):
                raise SettingsError("model_sha256 must be the 64 hex digits of the model file's SHA-256.")
            set_(self, "model_sha256", digest)
        if not isinstance(self.tta, bool):
            raise SettingsError("tta must be true or false.")
        if not isinstance(self.margins, RoiMargins):
            raise SettingsError("margins must be RoiMargins.")

    # ------------------------------------------------------------------ the segmenter
    def build(self, expected_slices: int | None = None) -> Segmenter:
        """Load the segmenter these settings describe (the one place front ends construct it).
        `expected_slices`: how many slices the process will segment (a batch, a PACS service, a
        `measure` over many studies); from `runtime_probe.PROBE_MIN_SLICES` up, `--runtime auto` on
        a CPU with torch installed takes whichever runtime this machine measured faster."""
        from .inference import Segmenter

        runtime = self.workload_runtime(expected_slices)
        return Segmenter(
            self.model,
            device=self.device,
            precision=self.precision.value,
            tta=self.tta,
            expected_sha256=self.model_sha256,
            runtime=runtime,
            margins=self.margins,
        )

    def workload_runtime(self, expected_slices: int | None) -> str:
        """The runtime to ask for: the settings' own, or for a large CPU workload under `auto`, the
        one measured faster here (`runtime_probe`)."""
        from .runtime_probe import PROBE_MIN_SLICES

        if self.runtime is not Runtime.AUTO or not expected_slices or expected_slices < PROBE_MIN_SLICES or self.device not in ("auto", "cpu"):
            return self.runtime.value
        if self.precision not in (Precision.AUTO, Precision.FP32, Precision.INT8) or self.runtime_here() != "onnx":
            return self.runtime.value  # a GPU, reduced torch precision, or no ONNX graph: nothing to compare
        from .._packages import installed

        if not (installed("torch") and installed("segmentation_models_pytorch")):
            return self.runtime.value
        from .runtime_probe import fastest_cpu_runtime

        def build(runtime: str, precision: str) -> Segmenter:
            return replace(self, runtime=Runtime(runtime), precision=Precision(precision), device="cpu").build()

        return fastest_cpu_runtime(build, self.precision.value)[0]

    def loaded_key(self) -> tuple:
        """What a loaded network depends on: a front end that keeps segmenters loaded keys them by
        this and applies the margins per call (`Segmenter.with_margins`)."""
        return (self.model or "", self.model_sha256 or "", self.device, self.runtime, self.precision, self.tta)

    def runtime_here(self) -> str:
        """The runtime a segmenter from these settings would use on this machine ('onnx' or 'torch')."""
        from .inference import runtime_for

        return runtime_for(self.model, self.runtime.value, self.device, self.precision.value)

    def with_margins(self, margins: RoiMargins) -> SegmenterSettings:
        return replace(self, margins=margins)

    # ------------------------------------------------------------------ command line
    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        """The `segmenter` option group of every command that segments."""
        g = parser.add_argument_group("segmenter")
        g.add_argument("--model", metavar="FILE", help="model file (.mrefmodel); default: the shipped model or $MREFIBROSIS_MODEL")
        g.add_argument("--model-sha256", metavar="HEX", help="SHA-256 of the whole model file as published by whoever trained it; refused on mismatch")
        g.add_argument("--device", default="auto", metavar="D", help="auto (CUDA when available), cpu or cuda[:N]")
        g.add_argument(
            "--precision",
            default=Precision.AUTO.value,
            choices=[p.value for p in Precision],
            help="auto: int8 on a CPU with int8 dot products where the model ships a validated int8 graph, "
            "reduced precision on a GPU only where the model file says it was validated; else fp32",
        )
        g.add_argument(
            "--tta",
            action="store_true",
            help="test-time augmentation: a second pass on the image moved by 8 px; averages both and reports their agreement per exam",
        )
        g.add_argument(
            "--roi-edge-mm",
            type=_margin_mm,
            metavar="MM",
            help="keep the automatic ROI this deep inside the predicted liver (default 10, the reader's margin; 0: off)",
        )
        g.add_argument(
            "--roi-driver-mm",
            type=_margin_mm,
            metavar="MM",
            help="keep the automatic ROI this far from the driver found on the wave images (default 25; 0: off)",
        )
        g.add_argument(
            "--runtime",
            default=Runtime.AUTO.value,
            choices=[r.value for r in Runtime],
            help="auto: torch on a CUDA GPU, ONNX Runtime on the CPU when onnxruntime and the model's .onnx graph are there, torch otherwise",
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SegmenterSettings:
        given = {"liver_edge_mm": args.roi_edge_mm, "driver_mm": args.roi_driver_mm}
        return cls(
            model=args.model,
            model_sha256=args.model_sha256,
            device=args.device,
            runtime=args.runtime,
            precision=args.precision,
            tta=bool(args.tta),
            margins=RoiMargins(**{k: v for k, v in given.items() if v is not None}),
        )

    def to_argv(self) -> list[str]:
        """The options that give these settings to a child `mrefibrosis segment` or `measure`."""
        argv = ["--device", self.device, "--runtime", self.runtime.value, "--precision", self.precision.value]
        if self.model:
            argv += ["--model", self.model]
        if self.model_sha256:
            argv += ["--model-sha256", self.model_sha256]
        if self.tta:
            argv.append("--tta")
        argv += ["--roi-edge-mm", f"{self.margins.liver_edge_mm:g}", "--roi-driver-mm", f"{self.margins.driver_mm:g}"]
        return argv

    # ------------------------------------------------------------------ JSON (service configs, batch runs)
    @classmethod
    def from_json(cls, values: dict, where: str = "segmenter") -> SegmenterSettings:
        """From a service config's keys (JSON_KEYS; a missing key keeps its default)."""
        if not isinstance(values, dict):
            raise SettingsError(f"{where} must be a JSON object with keys among {', '.join(JSON_KEYS)}.")
        unknown = set(values) - set(JSON_KEYS)
        if unknown:
            raise SettingsError(f"{where}: unknown keys {', '.join(sorted(unknown))}; use {', '.join(JSON_KEYS)}.")
        kwargs = {k: v for k, v in values.items() if k != "roi_margins_mm" and v is not None}
        try:
            margins = RoiMargins.from_json(values.get("roi_margins_mm") or {})
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        try:
            return cls(**kwargs, margins=margins)
        except SettingsError as exc:
            raise SettingsError(f"{where}: {exc}") from None

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "model_sha256": self.model_sha256,
            "device": self.device,
            "runtime": self.runtime.value,
            "precision": self.precision.value,
            "tta": self.tta,
            "roi_margins_mm": self.margins.to_json(),
        }

    # ------------------------------------------------------------------ the Slicer panel's fields
    @classmethod
    def from_panel(cls, model_path: str | os.PathLike | None, force_cpu: bool, liver_edge_mm: float, driver_mm: float) -> SegmenterSettings:
        """The parameter node's form: the panel's model field ('' or '.': the shipped model), its
        Force CPU box and its two margin spin boxes."""
        model = str(model_path) if model_path not in (None, "") and str(model_path) not in ("", ".") else None
        try:
            margins = RoiMargins(float(liver_edge_mm), float(driver_mm))
        except ValueError as exc:
            raise SettingsError(f"ROI margin: {exc}") from None
        return cls(model=model, device="cpu" if force_cpu else "auto", margins=margins)


def _margin_mm(text: str) -> float:
    try:
        return checked_mm(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a margin in mm; give a number from 0 (off) to 100") from None
