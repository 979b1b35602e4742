"""From a folder of DICOM files to an `Exam`: defensive file reading, series classification (GE,
Siemens, by headers and by pixels), units, hatch-derived confidence, geometry, and `inspect`."""

from .._lazy import lazy_exports

# lazy, so that the model can load on a thread while this package's pydicom/scipy stack imports
_EXPORTS = {
    "Exam": "exam",
    "SeriesUse": "exam",
    "exam_key_for": "exam",
    "ReadOptions": "exam_loader",
    "build_exam": "exam_loader",
    "find_exams": "exam_loader",
    "read_exam": "exam_loader",
    "Geometry": "geometry",
    "inspect_report": "inspect_report",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
