"""What leaves the engine: the result contract every front end renders, ROI files in and out,
all-or-nothing output folders, and DICOM SEG + SR + overlay."""

from .._lazy import lazy_exports

_EXPORTS = {
    "ExamResult": "exam_result",
    "Provenance": "exam_result",
    "RoiKind": "exam_result",
    "RoiSource": "exam_result",
    "CSV_COLUMNS": "exam_result",
    "read_roi": "roi_files",
    "write_seg_nrrd": "roi_files",
    "staged_outputs": "staged_files",
    "atomic_write_text": "staged_files",
    "build_dicom_results": "dicom_results",
    "save_dicom_results": "dicom_results",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
