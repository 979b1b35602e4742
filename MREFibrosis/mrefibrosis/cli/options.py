"""Options and helpers that several commands share: reading an exam, loading the segmenter."""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from ..errors import MREFibrosisError
from ..model.segmenter_settings import SegmenterSettings

log = logging.getLogger("mrefibrosis")


def add_read_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("reading the exam")
    g.add_argument("--stiffness-unit", choices=["Pa", "10Pa", "kPa"], help="unit of the stored elastogram values (overrides file and vendor defaults)")
    g.add_argument("--stiffness-series", metavar="SERIES", help="elastogram series to measure: SeriesNumber or SeriesInstanceUID")
    g.add_argument("--confidence-series", metavar="SERIES", help="confidence series: SeriesNumber or SeriesInstanceUID")
    g.add_argument("--study", dest="study_key", metavar="KEY", help="exam key (from 'inspect') or StudyInstanceUID when a folder holds several exams")
    g.add_argument("--confidence-threshold", type=float, default=0.95, metavar="C", help="confidence needed for a valid pixel (default 0.95)")
    g.add_argument("--hatch-period", type=int, metavar="PX", help="hatch period in pixels of confidence-masked elastograms (default: estimated)")
    g.add_argument(
        "--driver-frequency",
        type=float,
        metavar="HZ",
        help="driver frequency of the exam when its files do not state it or disagree (no stage is given without one)",
    )


def read_options(args):
    from ..reading.exam_loader import ReadOptions
    from ..reading.series import PLAUSIBLE_DRIVER_HZ

    if not 0.0 < args.confidence_threshold <= 1.0:
        raise MREFibrosisError("--confidence-threshold must lie in (0, 1], e.g. 0.95.")
    frequency = getattr(args, "driver_frequency", None)
    if frequency is not None and not (math.isfinite(frequency) and PLAUSIBLE_DRIVER_HZ[0] <= frequency <= PLAUSIBLE_DRIVER_HZ[1]):
        raise MREFibrosisError(f"--driver-frequency must be a frequency in Hz between {PLAUSIBLE_DRIVER_HZ[0]:g} and {PLAUSIBLE_DRIVER_HZ[1]:g}, e.g. 60.")
    return ReadOptions(
        stiffness_unit=args.stiffness_unit,
        stiffness_series=args.stiffness_series,
        confidence_series=args.confidence_series,
        study=args.study_key,
        confidence_threshold=args.confidence_threshold,
        hatch_period_px=args.hatch_period,
        include_identifiers=getattr(args, "include_identifiers", False),
        driver_frequency_hz=frequency,
    )


def _logged(seg):
    d = seg.describe()
    log.info("model %s (%s, %s) on %s, %s, %s", d["file"], d["architecture"], d["model_version"], d["runtime"], d["device"], d["precision"])
    return seg


def segmenter(settings: SegmenterSettings):
    return _logged(settings.build())


def segmenter_meanwhile(settings: SegmenterSettings):
    """A callable giving the loaded (and logged) segmenter. On the ONNX Runtime path the model
    loads on a thread (checksums, weights, session: about 0.4 s) while the exams are found and
    read. torch loads when asked: its import would only compete with the reading for the GIL, and
    an error in the exam search would otherwise wait seconds for it at exit."""
    from ..model.inference import default_model_path

    try:
        model_there = Path(settings.model).exists() if settings.model else default_model_path().exists()
        background = model_there and settings.runtime_here() == "onnx"
    except MREFibrosisError:
        background = False  # the same error comes as one line when the model is loaded
    if not background:
        return lambda: segmenter(settings)
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="model-load")
    future = pool.submit(settings.build)
    pool.shutdown(wait=False)

    return lambda: _logged(future.result())  # logged from the main thread, so the lines keep their order


def settings_from(args) -> SegmenterSettings:
    """The segmenter settings of a parsed command line; a bad value is one line."""
    try:
        return SegmenterSettings.from_args(args)
    except ValueError as exc:
        raise MREFibrosisError(str(exc)) from None


def part_of_this_install(package: str) -> bool:
    """Whether an engine package is installed here. The 3D Slicer extension carries only what Slicer
    uses (reading, measuring, the model, results, the simulator for its self-test); training,
    evaluation, the PACS services and batch come with a pip install of mrefibrosis."""
    from .._packages import installed

    return installed(f"mrefibrosis.{package}")


def require_part(package: str, command: str, extra: str) -> None:
    """A one-line refusal for a command whose engine package this install does not carry."""
    if not part_of_this_install(package):
        raise MREFibrosisError(
            f"'{command}' is not part of this install (the 3D Slicer extension carries the reading and measuring engine only): "
            f"pip install 'mrefibrosis[{extra}]' and run it from that environment."
        )


def add_unavailable(sub, command: str, help_text: str, package: str, extra: str) -> None:
    """A command whose parser needs its package (training defaults): listed, refused in one line."""
    p = sub.add_parser(command, help=f"{help_text} (not in this install)")
    p.add_argument("arguments", nargs=argparse.REMAINDER)

    def refuse(args) -> int:
        require_part(package, command, extra)
        return 0

    p.set_defaults(handler=refuse)
