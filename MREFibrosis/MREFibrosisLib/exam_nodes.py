"""Exams as MRML volume nodes and back.

The stiffness volume holds kPa (the original DICOM values converted, never display values); a
labelmap "validity" volume holds 0 = invalid pixel, 1 = valid but below the confidence threshold,
2 = confidence-valid; 3 marks valid pixels of an exam without confidence data.
"""

from __future__ import annotations

import numpy as np
import slicer
import vtk

from mrefibrosis.reading.exam import Exam
from mrefibrosis.reading.findings import ReaderFinding
from mrefibrosis.reading.geometry import Geometry

from .exam_identity import ATTR

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

INVALID, LOW_CONFIDENCE, CONFIDENT, NO_CONFIDENCE_DATA = 0, 1, 2, 3

# References from the stiffness volume to the exam's other volumes. The magnitude and wave volumes
# feed the model's anatomy channel and the QC (dark liver, driver position), so Segment and Compute
# in Slicer see what the CLI sees on the same exam.
VALIDITY_REF, MAGNITUDE_REF, WAVES_REF = ATTR + "validity", ATTR + "magnitude", ATTR + "waves"


def _vtk_matrix(m: np.ndarray) -> vtk.vtkMatrix4x4:
    out = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            out.SetElement(r, c, float(m[r, c]))
    return out


def numpy_matrix(m: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])


def validity_array(exam: Exam) -> np.ndarray:
    v = np.zeros(exam.valid.shape, np.uint8)
    if exam.confidence_valid is None:
        v[exam.valid] = NO_CONFIDENCE_DATA
    else:
        v[exam.valid] = LOW_CONFIDENCE
        v[exam.valid & exam.confidence_valid] = CONFIDENT
    return v


def add_volume(scene, array: np.ndarray, ijk_to_lps: np.ndarray, name: str, labelmap: bool = False):
    node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode", name)
    node.SetIJKToRASMatrix(_vtk_matrix(LPS_TO_RAS @ ijk_to_lps))
    slicer.util.updateVolumeFromArray(node, np.ascontiguousarray(array))
    node.CreateDefaultDisplayNodes()
    return node


def findings_to_attribute(findings: list[ReaderFinding]) -> str:
    """What the reader noticed at load (a lost slice, a per-slice rescale, ...), kept on the volume so
    that every later Compute reports it, as the CLI does."""
    import json

    return json.dumps([{"flag": f.flag, "message": f.message, "indeterminate": f.indeterminate} for f in findings])


def _findings_from_attribute(text: str | None) -> list[ReaderFinding]:
    import json

    try:
        return [ReaderFinding(str(f["flag"]), str(f["message"]), bool(f.get("indeterminate", False))) for f in json.loads(text or "[]")]
    except (ValueError, TypeError, KeyError):
        return []


def _same_grid_array(node, shape: tuple[int, ...]) -> np.ndarray | None:
    """A referenced volume's voxels as float32, or None when it is gone or no longer on the exam's grid."""
    if node is None:
        return None
    a = slicer.util.arrayFromVolume(node)
    return a.astype(np.float32) if a.shape == shape else None


def exam_from_nodes(stiffness_node, validity_node=None) -> Exam:
    """Rebuild the engine's Exam from the volumes as they are in the scene now, with the magnitude
    and wave volumes the stiffness volume references (when they still match its grid)."""
    kpa = slicer.util.arrayFromVolume(stiffness_node).astype(np.float32)
    m = vtk.vtkMatrix4x4()
    stiffness_node.GetIJKToRASMatrix(m)
    lps = LPS_TO_RAS @ numpy_matrix(m)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    n, rows, cols = kpa.shape
    normal_step = lps[:3, 2]
    geom = Geometry(
        row_direction=lps[:3, 0] / spacing[0],
        column_direction=lps[:3, 1] / spacing[1],
        row_spacing_mm=float(spacing[1]),
        column_spacing_mm=float(spacing[0]),
        positions=np.array([lps[:3, 3] + k * normal_step for k in range(n)]),
        rows=rows,
        columns=cols,
        slice_thickness_mm=float(spacing[2]),
    )
    if validity_node is not None:
        v = slicer.util.arrayFromVolume(validity_node)
        if v.shape != kpa.shape:
            raise ValueError("the validity volume does not match the stiffness volume; load the exam again.")
        valid = v > 0
        confidence_valid = None if np.any(v == NO_CONFIDENCE_DATA) else (v == CONFIDENT)
    else:
        valid = np.isfinite(kpa) & (kpa > 0)
        confidence_valid = None
    frequency = stiffness_node.GetAttribute(ATTR + "DriverFrequencyHz")
    return Exam(
        exam_key=stiffness_node.GetAttribute(ATTR + "ExamKey") or "slicer",
        vendor=stiffness_node.GetAttribute(ATTR + "Vendor") or "UNKNOWN",
        geometry=geom,
        stiffness_kpa=np.nan_to_num(kpa),
        valid=valid,
        confidence_valid=confidence_valid,
        driver_frequency_hz=float(frequency) if frequency else None,
        unit_source=stiffness_node.GetAttribute(ATTR + "UnitSource") or "kPa volume",
        findings=_findings_from_attribute(stiffness_node.GetAttribute(ATTR + "ReaderFindings")),
        magnitude=_same_grid_array(stiffness_node.GetNodeReference(MAGNITUDE_REF), kpa.shape),
        wave_amplitude=_same_grid_array(stiffness_node.GetNodeReference(WAVES_REF), kpa.shape),
    )
