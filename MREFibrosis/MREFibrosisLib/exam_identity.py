"""Which exam a result, a ROI or a background job belongs to.

Why: the panel's selection changes while work goes on. A Compute result must not be exported with
the DICOM headers of whatever exam is selected later, and a Segment that ends after the user moved
on must land on the exam it was started for. Every result therefore carries the identity of the
volume it was computed on (node ID, exam key, study and series UIDs, a digest of the values), and
every consumer compares it with the identity of the node it is about to use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import slicer
import vtk

ATTR = "MREFibrosis."
ROLE_STIFFNESS = "stiffness"


class ExamMismatchError(ValueError):
    """A result, ROI or job met a different exam than the one it belongs to (one-line message)."""


class NotEngineVolumeError(ValueError):
    """A volume that the engine did not load: its unit (Pa, 10 Pa or kPa) is unknown."""


def is_engine_stiffness(node) -> bool:
    return node is not None and node.GetAttribute(ATTR + "Role") == ROLE_STIFFNESS


def require_engine_stiffness(node) -> None:
    """Refuse a volume the engine did not load: its values may be Pa (GE) or display values."""
    if node is None:
        raise ValueError("select the MRE stiffness volume first (Load MRE exam from folder).")
    if not is_engine_stiffness(node):
        raise NotEngineVolumeError(
            f"'{node.GetName()}' was not loaded by MREFibrosis, so its stiffness unit is unknown (GE stores Pa): "
            "load the exam with 'Load MRE exam from folder' or convert it from the DICOM database."
        )


def values_digest(node) -> str:
    """SHA-1 of the volume's values and geometry: a volume edited or replaced in place changes it."""
    arr = np.ascontiguousarray(slicer.util.arrayFromVolume(node))
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    h = hashlib.sha1(arr.tobytes())
    h.update(str(arr.shape).encode())
    h.update(np.array([m.GetElement(r, c) for r in range(4) for c in range(4)], np.float64).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class ExamIdentity:
    node_id: str
    exam_key: str
    study_uid: str
    series_uid: str
    source_folder: str
    digest: str

    def describe(self) -> str:
        return f"exam {self.exam_key[:8] or '?'} (volume {self.node_id})"

    def mismatch(self, other: ExamIdentity) -> str | None:
        """Why other is not this exam, or None when it is."""
        if other.node_id != self.node_id:
            return f"it belongs to {self.describe()}, not to the selected {other.describe()}"
        for name in ("exam_key", "study_uid", "series_uid", "source_folder"):
            if getattr(other, name) != getattr(self, name):
                return f"the volume {self.node_id} now holds another exam ({name.replace('_', ' ')} changed)"
        if other.digest != self.digest:
            return f"the values of volume {self.node_id} changed since"
        return None


def identity_of(node) -> ExamIdentity:
    """The identity of an engine-loaded stiffness volume as it is in the scene now."""
    require_engine_stiffness(node)
    return ExamIdentity(
        node_id=node.GetID(),
        exam_key=node.GetAttribute(ATTR + "ExamKey") or "",
        study_uid=node.GetAttribute(ATTR + "StudyInstanceUID") or "",
        series_uid=node.GetAttribute(ATTR + "SeriesInstanceUID") or "",
        source_folder=node.GetAttribute(ATTR + "SourceFolder") or "",
        digest=values_digest(node),
    )


def require_same_exam(expected: ExamIdentity, node, what: str) -> None:
    """Raise ExamMismatchError unless node is still the exam `expected` describes."""
    reason = expected.mismatch(identity_of(node))
    if reason:
        raise ExamMismatchError(f"{what} refused: {reason}; select that exam, or Compute again on this one.")
