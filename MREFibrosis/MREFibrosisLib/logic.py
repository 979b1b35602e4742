"""MREFibrosis logic: load an exam, Segment, Compute, Export, on a scene passed in.

No Qt here, so the same code runs in Slicer and in pytest against real MRML (slicer-core). The
numbers come from the engine's `process_exam`, the path of the CLI and the PACS worker, so they
agree. Every result, ROI and background job is tied to the exam it was made for (exam_identity).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import slicer

from mrefibrosis.measure.fibrosis_stages import get_preset
from mrefibrosis.measure.roi_stats import MIN_AREA_CM2
from mrefibrosis.model.margin_settings import RoiMargins
from mrefibrosis.model.segmenter_settings import SegmenterSettings
from mrefibrosis.pipeline import ExamResult, ModelOutput, process_exam, write_results
from mrefibrosis.reading.exam_loader import ReadOptions, read_exam
from mrefibrosis.results.roi_files import read_roi

from .dicom_database import stage_study_folder, study_files_for_volume
from .exam_identity import ATTR, ExamIdentity, ExamMismatchError, identity_of, is_engine_stiffness, require_engine_stiffness, require_same_exam
from .exam_nodes import MAGNITUDE_REF, VALIDITY_REF, WAVES_REF, add_volume, findings_to_attribute, validity_array
from .exam_store import FROM_ENGINE, ExamStore
from .export_support import dicom_export_problem
from .process_runner import ProcessRunner, RunnerUpdate, RunState, engine_environment, python_interpreter
from .segment_nodes import find_roi_segment, segment_mask, set_roi_segment
from .table_nodes import fill_table
from .thread_runner import JobCancelled, ThreadRunner

OWNER = ATTR + "StiffnessNodeID"  # on segmentation and table nodes: the stiffness volume they belong to
ROI_REFERENCE = ATTR + "roi"  # from a stiffness volume to its own segmentation node
ENGINE_REFERENCE = ATTR + "engineVolume"  # from a DICOM-browser volume to the engine's reading of it
SEGMENTED_DIGEST = ATTR + "segmentedRoiDigest"  # on a segmentation node: the ROI as Segment left it
STIFFNESS_COLOURS = "vtkMRMLColorTableNodeRainbow"  # one of Slicer's built-in colour tables


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
class EngineSelection:
    """What the panel measures for a selected volume: the engine's stiffness volume, the ROI to use,
    and the exam's nodes with a note when this call had the engine read a DICOM-browser volume."""

    stiffness: object
    segmentation: object | None
    nodes: ExamNodes | None = None
    note: str = ""


