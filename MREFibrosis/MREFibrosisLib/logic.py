"""MREFibrosis logic: load an exam, Segment, Compute, Export, on a scene passed in.

No Qt here, so the same code runs in Slicer and in pytest against real MRML (slicer-core). The
numbers come from the engine's `process_exam`, the path of the CLI and the PACS worker, so they
agree. Every result, ROI and background job is tied to the exam it was made for (exam_identity).
"""

from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import slicer

from mrefibrosis.measure.fibrosis_stages import get_preset
from mrefibrosis.measure.roi_stats import MIN_AREA_CM2
from mrefibrosis.model.roi_margins import RoiMargins
from mrefibrosis.pipeline import ExamResult, process_exam, segment_to_files, write_results
from mrefibrosis.reading.exam_loader import ReadOptions, read_exam
from mrefibrosis.results.roi_files import read_roi

from .dicom_database import stage_study_folder, study_files_for_volume
from .exam_identity import ATTR, ExamIdentity, ExamMismatchError, identity_of, require_engine_stiffness, require_same_exam
from .exam_nodes import MAGNITUDE_REF, VALIDITY_REF, WAVES_REF, add_volume, exam_from_nodes, findings_to_attribute, validity_array
from .export_support import dicom_export_problem
from .process_runner import ProcessRunner, RunnerUpdate, RunState, engine_environment, python_interpreter
from .segment_nodes import find_roi_segment, segment_mask, set_roi_segment
from .table_nodes import fill_table
from .thread_runner import JobCancelled, ThreadRunner

OWNER = ATTR + "StiffnessNodeID"  # on segmentation and table nodes: the stiffness volume they belong to
ROI_REFERENCE = ATTR + "roi"  # from a stiffness volume to its own segmentation node


def _sh_item(sh, node) -> int:
    """The node's subject hierarchy item; created when no application plugin made one (slicer-core)."""
    item = sh.GetItemByDataNode(node)
    return item if item else sh.CreateItem(sh.GetSceneItemID(), node)


@dataclass
class ExamNodes:
    stiffness: object  # vtkMRMLScalarVolumeNode, kPa
    validity: object  # vtkMRMLLabelMapVolumeNode
    magnitude: object | None
    study_item: int  # subject hierarchy item of the exam
    note: str = ""  # what the panel should tell the user about how the exam was loaded


@dataclass
class ComputedResult:
    """A Compute result with the exam it was computed on."""

    identity: ExamIdentity
    result: ExamResult
    table_node_id: str


@dataclass
class ExportOutcome:
    written: list[Path]
    note: str = ""  # e.g. why DICOM results were not written on this Python stack


@dataclass
class SegmentJob:
    """A background Segment for one exam (thread or child process); its ROI lands on that exam
    whatever is selected later."""

    identity: ExamIdentity
    runner: ProcessRunner | ThreadRunner
    out_dir: Path
    updates: list[str] = field(default_factory=list)

    def poll(self) -> RunnerUpdate:
        return self.runner.poll()

    @property
    def roi_file(self) -> Path:
        return self.out_dir / "roi.seg.nrrd"


