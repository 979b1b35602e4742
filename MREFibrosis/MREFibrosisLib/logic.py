"""MREFibrosis logic: load an exam, Segment, Compute, Export, on a scene passed in.

No Qt here, so the same code runs in Slicer and in pytest against real MRML (slicer-core). The
numbers come from the engine's `process_exam`, the path of the CLI and the PACS worker, so they agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import slicer

from mrefibrosis.measure.fibrosis_stages import get_preset
from mrefibrosis.measure.roi_stats import MIN_AREA_CM2
from mrefibrosis.pipeline import ExamResult, process_exam, write_results
from mrefibrosis.reading.exam_loader import ReadOptions, read_exam
from mrefibrosis.results.roi_files import read_roi

from .exam_nodes import ATTR, add_volume, exam_from_nodes, validity_array
from .segment_nodes import find_roi_segment, segment_mask, set_roi_segment
from .table_nodes import fill_table


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


class MREFibrosisLogic:
    """Holds loaded segmenters (one per model/device/precision) between button presses."""

    def __init__(self):
        self._segmenters: dict = {}
        self.last_result: ExamResult | None = None

    # ------------------------------------------------------------------ load
    def load_exam(self, scene, folder: str | os.PathLike, options: ReadOptions = ReadOptions()) -> ExamNodes:
        """Read an MRE exam with the engine reader and create kPa and validity volumes in a study item."""
        exam = read_exam(folder, options)
        m = exam.geometry.ijk_to_lps()
        base = f"MRE {exam.exam_key[:8]}"
        stiffness = add_volume(scene, exam.stiffness_kpa, m, f"{base} stiffness (kPa)")
        for key, value in (
            ("ExamKey", exam.exam_key),
            ("Vendor", exam.vendor),
            ("UnitSource", exam.unit_source),
            ("SourceFolder", str(Path(folder).resolve())),
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
        stiffness.SetNodeReferenceID(ATTR + "validity", validity.GetID())
        magnitude = add_volume(scene, exam.magnitude, m, f"{base} magnitude") if exam.magnitude is not None else None
        sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
        study = sh.CreateStudyItem(sh.GetSceneItemID(), f"MRE exam {exam.exam_key[:8]}")
        for node in (stiffness, validity, magnitude):
            if node is not None:
                sh.SetItemParent(_sh_item(sh, node), study)
        return ExamNodes(stiffness, validity, magnitude, study)

    @staticmethod
    def validity_node_for(stiffness_node):
        return stiffness_node.GetNodeReference(ATTR + "validity")

    # ------------------------------------------------------------------ segment
    def segmenter(self, model_path=None, device: str = "auto", precision: str = "auto"):
        from mrefibrosis.model.inference import Segmenter

        key = (str(model_path or ""), device, precision)
        if key not in self._segmenters:
            self._segmenters[key] = Segmenter(model_path, device=device, precision=precision)
        return self._segmenters[key]

    def _segmentation_node(self, scene, stiffness_node, segmentation_node):
        if segmentation_node is None:
            segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{stiffness_node.GetName()} ROI")
            segmentation_node.CreateDefaultDisplayNodes()
            sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
            parent = sh.GetItemParent(_sh_item(sh, stiffness_node))
            sh.SetItemParent(_sh_item(sh, segmentation_node), parent)
        return segmentation_node

    def segment(self, scene, stiffness_node, validity_node=None, segmentation_node=None, model_path=None, device="auto", precision="auto"):
        """Run the segmenter in this process and write (or replace) the ROI segment."""
        validity_node = validity_node or self.validity_node_for(stiffness_node)
        exam = exam_from_nodes(stiffness_node, validity_node)
        roi = self.segmenter(model_path, device, precision)(exam)
        node = self._segmentation_node(scene, stiffness_node, segmentation_node)
        set_roi_segment(node, roi, exam.geometry.ijk_to_lps(), stiffness_node)
        return node

    def import_roi_file(self, scene, stiffness_node, roi_file, segmentation_node=None):
        """Load an ROI file (e.g. written by a background `mrefibrosis segment`) as the ROI segment."""
        exam = exam_from_nodes(stiffness_node, self.validity_node_for(stiffness_node))
        roi = read_roi(roi_file, exam.geometry)
        node = self._segmentation_node(scene, stiffness_node, segmentation_node)
        set_roi_segment(node, roi, exam.geometry.ijk_to_lps(), stiffness_node)
        return node

    @staticmethod
    def segment_command(stiffness_node, out_dir, model_path=None, device="auto") -> list[str]:
        """Arguments of a child `mrefibrosis segment` run, so long work never blocks the GUI."""
        folder = stiffness_node.GetAttribute(ATTR + "SourceFolder")
        if not folder:
            raise ValueError("this volume was not loaded with 'Load MRE exam from folder'; use Segment in this process instead.")
        cmd = ["-m", "mrefibrosis", "segment", folder, "--out", str(out_dir), "--device", device, "--study", stiffness_node.GetAttribute(ATTR + "ExamKey")]
        if model_path:
            cmd += ["--model", str(model_path)]
        return cmd

    # ------------------------------------------------------------------ compute / export
    def compute(self, scene, stiffness_node, segmentation_node, validity_node=None, preset="seed", table_node=None, min_area_cm2: float = MIN_AREA_CM2):
        """Measure the ROI segment as edited now, on the stored kPa values; fill a table node."""
        validity_node = validity_node or self.validity_node_for(stiffness_node)
        exam = exam_from_nodes(stiffness_node, validity_node)
        segment_id = find_roi_segment(segmentation_node)
        roi = segment_mask(segmentation_node, segment_id, stiffness_node)
        result = process_exam(exam, preset=get_preset(preset), min_area_cm2=min_area_cm2, roi_mask=roi, roi_name=segment_id)
        if table_node is None:
            table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{stiffness_node.GetName()} measurements")
        fill_table(table_node, result)
        self.last_result = result
        return self.last_result, table_node

    def export(self, out_dir, result: ExamResult | None = None, stiffness_node=None, dicom: bool = False) -> list[Path]:
        """measurements.csv, result.json and roi.seg.nrrd in the CLI's format; with dicom, also
        SEG + SR + overlay, for exams loaded from their DICOM folder."""
        result = result or self.last_result
        if result is None:
            raise ValueError("nothing to export yet: press Compute first.")
        if dicom:
            folder = stiffness_node.GetAttribute(ATTR + "SourceFolder") if stiffness_node is not None else None
            if not folder:
                raise ValueError("DICOM export needs an exam loaded with 'Load MRE exam from folder'.")
            source = read_exam(folder, ReadOptions(study=stiffness_node.GetAttribute(ATTR + "ExamKey")))
            if source.stiffness_kpa.shape != result.exam.stiffness_kpa.shape:
                raise ValueError("the volume no longer matches its DICOM series; load the exam again.")
            result.exam.source_headers = source.source_headers
        return write_results(result, out_dir, dicom=dicom)
