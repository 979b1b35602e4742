"""One exam under review: load it, give it an ROI (a file, or the segmenter), measure the ROI as
edited, export. Everything is a call into the Lib (`MREFibrosisLogic`), so the page shows the
numbers the Slicer panel and `mrefibrosis measure --roi` give for the same mask.

No trame here: the page calls these methods from its buttons, and tests call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mrefibrosis.model.segmenter_settings import SegmenterSettings
from mrefibrosis.pipeline import ExamResult
from mrefibrosis.reading.exam_loader import ReadOptions
from mrefibrosis.results.exam_result import format_value
from mrefibrosis.results.flag_words import warnings_in_words
from mrefibrosis.results.stored_roi import stored_roi_file
from MREFibrosisLib import MREFibrosisLogic
from MREFibrosisLib.exam_identity import ATTR
from MREFibrosisLib.logic import ExportOutcome
from MREFibrosisLib.segment_nodes import find_roi_segment

DISPLAY_COLUMNS = ("slice", "roi_area_cm2", "mean_kpa", "median_kpa", "stage", "status")


@dataclass
class RoiOrigin:
    """Where the ROI on the page came from, said on the page and in the export's provenance."""

    kind: str  # "file", "stored" (a SEG MREFibrosis wrote into the study) or "segmenter"
    detail: str


@dataclass
class ComputeView:
    """What the page shows after Compute: the engine's table rows, formatted, and the verdict.

    Slices are numbered from 1 on the page (as a reader counts them and as the view's slice counter
    does); the files keep the engine's 0-based `slice` column. Warnings appear once, in words, under
    the verdict; their codes stay in result.json and measurements.csv."""

    rows: list[dict]
    verdict: str
    warnings: list[str] = field(default_factory=list)
    mean_kpa: float | None = None
    stage: str | None = None

    @property
    def warnings_in_words(self) -> list[str]:
        return warnings_in_words(self.warnings)

    def display_rows(self) -> list[dict]:
        return [{**row, "slice": str(int(row["slice"]) + 1) if str(row["slice"]).isdigit() else row["slice"]} for row in self.rows]

    @staticmethod
    def of(result: ExamResult) -> ComputeView:
        rows = []
        for r in result.table_rows():
            rows.append({c: format_value(r[c], decimals=2, missing="-") for c in DISPLAY_COLUMNS})
        m = result.measurement
        return ComputeView(rows, _verdict(m), list(result.warnings), m.mean_kpa if m.ok else None, m.stage)


def _verdict(m) -> str:
    """The status in words without the warning codes (listed apart), and the coverage, 1-based."""
    if not m.ok:
        return f"indeterminate: {m.reason}" if m.reason else "indeterminate"
    n = len(m.warnings)
    text = f"ok with {n} warning{'s' if n > 1 else ''}" if n else "ok"
    coverage = m.coverage_words(first_slice=1)
    return f"{text}; {coverage}" if coverage else text


class ReviewSession:
    """The exam's volumes, its ROI segmentation node and its last Compute, on the scene given."""

    def __init__(self, scene, logic: MREFibrosisLogic | None = None, preset: str = "seed"):
        self.scene = scene
        self.preset = preset  # the staging preset of Compute and Export, as `measure --preset`
        self.logic = logic or MREFibrosisLogic()
        self.nodes = None
        self.segmentation = None
        self.origin: RoiOrigin | None = None
        self.last: ExamResult | None = None

    def open(
        self,
        study: str | Path,
        roi_file: str | Path | None = None,
        settings: SegmenterSettings = SegmenterSettings(),
        use_stored: bool = True,
        read: ReadOptions = ReadOptions(),
    ) -> RoiOrigin:
        """Load the exam with the engine's reader and give it an ROI: the file when one is given;
        else the SEG MREFibrosis stored into the study (the PACS worker's: the ROI the reported number
        was measured on) unless use_stored is off; else the segmenter's that `settings` describe
        (model, runtime, precision, and the reader's margins the automatic ROI keeps)."""
        self.nodes = self.logic.load_exam(self.scene, study, read)
        stored = None
        if roi_file is None and use_stored:
            stored = stored_roi_file(study, self.nodes.stiffness.GetAttribute(ATTR + "SeriesInstanceUID"))
        if roi_file is not None:
            self.segmentation = self.logic.import_roi_file(self.scene, self.nodes.stiffness, roi_file)
            self.origin = RoiOrigin("file", Path(roi_file).name)
        elif stored is not None:
            self.segmentation = self.logic.import_roi_file(self.scene, self.nodes.stiffness, stored)
            self.origin = RoiOrigin("stored", "the MREFibrosis ROI stored in the study (DICOM SEG)")
        else:
            self.segmentation = self.logic.segment(self.scene, self.nodes.stiffness, settings)
            detail = "automatic ROI from the segmenter"
            margins = settings.margins
            if margins != SegmenterSettings().margins:
                detail += f" (margins {margins.liver_edge_mm:g} mm inside the liver, {margins.driver_mm:g} mm from the driver)"
            self.origin = RoiOrigin("segmenter", detail)
        return self.origin

    @property
    def roi_segment_id(self) -> str:
        return find_roi_segment(self.segmentation)

    def compute(self) -> ComputeView:
        """Measure the ROI segment as edited now (the Lib's Compute: the engine's numbers and QC)."""
        self.last, _ = self.logic.compute(self.scene, self.nodes.stiffness, self.segmentation, preset=self.preset)
        return ComputeView.of(self.last)

    def export(self, out_dir: str | Path, dicom: bool = False, reader: str | None = None) -> tuple[ComputeView, ExportOutcome]:
        """The CLI's files for this exam's ROI as it is on screen now: measured again first, so an
        edit made after the last Compute is never exported with the old numbers."""
        view = self.compute()
        return view, self.logic.export(out_dir, self.nodes.stiffness, dicom=dicom, reader=reader)