class MREFibrosisLogic:
    """Holds loaded segmenters and the Compute results per exam between button presses."""

    def __init__(self):
        self._segmenters: dict = {}
        self._segmenter_lock = threading.Lock()
        self._segment_lock = threading.Lock()  # one loaded segmenter computes one exam at a time
        self.results: dict[str, ComputedResult] = {}  # by stiffness node ID

    # ------------------------------------------------------------------ load
    def load_exam(self, scene, folder: str | os.PathLike, options: ReadOptions = ReadOptions()) -> ExamNodes:
        """Read an MRE exam with the engine reader and create kPa and validity volumes in a study item."""
        exam = read_exam(folder, options)
        m = exam.geometry.ijk_to_lps()
        base = f"MRE {exam.exam_key[:8]}"
        stiffness = add_volume(scene, exam.stiffness_kpa, m, f"{base} stiffness (kPa)")
        header = exam.source_headers[0] if exam.source_headers else None
        for key, value in (
            ("ExamKey", exam.exam_key),
            ("Vendor", exam.vendor),
            ("UnitSource", exam.unit_source),
            ("SourceFolder", str(Path(folder).resolve())),
            ("StudyInstanceUID", str(getattr(header, "StudyInstanceUID", "") or "")),
            ("SeriesInstanceUID", str(getattr(header, "SeriesInstanceUID", "") or "")),
            ("ReaderFindings", findings_to_attribute(exam.findings)),
            ("Role", "stiffness"),
        ):
            stiffness.SetAttribute(ATTR + key, value)
        if exam.driver_frequency_hz:
            stiffness.SetAttribute(ATTR + "DriverFrequencyHz", str(exam.driver_frequency_hz))
        display = stiffness.GetDisplayNode()
        display.AutoWindowLevelOff()
        display.SetWindowLevel(8.0, 4.0)  # 0-8 kPa, the paper's window
        validity = add_volume(scene, validity_array(exam), m, f"{base} validity", labelmap=True)
        validity.SetAttribute(ATTR + "Role", "validity")
        stiffness.SetNodeReferenceID(VALIDITY_REF, validity.GetID())
        magnitude = add_volume(scene, exam.magnitude, m, f"{base} magnitude") if exam.magnitude is not None else None
        waves = add_volume(scene, exam.wave_amplitude, m, f"{base} wave amplitude") if exam.wave_amplitude is not None else None
        for ref, node in ((MAGNITUDE_REF, magnitude), (WAVES_REF, waves)):
            if node is not None:
                stiffness.SetNodeReferenceID(ref, node.GetID())
        sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
        study = sh.CreateStudyItem(sh.GetSceneItemID(), f"MRE exam {exam.exam_key[:8]}")
        for node in (stiffness, validity, magnitude, waves):
            if node is not None:
                sh.SetItemParent(_sh_item(sh, node), study)
        return ExamNodes(stiffness, validity, magnitude, study, note=f"stiffness unit: {exam.unit_source}")

    def load_from_dicom_database(self, scene, volume_node, database, staging_root=None) -> ExamNodes:
        """Read the study of a volume loaded by Slicer's DICOM browser with the engine's unit logic."""
        files, series_uid = study_files_for_volume(volume_node, database)
        folder = stage_study_folder(files, staging_root)
        nodes = self.load_exam(scene, folder, ReadOptions(stiffness_series=series_uid))
        nodes.note = f"'{volume_node.GetName()}' holds stored DICOM values; measured instead: the engine's reading of its series ({nodes.note})"
        return nodes

    @staticmethod
    def validity_node_for(stiffness_node):
        return stiffness_node.GetNodeReference(VALIDITY_REF)

    # ------------------------------------------------------------------ segmentation nodes
    def segmentation_for(self, scene, stiffness_node, candidate=None):
        """The segmentation node that holds this exam's ROI: the candidate unless it belongs to
        another exam, else the exam's own (created once and kept), so one exam's Segment never
        overwrites another exam's ROI."""
        owner_id = stiffness_node.GetID()
        if candidate is not None and candidate.GetAttribute(OWNER) in (None, "", owner_id):
            node = candidate
        else:
            node = stiffness_node.GetNodeReference(ROI_REFERENCE)
            if node is None:
                node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{stiffness_node.GetName()} ROI")
                node.CreateDefaultDisplayNodes()
                sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
                sh.SetItemParent(_sh_item(sh, node), sh.GetItemParent(_sh_item(sh, stiffness_node)))
        node.SetAttribute(OWNER, owner_id)
        stiffness_node.SetNodeReferenceID(ROI_REFERENCE, node.GetID())
        return node

    # ------------------------------------------------------------------ segment
    @staticmethod
    def roi_margins(liver_edge_mm: float, driver_mm: float) -> RoiMargins:
        """The reader's margins the panel's spin boxes ask for; ValueError (one line) outside 0-100 mm."""
        return RoiMargins(float(liver_edge_mm), float(driver_mm))

    def segmenter(self, model_path=None, device: str = "auto", precision: str = "auto", runtime: str = "auto", margins: RoiMargins | None = None):
        from mrefibrosis.model.inference import Segmenter

        margins = margins or RoiMargins()
        key = (str(model_path or ""), device, precision, runtime, margins)
        with self._segmenter_lock:
            if key not in self._segmenters:
                self._segmenters[key] = Segmenter(model_path, device=device, precision=precision, runtime=runtime, margins=margins)
            return self._segmenters[key]

    @staticmethod
    def segments_in_process(model_path=None, device: str = "auto") -> bool:
        """Whether Segment runs on a thread here (ONNX Runtime on the CPU, model kept loaded between
        clicks) rather than in a child process (torch: GPU, or no onnxruntime/graph)."""
        from mrefibrosis.model.inference import runtime_for

        if os.environ.get("MREFIBROSIS_SEGMENT_IN") == "child":  # a site's escape hatch: always the child process
            return False
        return runtime_for(model_path, device=device) == "onnx"

    def segment(
        self,
        scene,
        stiffness_node,
        validity_node=None,
        segmentation_node=None,
        model_path=None,
        device="auto",
        precision="auto",
        margins: RoiMargins | None = None,
    ):
        """Run the segmenter in this process (scripts, the review page and tests; the panel uses start_segment)."""
        require_engine_stiffness(stiffness_node)
        validity_node = validity_node or self.validity_node_for(stiffness_node)
        exam = exam_from_nodes(stiffness_node, validity_node)
        roi = self.segmenter(model_path, device, precision, margins=margins)(exam)
        node = self.segmentation_for(scene, stiffness_node, segmentation_node)
        set_roi_segment(node, roi, exam.geometry.ijk_to_lps(), stiffness_node)
        return node

    def import_roi_file(self, scene, stiffness_node, roi_file, segmentation_node=None):
        """Load an ROI file (e.g. written by a background `mrefibrosis segment`) as the ROI segment."""
        require_engine_stiffness(stiffness_node)
        exam = exam_from_nodes(stiffness_node, self.validity_node_for(stiffness_node))
        roi = read_roi(roi_file, exam.geometry)
        node = self.segmentation_for(scene, stiffness_node, segmentation_node)
        set_roi_segment(node, roi, exam.geometry.ijk_to_lps(), stiffness_node)
        return node

    @staticmethod
    def segment_arguments(identity: ExamIdentity, out_dir, model_path=None, device: str = "auto", margins: RoiMargins | None = None) -> list[str]:
        """Arguments after the interpreter of a child `mrefibrosis segment` for exactly this exam."""
        if not identity.source_folder:
            raise ValueError("this volume has no source folder; load the exam with 'Load MRE exam from folder'.")
        cmd = ["-m", "mrefibrosis", "segment", identity.source_folder, "--out", str(out_dir), "--device", device, "--progress"]
        if identity.exam_key:
            cmd += ["--study", identity.exam_key]
        if identity.series_uid:
            cmd += ["--stiffness-series", identity.series_uid]
        if model_path:
            cmd += ["--model", str(model_path)]
        if margins is not None:
            cmd += ["--roi-edge-mm", f"{margins.liver_edge_mm:g}", "--roi-driver-mm", f"{margins.driver_mm:g}"]
        return cmd

    def start_segment(
        self,
        stiffness_node,
        model_path=None,
        device: str = "auto",
        work_dir=None,
        interpreter: str | None = None,
        in_process: bool | None = None,
        margins: RoiMargins | None = None,
    ) -> SegmentJob:
        """Start Segment off the GUI thread: on a thread with the loaded ONNX Runtime segmenter when
        it can run here, else in a child `mrefibrosis segment` process. Both write the same ROI file."""
        identity = identity_of(stiffness_node)
        if not identity.source_folder:
            raise ValueError("this volume has no source folder; load the exam with 'Load MRE exam from folder'.")
        out_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="mrefibrosis-segment-"))
        if in_process if in_process is not None else self.segments_in_process(model_path, device):
            runner = self._segment_thread(identity, out_dir, model_path, device, margins)
        else:
            argv = [interpreter or python_interpreter(), *self.segment_arguments(identity, out_dir, model_path, device, margins)]
            runner = ProcessRunner(argv, env=engine_environment())
        runner.start()
        return SegmentJob(identity, runner, out_dir)

    def _segment_thread(self, identity: ExamIdentity, out_dir: Path, model_path, device: str, margins: RoiMargins | None) -> ThreadRunner:
        loaded: list = []
        computing = [False]  # True only while this job holds the segmenter
        state = threading.Lock()  # so a Cancel never reaches a run that belongs to the next job

        def work(progress, cancelled):
            progress(0.05, "reading the exam")
            exam = read_exam(identity.source_folder, ReadOptions(study=identity.exam_key or None, stiffness_series=identity.series_uid or None))
            progress(0.2, "loading the model")
            seg = self.segmenter(model_path, device, runtime="onnx", margins=margins)
            loaded.append(seg)
            with self._segment_lock:
                if cancelled():
                    raise JobCancelled()
                progress(0.3, "segmenting")
                with state:
                    computing[0] = True
                try:
                    info = segment_to_files(exam, seg, out_dir, cancelled)
                finally:
                    with state:
                        computing[0] = False
            progress(1.0, "done")
            return info

        def cancel_own_run():
            with state:
                if computing[0]:
                    for s in loaded:
                        s.cancel()

        return ThreadRunner(work, cancel_hook=cancel_own_run, name="mrefibrosis-segment")

    def finish_segment(self, scene, job: SegmentJob, segmentation_node=None):
        """Import a finished job's ROI into the exam it was started for; refuse if that exam is gone."""
        if job.runner.state is not RunState.SUCCEEDED:
            raise RuntimeError(job.runner.error_line() if job.runner.state is RunState.FAILED else f"segmentation {job.runner.state.value}")
        node = scene.GetNodeByID(job.identity.node_id)
        if node is None:
            raise ExamMismatchError(f"{job.identity.describe()} was closed before its segmentation ended; nothing was imported.")
        require_same_exam(job.identity, node, "Importing the segmentation")
        if not job.roi_file.exists():
            raise RuntimeError("the segmenter wrote no ROI file; see the log.")
        return self.import_roi_file(scene, node, job.roi_file, segmentation_node)

    # ------------------------------------------------------------------ compute / export
    def compute(self, scene, stiffness_node, segmentation_node, validity_node=None, preset="seed", table_node=None, min_area_cm2: float = MIN_AREA_CM2):
        """Measure the ROI segment as edited now, on the stored kPa values; fill a table node."""
        identity = identity_of(stiffness_node)
        owner = segmentation_node.GetAttribute(OWNER)
        if owner and owner != identity.node_id:
            raise ExamMismatchError(f"this ROI belongs to volume {owner}, not to {identity.describe()}: select that exam's segmentation, or Segment this exam.")
        validity_node = validity_node or self.validity_node_for(stiffness_node)
        exam = exam_from_nodes(stiffness_node, validity_node)
        segment_id = find_roi_segment(segmentation_node)
        roi = segment_mask(segmentation_node, segment_id, stiffness_node)
        result = process_exam(exam, preset=get_preset(preset), min_area_cm2=min_area_cm2, roi_mask=roi, roi_name=segment_id)
        if table_node is None or table_node.GetAttribute(OWNER) not in (None, "", identity.node_id):
            table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{stiffness_node.GetName()} measurements")
        table_node.SetAttribute(OWNER, identity.node_id)
        fill_table(table_node, result)
        self.results[identity.node_id] = ComputedResult(identity, result, table_node.GetID())
        return result, table_node

    def result_for(self, stiffness_node) -> ComputedResult:
        """The last Compute result of this exam, refused if the volume changed since."""
        if stiffness_node is None:
            raise ValueError("select the exam to export first.")
        record = self.results.get(stiffness_node.GetID())
        if record is None:
            raise ValueError(f"nothing computed for '{stiffness_node.GetName()}' yet: press Compute first.")
        require_same_exam(record.identity, stiffness_node, "Export")
        return record

    def export(self, out_dir, stiffness_node, dicom: bool = False) -> ExportOutcome:
        """measurements.csv, result.json and roi.seg.nrrd of this exam's Compute in the CLI's format;
        with dicom, also SEG + SR + overlay referencing this exam's own DICOM series."""
        record = self.result_for(stiffness_node)
        result = record.result
        note = ""
        if dicom:
            note = dicom_export_problem() or ""
            if note:
                dicom = False
            else:
                result.exam.source_headers = self._source_headers(record.identity, result)
        written = write_results(result, out_dir, dicom=dicom)
        if note:
            note += "; measurements.csv, result.json and roi.seg.nrrd were written."
        return ExportOutcome(written, note)

    @staticmethod
    def _source_headers(identity: ExamIdentity, result: ExamResult) -> list:
        if not identity.source_folder:
            raise ValueError("DICOM export needs an exam loaded with 'Load MRE exam from folder'.")
        options = ReadOptions(study=identity.exam_key or None, stiffness_series=identity.series_uid or None)
        source = read_exam(identity.source_folder, options)
        header = source.source_headers[0] if source.source_headers else None
        if source.stiffness_kpa.shape != result.exam.stiffness_kpa.shape or (
            identity.study_uid and str(getattr(header, "StudyInstanceUID", "")) != identity.study_uid
        ):
            raise ExamMismatchError("the DICOM folder no longer holds this exam's series; load the exam again.")
        return source.source_headers