@dataclass
class ComputedResult:
    """A Compute result with the exam it was computed on."""

    identity: ExamIdentity
    result: ExamResult
    table_node_id: str
    exam_origin: str = FROM_ENGINE  # how the Exam was obtained (exam_store)


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
    owns_out_dir: bool = False  # a temporary folder made for this job, removed once it is done with

    def poll(self) -> RunnerUpdate:
        return self.runner.poll()

    def discard_files(self) -> None:
        """Remove the job's temporary folder (after import or Cancel); a folder the caller chose stays."""
        if self.owns_out_dir:
            shutil.rmtree(self.out_dir, ignore_errors=True)

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
        self.exams = ExamStore()  # the engine's Exam of each loaded stiffness volume

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
        units = slicer.vtkCodedEntry()
        units.SetValueSchemeMeaning("kPa", "UCUM", "kilopascal")
        stiffness.SetVoxelValueUnits(units)  # Data Probe and Segment Statistics then say kPa
        display = stiffness.GetDisplayNode()
        display.SetAndObserveColorNodeID(STIFFNESS_COLOURS)  # a colour map, not a grey overlay
        display.AutoWindowLevelOff()
        display.SetWindowLevel(8.0, 4.0)  # 0-8 kPa, the paper's window
        display.SetThreshold(1e-3, 1e6)
        display.ApplyThresholdOn()  # invalid pixels (stored 0) are see-through over the magnitude image
        validity = add_volume(scene, validity_array(exam), m, f"{base} validity", labelmap=True)
        validity.SetAttribute(ATTR + "Role", "validity")
        stiffness.SetNodeReferenceID(VALIDITY_REF, validity.GetID())
        magnitude = add_volume(scene, exam.magnitude, m, f"{base} magnitude") if exam.magnitude is not None else None
        waves = add_volume(scene, exam.wave_amplitude, m, f"{base} wave amplitude") if exam.wave_amplitude is not None else None
        for ref, node in ((MAGNITUDE_REF, magnitude), (WAVES_REF, waves)):
            if node is not None:
                stiffness.SetNodeReferenceID(ref, node.GetID())
        self.exams.keep(stiffness, exam)
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

    def engine_selection(self, scene, volume, database, segmentation=None, staging_root=None) -> EngineSelection:
        """The engine's stiffness volume for the panel's selection. A volume from Slicer's DICOM
        browser is read by the engine once (later calls reuse that reading); an ROI the radiologist
        drew on the browser volume becomes that exam's ROI instead of being dropped."""
        if is_engine_stiffness(volume):
            return EngineSelection(volume, segmentation)
        if volume is None:
            require_engine_stiffness(volume)
        nodes = None
        engine = volume.GetNodeReference(ENGINE_REFERENCE)
        if not is_engine_stiffness(engine):
            if database is None:
                require_engine_stiffness(volume)
            nodes = self.load_from_dicom_database(scene, volume, database, staging_root)
            volume.SetNodeReferenceID(ENGINE_REFERENCE, nodes.stiffness.GetID())
            engine = nodes.stiffness
        owner = segmentation.GetAttribute(OWNER) if segmentation is not None else None
        if segmentation is not None and owner in (None, "", engine.GetID()):
            segmentation = self.segmentation_for(scene, engine, segmentation)
        else:
            segmentation = engine.GetNodeReference(ROI_REFERENCE)
        return EngineSelection(engine, segmentation, nodes, nodes.note if nodes is not None else "")

    @staticmethod
    def validity_node_for(stiffness_node):
        return stiffness_node.GetNodeReference(VALIDITY_REF)

    def exam_for(self, stiffness_node):
        """The engine's Exam of this stiffness volume (exam_store): what Segment and Compute measure."""
        return self.exams.exam_for(stiffness_node)

    @classmethod
    def _require_own_validity(cls, stiffness_node, validity_node) -> None:
        """Refuse a validity volume of another exam: the exam's own confidence map is the one measured."""
        own = cls.validity_node_for(stiffness_node)
        if validity_node is not None and (own is None or validity_node.GetID() != own.GetID()):
            raise ExamMismatchError(
                f"the validity volume '{validity_node.GetName()}' belongs to another exam than '{stiffness_node.GetName()}'; "
                "each exam is measured on its own validity map: clear the selection or pick that exam."
            )

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
    def panel_settings(model_path, force_cpu: bool, liver_edge_mm: float, driver_mm: float) -> SegmenterSettings:
        """The engine's segmenter settings from the panel's parameter node (model field, Force CPU,
        the two margin spin boxes); a one-line ValueError outside 0-100 mm."""
        return SegmenterSettings.from_panel(model_path, force_cpu, liver_edge_mm, driver_mm)

    def segmenter(self, settings: SegmenterSettings = SegmenterSettings()):
        """A loaded segmenter, kept per `settings.loaded_key()`; the margins only change
        post-processing, so every margin value shares one loaded network."""
        key = settings.loaded_key()
        with self._segmenter_lock:
            if key not in self._segmenters:
                self._segmenters[key] = settings.with_margins(RoiMargins()).build()
            return self._segmenters[key].with_margins(settings.margins)

    @staticmethod
    def segments_in_process(settings: SegmenterSettings = SegmenterSettings()) -> bool:
        """Whether the panel's Segment runs on a thread of Slicer's process: only when a site opts in
        (MREFIBROSIS_SEGMENT_IN=thread) and ONNX Runtime can run the model here.

        Why the child process is the default: Slicer's main thread keeps Python's GIL while it idles
        in the Qt event loop (PythonQt's thread support is off), so a Python worker thread runs only
        during the panel's short timer callbacks and a Segment that takes 3 s free-running takes a
        minute (Testing/Python/test_slicer_segment_starved.py emulates it)."""
        if os.environ.get("MREFIBROSIS_SEGMENT_IN", "child") != "thread":
            return False
        return settings.runtime_here() == "onnx"

    def segment(self, scene, stiffness_node, settings: SegmenterSettings = SegmenterSettings(), validity_node=None, segmentation_node=None):
        """Run the segmenter in this process (scripts, the review page and tests; the panel uses start_segment)."""
        require_engine_stiffness(stiffness_node)
        self._require_own_validity(stiffness_node, validity_node)
        exam = self.exam_for(stiffness_node)
        segmentation = self.segmenter(settings).segment(exam)
        node = self.set_roi(scene, stiffness_node, segmentation.roi, segmentation_node)
        self.exams.stored(stiffness_node).model_output = ModelOutput.of(segmentation)
        return node

    def import_roi_file(self, scene, stiffness_node, roi_file, segmentation_node=None):
        """Load an ROI file (e.g. written by a background `mrefibrosis segment`) as the ROI segment."""
        exam = self.exam_for(stiffness_node)
        roi = read_roi(roi_file, exam.geometry)
        return self.set_roi(scene, stiffness_node, roi, segmentation_node)

    def set_roi(self, scene, stiffness_node, roi, segmentation_node=None):
        """Make a mask on the exam's grid the exam's ROI segment (and remember it as Segment left it)."""
        exam = self.exam_for(stiffness_node)
        node = self.segmentation_for(scene, stiffness_node, segmentation_node)
        set_roi_segment(node, roi, exam.geometry.ijk_to_lps(), stiffness_node)
        node.SetAttribute(SEGMENTED_DIGEST, self._mask_digest(segment_mask(node, find_roi_segment(node), stiffness_node)))
        return node

    @staticmethod
    def _mask_digest(mask) -> str:
        return hashlib.sha1(np.packbits(np.ascontiguousarray(mask, dtype=bool)).tobytes() + str(mask.shape).encode()).hexdigest()

    def roi_edited(self, stiffness_node, segmentation_node) -> bool:
        """Whether this exam's ROI holds a radiologist's work that a new Segment would replace: a
        segment edited since Segment made it, or one drawn by hand. Asked before Segment."""
        if segmentation_node is None or segmentation_node.GetAttribute(OWNER) not in (None, "", stiffness_node.GetID()):
            return False
        try:
            segment_id = find_roi_segment(segmentation_node)
        except ValueError:
            return False
        mask = segment_mask(segmentation_node, segment_id, stiffness_node)
        made = segmentation_node.GetAttribute(SEGMENTED_DIGEST)
        return bool(mask.any()) if not made else self._mask_digest(mask) != made

    @staticmethod
    def segment_arguments(identity: ExamIdentity, out_dir, settings: SegmenterSettings = SegmenterSettings()) -> list[str]:
        """Arguments after the interpreter of a child `mrefibrosis segment` for exactly this exam,
        with exactly these segmenter settings (`SegmenterSettings.to_argv`)."""
        if not identity.source_folder:
            raise ValueError("this volume has no source folder; load the exam with 'Load MRE exam from folder'.")
        cmd = ["-m", "mrefibrosis", "segment", identity.source_folder, "--out", str(out_dir), "--progress"]
        if identity.exam_key:
            cmd += ["--study", identity.exam_key]
        if identity.series_uid:
            cmd += ["--stiffness-series", identity.series_uid]
        return cmd + settings.to_argv()

    def start_segment(
        self,
        stiffness_node,
        settings: SegmenterSettings = SegmenterSettings(),
        work_dir=None,
        interpreter: str | None = None,
        in_process: bool | None = None,
    ) -> SegmentJob:
        """Start Segment off the GUI thread: by default in a child `mrefibrosis segment` process
        (the engine reads the exam and writes the ROI file the panel imports); on a thread with the
        loaded ONNX Runtime segmenter and this exam's kept Exam when a site opts in
        (`segments_in_process`). Both give the same ROI."""
        identity = identity_of(stiffness_node)
        if not identity.source_folder:
            raise ValueError("this volume has no source folder; load the exam with 'Load MRE exam from folder'.")
        owns_out_dir = work_dir is None
        out_dir = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="mrefibrosis-segment-"))
        if in_process if in_process is not None else self.segments_in_process(settings):
            runner = self._segment_thread(self.exam_for(stiffness_node), settings)
        else:
            argv = [interpreter or python_interpreter(), *self.segment_arguments(identity, out_dir, settings)]
            runner = ProcessRunner(argv, env=engine_environment())
        runner.start()
        return SegmentJob(identity, runner, out_dir, owns_out_dir=owns_out_dir)

    def _segment_thread(self, exam, settings: SegmenterSettings) -> ThreadRunner:
        """The Exam is taken on the GUI thread (MRML is not thread-safe); the ROI comes back in memory."""
        from mrefibrosis.model.runtime_errors import SegmentationCancelled

        loaded: list = []
        computing = [False]  # True only while this job holds the segmenter
        state = threading.Lock()  # so a Cancel never reaches a run that belongs to the next job

        def work(progress, cancelled):
            progress(0.05, "loading the model")
            seg = self.segmenter(settings)
            loaded.append(seg)
            with self._segment_lock:
                if cancelled():
                    raise JobCancelled()
                progress(0.3, "segmenting")
                with state:
                    computing[0] = True
                try:
                    segmentation = seg.segment(exam, cancelled)
                    if cancelled():
                        raise SegmentationCancelled("segmentation cancelled")
                finally:
                    with state:
                        computing[0] = False
            progress(1.0, "done")
            return segmentation

        def cancel_own_run():
            with state:
                if computing[0]:
                    for s in loaded:
                        s.cancel()

        return ThreadRunner(work, cancel_hook=cancel_own_run, name="mrefibrosis-segment")

    def finish_segment(self, scene, job: SegmentJob, segmentation_node=None):
        """Import a finished job's ROI into the exam it was started for; refuse if that exam is gone.
        The job's temporary folder is removed either way."""
        try:
            return self._import_job(scene, job, segmentation_node)
        finally:
            job.discard_files()

    def _import_job(self, scene, job: SegmentJob, segmentation_node=None):
        if job.runner.state is not RunState.SUCCEEDED:
            raise RuntimeError(job.runner.error_line() if job.runner.state is RunState.FAILED else f"segmentation {job.runner.state.value}")
        node = scene.GetNodeByID(job.identity.node_id)
        if node is None:
            raise ExamMismatchError(f"{job.identity.describe()} was closed before its segmentation ended; nothing was imported.")
        require_same_exam(job.identity, node, "Importing the segmentation")
        if isinstance(job.runner, ThreadRunner):
            segmentation = job.runner.result
            imported = self.set_roi(scene, node, segmentation.roi, segmentation_node)
            output = ModelOutput.of(segmentation)
        else:
            if not job.roi_file.exists():
                raise RuntimeError("the segmenter wrote no ROI file; see the log.")
            imported = self.import_roi_file(scene, node, job.roi_file, segmentation_node)
            output = ModelOutput.from_files(job.out_dir, self.exam_for(node).geometry)
        self.exams.stored(node).model_output = output
        return imported

    # ------------------------------------------------------------------ compute / export
    def compute(self, scene, stiffness_node, segmentation_node, validity_node=None, preset="seed", table_node=None, min_area_cm2: float = MIN_AREA_CM2):
        """Measure the ROI segment as edited now, on the stored kPa values; fill a table node."""
        identity = identity_of(stiffness_node)
        if segmentation_node is None:
            raise ValueError("no ROI to measure: press Segment, or draw the ROI in Segment Editor and select its segmentation.")
        owner = segmentation_node.GetAttribute(OWNER)
        if owner and owner != identity.node_id:
            raise ExamMismatchError(f"this ROI belongs to volume {owner}, not to {identity.describe()}: select that exam's segmentation, or Segment this exam.")
        self._require_own_validity(stiffness_node, validity_node)
        stored = self.exams.stored(stiffness_node)
        segment_id = find_roi_segment(segmentation_node)
        roi = segment_mask(segmentation_node, segment_id, stiffness_node)
        result = process_exam(
            stored.exam, preset=get_preset(preset), min_area_cm2=min_area_cm2, roi_mask=roi, roi_name=segment_id, model_output=stored.model_output
        )
        if table_node is None or table_node.GetAttribute(OWNER) not in (None, "", identity.node_id):
            table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{stiffness_node.GetName()} measurements")
        table_node.SetAttribute(OWNER, identity.node_id)
        fill_table(table_node, result)
        self.results[identity.node_id] = ComputedResult(identity, result, table_node.GetID(), stored.origin)
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

    def export(self, out_dir, stiffness_node, dicom: bool = False, reader: str | None = None) -> ExportOutcome:
        """measurements.csv, result.json and roi.seg.nrrd of this exam's Compute in the CLI's format,
        always; with dicom, also SEG + SR + overlay referencing this exam's own DICOM series, built
        from the headers the engine read at load time (the source folder may be gone by now: DICOM
        database exams live in a staging folder). When DICOM results cannot be made, the files are
        still written and the note says why in one line. `reader` names the person who edited the
        ROI in the SR (optional)."""
        record = self.result_for(stiffness_node)
        note = ""
        if dicom:
            if not record.result.exam.source_headers:
                note = f"no DICOM results: the exam was {record.exam_origin}"
            else:
                note = dicom_export_problem() or ""
        written = write_results(record.result, out_dir, dicom=dicom and not note, reader=reader)
        if note:
            note += "; measurements.csv, result.json and roi.seg.nrrd were written."
        return ExportOutcome(written, note)
