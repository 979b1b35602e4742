"""Find the ROI that MREFibrosis already stored into a study (the PACS worker's or an earlier
export's DICOM SEG), so a reviewer starts from the ROI the reported number was measured on
instead of a new run of the segmenter.

Only SEGs that MREFibrosis wrote for this exact stiffness series count: another tool's SEG, or
one for another series of the study, is left alone. The newest wins (content date and time).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..reading.series import scan_folder
from .dicom_result_files import MANUFACTURER


def stored_roi_file(folder: str | os.PathLike, stiffness_series_uid: str | None) -> Path | None:
    """The newest MREFibrosis DICOM SEG below folder that references stiffness_series_uid, or None."""
    if not stiffness_series_uid:
        return None
    found = []
    for s in scan_folder(folder).series:
        header = s.first_header
        if s.modality.upper() != "SEG" or s.manufacturer != MANUFACTURER or not s.instances:
            continue
        referenced = {str(r.get("SeriesInstanceUID", "")) for r in header.get("ReferencedSeriesSequence", [])}
        if stiffness_series_uid in referenced:
            when = f"{header.get('ContentDate', '')}{header.get('ContentTime', '')}"
            found.append((when, s.instances[0].path))
    return max(found)[1] if found else None
