"""Stiffness statistics over an ROI, per slice and pooled over slices, as readers report them.

The pooled (area-weighted) mean is the mean of all valid ROI pixels across slices: the number the
MRE literature and the staging cut-offs refer to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import RoiError
from ..reading.exam import Exam
from ..reading.findings import READER_WARNING_FLAGS
from .breath_hold import BREATH_HOLD_REASON, FLAG_OFFSETS_MISREGISTERED, misregistered_slices, misregistration_findings
from .fibrosis_stages import Preset, get_preset, stage_for
from .qc import (
    FLAG_DARK_LIVER,
    FLAG_LIVER_EDGE,
    FLAG_SMALL_CONFIDENT_LIVER,
    FLAG_TTA,
    FLAG_UNDER_DRIVER,
    QcSettings,
    confident_liver_cm2,
    dark_liver_reason,
    segmentation_findings,
)
from .status import Status, status_text

MIN_AREA_CM2 = 1.0

FLAG_OUTSIDE_CONFIDENCE = "roi_outside_confidence"
FLAG_INVALID_EXCLUDED = "roi_invalid_pixels_excluded"
FLAG_SMALL_AREA = "roi_area_below_minimum"
FLAG_NO_CONFIDENCE = "no_confidence_data"
FLAG_FREQ_UNKNOWN = "driver_frequency_unknown"
FLAG_STAGE_REFUSED = "stage_refused_frequency"

# Flags that leave the number standing but deserve a look; every other flag comes with indeterminate
# or is a QC finding that decides for itself (a small confident liver is either).
WARNING_FLAGS = frozenset(
    {
        FLAG_OUTSIDE_CONFIDENCE,
        FLAG_INVALID_EXCLUDED,
        FLAG_NO_CONFIDENCE,
        FLAG_FREQ_UNKNOWN,
        FLAG_STAGE_REFUSED,
        FLAG_LIVER_EDGE,
        FLAG_TTA,
        FLAG_SMALL_CONFIDENT_LIVER,
        FLAG_UNDER_DRIVER,
        FLAG_OFFSETS_MISREGISTERED,
    }
    | READER_WARNING_FLAGS
)


@dataclass
class Stats:
    pixels: int
    area_cm2: float
    mean_kpa: float | None
    median_kpa: float | None
    sd_kpa: float | None
    p5_kpa: float | None
    p25_kpa: float | None
    p75_kpa: float | None
    p95_kpa: float | None
    iqr_kpa: float | None


def compute_stats(values: np.ndarray, pixel_area_mm2: float) -> Stats:
    values = np.asarray(values, dtype=np.float64)
    n = int(values.size)
    area = n * pixel_area_mm2 / 100.0
    if n == 0:
        return Stats(0, 0.0, None, None, None, None, None, None, None, None)
    p5, p25, p50, p75, p95 = np.percentile(values, [5, 25, 50, 75, 95])
    sd = float(np.std(values, ddof=1)) if n > 1 else 0.0
    return Stats(n, area, float(values.mean()), float(p50), sd, float(p5), float(p25), float(p75), float(p95), float(p75 - p25))


@dataclass
class SliceMeasurement:
    slice: int
    slice_location_mm: float
    roi_pixels_drawn: int
    outside_confidence_pixels: int
    stats: Stats


@dataclass
class Measurement:
    """The numbers and the verdict of one ROI on one exam; no number is presented when indeterminate."""

    status: Status
    pooled: Stats
    slices: list[SliceMeasurement]
    stage: str | None
    preset: str
    preset_citation: str
    flags: list[str]
    messages: list[str]
    reason: str | None = None  # one line, when indeterminate
    reason_flag: str | None = None  # the flag that made it indeterminate
    liver_confident_cm2: float | None = None  # confident area of the predicted liver (liver-aware segmenters)
    slices_total: int = 0  # slices of the exam
    slices_left_out: dict[int, str] = field(default_factory=dict)  # slice -> why QC left it out

    @property
    def slices_measured(self) -> int:
        """Slices whose ROI holds at least one valid pixel."""
        return sum(1 for s in self.slices if s.stats.pixels > 0)

    @property
    def coverage_text(self) -> str:
        """'' when every slice was measured, else 'measured on k of n slices' and why slices were left out:
        a number built on part of the exam says so wherever the number is shown."""
        return self.coverage_words()

    def coverage_words(self, first_slice: int = 0) -> str:
        """coverage_text with slices numbered from `first_slice`: 0 in the files (the engine's index),
        1 on screens that count slices as a reader does (the review page)."""
        k, n = self.slices_measured, self.slices_total
        if not n or k >= n:
            return ""
        text = f"measured on {k} of {n} slices"
        reasons: dict[str, list[int]] = {}
        for slice_index, why in sorted(self.slices_left_out.items()):
            reasons.setdefault(why, []).append(slice_index + first_slice)
        for why, idx in reasons.items():
            text += f"; slice{'s' if len(idx) > 1 else ''} {', '.join(str(i) for i in idx)} left out: {why}"
        return text

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def warnings(self) -> list[str]:
        """Flags that leave the number standing but deserve a look."""
        return [f for f in self.flags if f in WARNING_FLAGS] if self.ok else []

    @property
    def status_text(self) -> str:
        return status_text(self.status, self.reason, self.warnings)

    @property
    def mean_kpa(self) -> float | None:
        return self.pooled.mean_kpa if self.ok else None

    @property
    def median_kpa(self) -> float | None:
        return self.pooled.median_kpa if self.ok else None

    def stats_json(self) -> dict:
        """The measurement part of result.json (kPa values left out when indeterminate)."""
        ok = self.ok
        pooled = asdict(self.pooled)
        if not ok:
            pooled = {k: (v if k in ("pixels", "area_cm2") else None) for k, v in pooled.items()}
        return {
            "status": str(self.status),
            "mean_kpa": self.mean_kpa,
            "median_kpa": self.median_kpa,
            "roi_area_cm2": self.pooled.area_cm2,
            "stage": self.stage,
            "preset": self.preset,
            "preset_citation": self.preset_citation,
            "flags": list(self.flags),
            "messages": list(self.messages),
            "coverage": {
                "slices_measured": self.slices_measured,
                "slices_total": self.slices_total,
                "slices_left_out": {str(k): why for k, why in sorted(self.slices_left_out.items())},
            },
            "pooled": pooled,
            "slices": [
                {
                    "slice": s.slice,
                    "slice_location_mm": s.slice_location_mm,
                    "roi_pixels_drawn": s.roi_pixels_drawn,
                    "outside_confidence_pixels": s.outside_confidence_pixels,
                    **(asdict(s.stats) if ok else {"pixels": s.stats.pixels, "area_cm2": s.stats.area_cm2}),
                }
                for s in self.slices
            ],
        }


def measure_roi(
    exam: Exam,
    roi: np.ndarray,
    preset: Preset | str | None = None,
    min_area_cm2: float = MIN_AREA_CM2,
    qc: QcSettings = QcSettings(),
    liver: np.ndarray | None = None,
    tta_agreement: float | None = None,
    driver_contact: np.ndarray | None = None,
) -> Measurement:
    """Measure exam stiffness over a boolean ROI on the exam grid (slices, rows, columns).

    `liver` (a liver-aware segmenter's predicted liver) and `tta_agreement` add the reader's checks
    of an automatic ROI: enough confident liver, an ROI not only at the liver edge, a stable prediction.
    `driver_contact`: the exam's driver contact patch when the segmenter found it (not found again).
    """
    roi = np.asarray(roi)
    if roi.shape != exam.stiffness_kpa.shape:
        raise RoiError(f"ROI shape {roi.shape} differs from the elastogram {exam.stiffness_kpa.shape}; resample it onto the exam first.")
    roi = roi.astype(bool)
    if not isinstance(preset, Preset):
        preset = get_preset(preset)
    usable = roi & exam.valid
    area_px = exam.geometry.pixel_area_mm2
    locations = exam.geometry.slice_locations_mm
    flags: list[str] = []
    messages: list[str] = []
    reason: str | None = None
    reason_flag: str | None = None

    slices = []
    outside_total = 0
    for k in range(exam.n_slices):
        drawn = int(roi[k].sum())
        if drawn == 0:
            continue
        outside = 0
        if exam.confidence_valid is not None:
            outside = int((usable[k] & ~exam.confidence_valid[k]).sum())
        outside_total += outside
        slices.append(SliceMeasurement(k, round(float(locations[k]), 3), drawn, outside, compute_stats(exam.stiffness_kpa[k][usable[k]], area_px)))
    pooled = compute_stats(exam.stiffness_kpa[usable], area_px)

    excluded = int(roi.sum() - usable.sum())
    if excluded:
        flags.append(FLAG_INVALID_EXCLUDED)
        messages.append(f"{excluded} ROI pixels without a valid stiffness value were left out")
    if exam.confidence_valid is None:
        flags.append(FLAG_NO_CONFIDENCE)
    elif outside_total > qc.max_share_outside_confidence * pooled.pixels:
        # a reader's ROI is a polygon over confident patches, not a pixel mask: on the real GE exam 18 %
        # of the reader's ROI lay below 95 % confidence, so only a larger share is worth a warning
        flags.append(FLAG_OUTSIDE_CONFIDENCE)
        share = 100.0 * outside_total / max(1, pooled.pixels)
        messages.append(f"{outside_total} ROI pixels ({share:.1f} %) lie below {exam.confidence_threshold:.0%} confidence")
    status = Status.OK

    def note(findings) -> None:
        """Flags and messages of findings (ReaderFinding, QcFinding); the first indeterminate one decides."""
        nonlocal reason, status, reason_flag
        for finding in findings:
            flags.append(finding.flag)
            messages.append(finding.message)
            if finding.indeterminate and status is Status.OK:
                reason, status, reason_flag = finding.message, Status.INDETERMINATE, finding.flag

    note(exam.findings)  # what the reader noticed in the files (a lost slice, a per-slice rescale, ...)
    note(misregistration_findings(exam, usable, qc))
    if pooled.area_cm2 < min_area_cm2 and status is Status.OK:
        flags.append(FLAG_SMALL_AREA)
        reason = f"valid ROI area {pooled.area_cm2:.2f} cm2 is under {min_area_cm2:g} cm2: indeterminate (technical failure)"
        messages.append(reason)
        status, reason_flag = Status.INDETERMINATE, FLAG_SMALL_AREA
    # the whole predicted liver when there is one: on an iron-overloaded liver the ROI may sit on false
    # confident patches that are not dark themselves, while the liver as a whole is
    dark = dark_liver_reason(exam, liver if liver is not None and liver.any() else usable, qc) if status is Status.OK else None
    if dark:
        flags.append(FLAG_DARK_LIVER)
        messages.append(dark)
        reason, status, reason_flag = dark, Status.INDETERMINATE, FLAG_DARK_LIVER
    note(segmentation_findings(exam, usable, liver, tta_agreement, qc, driver_contact))
    stage = None
    if status is Status.OK:
        if exam.driver_frequency_hz is None:
            # the presets' cut-offs hold at one frequency (60 Hz); a stage at an unknown one is a guess
            flags.append(FLAG_FREQ_UNKNOWN)
            stage, refusal = (
                None,
                f"the driver frequency is unknown (the files do not state it, or they disagree); give it with --driver-frequency, e.g. {preset.frequency_hz:g}",
            )
        else:
            stage, refusal = stage_for(pooled.mean_kpa, preset, exam.driver_frequency_hz)
        if refusal:
            flags.append(FLAG_STAGE_REFUSED)
            messages.append(f"not staged: {refusal}")
    return Measurement(
        status=status,
        pooled=pooled,
        slices=slices,
        stage=stage,
        preset=preset.name,
        preset_citation=preset.citation,
        flags=flags,
        messages=messages,
        reason=reason,
        reason_flag=reason_flag,
        liver_confident_cm2=round(confident_liver_cm2(exam, liver), 3) if liver is not None else None,
        slices_total=exam.n_slices,
        slices_left_out={int(k): BREATH_HOLD_REASON for k in np.flatnonzero(misregistered_slices(exam, qc))},
    )
