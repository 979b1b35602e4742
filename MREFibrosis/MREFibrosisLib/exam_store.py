"""The engine's own Exam for each stiffness volume the engine loaded, handed to Segment and Compute whole.

Why: an Exam rebuilt from MRML volumes carries only the fields someone remembered to copy (11 of 21;
the phase-offset figures of the breath-hold check were not among them), so Slicer's Compute said
`ok` where the CLI flagged misregistered slices on the same exam. The Lib therefore keeps the Exam
the engine read, keyed by the volume, and takes only the edited ROI from MRML. The volume's values
digest is checked before each use: a volume replaced or edited in place is read again from its
DICOM files, once. Only a volume whose files are gone (a saved scene opened elsewhere) falls back to
an Exam rebuilt from the scene's volumes, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import slicer

from mrefibrosis.pipeline import ModelOutput
from mrefibrosis.reading.exam import Exam
from mrefibrosis.reading.exam_loader import ReadOptions, read_exam

from .exam_identity import ExamMismatchError, identity_of, require_engine_stiffness, values_digest
from .exam_nodes import VALIDITY_REF, exam_from_nodes

FROM_ENGINE = "the engine's reading of the DICOM files"
REBUILT = (
    "rebuilt from the scene's volumes (its DICOM folder is gone): no phase-offset check, "
    "and DICOM results cannot be written; load the exam from its folder for the full checks"
)


@dataclass
class StoredExam:
    exam: Exam
    digest: str  # values_digest of the stiffness volume when the exam was kept
    origin: str  # FROM_ENGINE or REBUILT
    # what the last Segment said about this exam beyond its ROI (predicted liver, TTA agreement): the
    # liver-based checks of Compute need it, as `measure` has it on its automatic ROI
    model_output: ModelOutput | None = None


class ExamStore:
    """Exam per stiffness node ID; `exam_for` never returns an Exam of other values than the node's."""

    def __init__(self) -> None:
        self._exams: dict[str, StoredExam] = {}

    def keep(self, stiffness_node, exam: Exam) -> None:
        self._exams[stiffness_node.GetID()] = StoredExam(exam, values_digest(stiffness_node), FROM_ENGINE)

    def forget(self, node_id: str) -> None:
        self._exams.pop(node_id, None)

    def stored(self, stiffness_node) -> StoredExam:
        """The kept Exam of this volume as it is now: read again from its folder when the volume
        changed or was never kept in this session; rebuilt from the volumes only when the folder is gone."""
        require_engine_stiffness(stiffness_node)
        digest = values_digest(stiffness_node)
        kept = self._exams.get(stiffness_node.GetID())
        if kept is not None and kept.digest == digest:
            return kept
        kept = self._read_again(stiffness_node, digest)
        self._exams[stiffness_node.GetID()] = kept
        return kept

    def exam_for(self, stiffness_node) -> Exam:
        return self.stored(stiffness_node).exam

    @staticmethod
    def _read_again(stiffness_node, digest: str) -> StoredExam:
        from pathlib import Path

        identity = identity_of(stiffness_node)
        if not identity.source_folder or not Path(identity.source_folder).is_dir():
            return StoredExam(exam_from_nodes(stiffness_node, stiffness_node.GetNodeReference(VALIDITY_REF)), digest, REBUILT)
        options = ReadOptions(study=identity.exam_key or None, stiffness_series=identity.series_uid or None)
        exam = read_exam(identity.source_folder, options)
        values = slicer.util.arrayFromVolume(stiffness_node)
        if exam.stiffness_kpa.shape != values.shape or not np.array_equal(
            np.nan_to_num(values.astype(np.float32)), np.nan_to_num(exam.stiffness_kpa.astype(np.float32))
        ):
            raise ExamMismatchError(
                f"the values of '{stiffness_node.GetName()}' no longer match its DICOM files; load the exam again with 'Load MRE exam from folder'."
            )
        return StoredExam(exam, digest, FROM_ENGINE)
