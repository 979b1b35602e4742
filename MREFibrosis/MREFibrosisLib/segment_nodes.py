"""The liver ROI as a Slicer segmentation node: written from a mask, found again by ID or terminology."""

from __future__ import annotations

import numpy as np
import slicer
import vtk

from mrefibrosis.results.roi_files import LIVER_SCT, LIVER_TERMINOLOGY, ROI_SEGMENT_ID, ROI_SEGMENT_NAME

from .exam_nodes import LPS_TO_RAS, _vtk_matrix

TERMINOLOGY_TAG = "TerminologyEntry"


def set_roi_segment(segmentation_node, mask_kji: np.ndarray, ijk_to_lps: np.ndarray, reference_volume) -> str:
    """Replace the ROI segment (ID mre_liver_roi, liver terminology) with this mask."""
    from vtk.util.numpy_support import numpy_to_vtk

    segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(reference_volume)
    segmentation = segmentation_node.GetSegmentation()
    if segmentation.GetSegment(ROI_SEGMENT_ID) is not None:
        segmentation.RemoveSegment(ROI_SEGMENT_ID)
    img = slicer.vtkOrientedImageData()
    k, j, i = mask_kji.shape
    img.SetDimensions(i, j, k)
    img.GetPointData().SetScalars(numpy_to_vtk(np.ascontiguousarray(mask_kji.astype(np.uint8)).ravel(), deep=True, array_type=vtk.VTK_UNSIGNED_CHAR))
    img.SetImageToWorldMatrix(_vtk_matrix(LPS_TO_RAS @ ijk_to_lps))
    segment = slicer.vtkSegment()
    segment.SetName(ROI_SEGMENT_NAME)
    segment.SetColor(0.86, 0.38, 0.2)
    segment.SetTag(TERMINOLOGY_TAG, LIVER_TERMINOLOGY)
    segment.AddRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(), img)
    segmentation.AddSegment(segment, ROI_SEGMENT_ID)
    return ROI_SEGMENT_ID


def find_roi_segment(segmentation_node) -> str:
    """The ROI segment's ID: ours, else the one tagged liver, else the only one. Names are ignored."""
    segmentation = segmentation_node.GetSegmentation()
    if segmentation.GetSegment(ROI_SEGMENT_ID) is not None:
        return ROI_SEGMENT_ID
    ids = [segmentation.GetNthSegmentID(n) for n in range(segmentation.GetNumberOfSegments())]
    for sid in ids:
        tag = vtk.reference("")
        if segmentation.GetSegment(sid).GetTag(TERMINOLOGY_TAG, tag) and f"^{LIVER_SCT}^" in str(tag):
            return sid
    if len(ids) == 1:
        return ids[0]
    raise ValueError("no liver ROI segment found: keep the segment made by Segment, or tag one as Liver, or keep a single segment.")


def segment_mask(segmentation_node, segment_id: str, reference_volume) -> np.ndarray:
    """The segment as a (slices, rows, columns) bool array on the reference volume's grid, as edited now."""
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    scene = reference_volume.GetScene()
    label = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "__mrefibrosis_tmp__")
    try:
        if not slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(segmentation_node, ids, label, reference_volume):
            raise RuntimeError("export of the ROI segment failed")
        return slicer.util.arrayFromVolume(label) > 0
    finally:
        if label.GetDisplayNode() is not None:
            scene.RemoveNode(label.GetDisplayNode())
        scene.RemoveNode(label)
