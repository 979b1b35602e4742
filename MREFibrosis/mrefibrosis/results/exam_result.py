"""The one result contract: every front end (CLI files, Slicer table, DICOM SR and overlay, batch
table, PACS worker, web page) renders an exam's result from this object, so they cannot disagree.

Why a single place: the same result used to be laid out by hand five times, and each copy drifted
(status words, which columns stay empty when indeterminate, where the reason goes).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from .. import __version__
from ..measure.roi_stats import Measurement, Stats
from ..measure.status import Status
from ..model.identity import ModelIdentity
from ..reading.exam import Exam

CSV_COLUMNS = [
    "exam_key",
    "slice",
    "slice_location_mm",
    "roi_pixels",
    "roi_area_cm2",
    "mean_kpa",
    "median_kpa",
    "sd_kpa",
    "p5_kpa",
    "p25_kpa",
    "p75_kpa",
    "p95_kpa",
    "iqr_kpa",
    "outside_confidence_pixels",
    "status",
    "stage",
    "preset",
    "status_detail",
]
KPA_COLUMNS = ("mean_kpa", "median_kpa", "sd_kpa", "p5_kpa", "p25_kpa", "p75_kpa", "p95_kpa", "iqr_kpa")


class RoiKind(StrEnum):
    FILE = "file"  # an ROI file given on the command line or by a site
    AUTOMATIC = "automatic"  # drawn by the segmenter, not edited
    EDITED = "edited"  # a segment as a reader left it in Slicer or the review page


@dataclass(frozen=True)
class RoiSource:
    kind: RoiKind
    name: str = ""  # the file name or the segment id

    @property
    def label(self) -> str:
        """The words result.json has always used: a file name, 'automatic segmentation' or 'Slicer segment X'."""
        if self.kind is RoiKind.AUTOMATIC:
            return "automatic segmentation"
        if self.kind is RoiKind.EDITED:
            return f"Slicer segment {self.name}"
        return self.name


@dataclass(frozen=True)
class Provenance:
    roi_source: RoiSource
    inputs_used: tuple[str, ...]  # the exam's images that went into the ROI and its checks
    model: ModelIdentity | None = None
    software_version: str = __version__

    def to_json(self) -> dict:
        return {
            "roi_source": {"kind": str(self.roi_source.kind), "name": self.roi_source.name},
            "inputs_used": list(self.inputs_used),
            "model": self.model.to_json() if self.model else None,
            "software_version": self.software_version,
        }


def finite_json(value):
    """The value with every non-finite float as None: JSON has no NaN or Infinity, and a reader of
    result.json must not meet them (they would come from absurd geometry or values)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if isinstance(value, np.floating):
        return finite_json(float(value))
    return value


def inputs_used(exam: Exam, model: ModelIdentity | None) -> tuple[str, ...]:
    """The exam's images behind this result: the elastogram always; the confidence map when the exam
    has one; the magnitude images when present (the dark-liver check, and the model if it reads them)."""
    used = ["elastogram"]
    if exam.confidence_valid is not None:
        used.append("confidence")
    if exam.magnitude is not None:
        used.append("magnitude")
    elif model is not None and "magnitude" in model.channels:
        used.append("magnitude missing: model ran on the elastogram alone")
    return tuple(used)


def format_value(value, decimals: int = 4, missing: str = "") -> str:
    """A table cell: the CSV's 4 decimals, or fewer where people read it (the review page)."""
    if value is None:
        return missing
    if isinstance(value, float):
        return f"{value:.{decimals}f}"
    return str(value)


@dataclass
class ExamResult:
    exam: Exam
    roi: np.ndarray
    measurement: Measurement
    provenance: Provenance
    liver: np.ndarray | None = field(default=None, repr=False)  # the segmenter's predicted liver, when it has one

    # ---- the verdict, in the same words everywhere
    @property
    def status(self) -> Status:
        return self.measurement.status

    @property
    def reason(self) -> str | None:
        return self.measurement.reason

    @property
    def warnings(self) -> list[str]:
        return self.measurement.warnings

    @property
    def status_text(self) -> str:
        """The verdict in words, and how much of the exam the number covers when it is not all of it."""
        m = self.measurement
        coverage = m.coverage_text if m.ok else ""
        return f"{m.status_text}; {coverage}" if coverage else m.status_text

    @property
    def roi_source(self) -> str:
        return self.provenance.roi_source.label

    # ---- renderings
    def table_rows(self) -> list[dict]:
        """One row per measured slice, then the exam row ('all'): the CSV, the Slicer table and the
        review page show exactly these; kPa columns are None when indeterminate."""
        m = self.measurement
        rows = []

        def row(slice_id, location, stats: Stats, outside: int, stage):
            kpa = {c: (getattr(stats, c) if m.ok else None) for c in KPA_COLUMNS}
            exam_row = slice_id == "all"
            rows.append(
                {
                    "exam_key": self.exam.exam_key,
                    "slice": slice_id,
                    "slice_location_mm": location,
                    "roi_pixels": stats.pixels,
                    "roi_area_cm2": stats.area_cm2,
                    **kpa,
                    "outside_confidence_pixels": outside,
                    "status": str(m.status),
                    "stage": stage,
                    "preset": m.preset if stage is not None or exam_row else "",
                    "status_detail": self.status_text if exam_row else "",
                }
            )

        for s in m.slices:
            row(s.slice, s.slice_location_mm, s.stats, s.outside_confidence_pixels, None)
        row("all", None, m.pooled, sum(s.outside_confidence_pixels for s in m.slices), m.stage)
        return rows

    def csv_text(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for r in self.table_rows():
            writer.writerow([format_value(r[c]) for c in CSV_COLUMNS])
        return buf.getvalue()

    def to_json(self, include_identifiers: bool = False) -> dict:
        """result.json: the measurement, the exam description, provenance; identifiers only on request."""
        exam = {**self.exam.summary(), "roi_source": self.roi_source}
        if self.provenance.model is not None and self.provenance.roi_source.kind is RoiKind.AUTOMATIC:
            exam["segmentation"] = self.provenance.model.legacy_json()
        out = {
            **self.measurement.stats_json(),
            "exam": exam,
            "software": {"name": "MREFibrosis", "version": self.provenance.software_version},
            "status_detail": self.status_text,
            "status_reason": self.reason,
            "warnings": self.warnings,
            "liver_confident_area_cm2": self.measurement.liver_confident_cm2,
            "provenance": self.provenance.to_json(),
        }
        if include_identifiers and self.exam.identifiers:
            out["identifiers"] = dict(self.exam.identifiers)
        return finite_json(out)

    def summary_line(self) -> str:
        """One line for logs, the SR's text and the overlay: no identifiers."""
        m = self.measurement
        if not m.ok:
            return f"exam {self.exam.exam_key}: {self.status_text}"
        stage = m.stage if m.stage is not None else "not staged"
        return (
            f"exam {self.exam.exam_key}: {m.mean_kpa:.3f} kPa (median {m.median_kpa:.3f}), {m.pooled.area_cm2:.2f} cm2, "
            f"stage {stage} [{m.preset}]; {self.status_text}"
        )

    def batch_fields(self) -> dict:
        """The columns a batch or worker table keeps per exam."""
        m = self.measurement
        return {
            "exam_key": self.exam.exam_key,
            "status": str(m.status),
            "mean_kpa": m.mean_kpa,
            "median_kpa": m.median_kpa,
            "roi_area_cm2": round(m.pooled.area_cm2, 4),
            "stage": m.stage,
            "preset": m.preset,
            "flags": ";".join(m.flags),
            "status_detail": self.status_text,
        }
