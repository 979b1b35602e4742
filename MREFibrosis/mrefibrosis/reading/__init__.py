"""From a folder of DICOM files to an `Exam`: defensive file reading, series classification (GE,
Siemens, by headers and by pixels), units, hatch-derived confidence, geometry, and `inspect`."""

from .exam import Exam, SeriesUse, exam_key_for
from .exam_loader import ReadOptions, build_exam, find_exams, read_exam
from .geometry import Geometry
from .inspect_report import inspect_report

__all__ = ["Exam", "Geometry", "ReadOptions", "SeriesUse", "build_exam", "exam_key_for", "find_exams", "inspect_report", "read_exam"]
