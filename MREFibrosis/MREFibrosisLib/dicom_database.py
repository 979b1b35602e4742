"""Volumes that came through Slicer's DICOM browser, read again by the engine.

Why: Slicer's DICOM plugin loads stored values with the rescale applied and nothing more: a GE
stiffness series then holds Pa (2156 for 2.16 kPa), a Siemens one the display scale. Measuring it
as kPa gives numbers 1000x off. Instead, the study's files are looked up in the DICOM database and
read by the engine, which decides the unit from the headers, checks it against liver values, and
pairs the elastogram with its confidence map; the panel says that it converted.

`database` is Slicer's ctkDICOMDatabase (`slicer.dicomDatabase`) or anything with the same four
methods: fileForInstance, studyForSeries, seriesForStudy, filesForSeries.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

DICOM_INSTANCE_UIDS = "DICOM.instanceUIDs"  # set by Slicer's DICOM plugins on the volumes they load


class NotInDatabaseError(ValueError):
    """The volume did not come from the DICOM database, or its files are gone (one-line message)."""


def instance_uids(volume_node) -> list[str]:
    return (volume_node.GetAttribute(DICOM_INSTANCE_UIDS) or "").split()


GRID_TAGS = ["Rows", "Columns", "FrameOfReferenceUID", "ImageOrientationPatient"]


def _grid_of(path: str) -> tuple | None:
    """(rows, columns, frame of reference, orientation) of one file's image, or None when unreadable."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=GRID_TAGS)
        orientation = tuple(round(float(v), 3) for v in ds.get("ImageOrientationPatient", []) or [])
        return int(ds.Rows), int(ds.Columns), str(ds.get("FrameOfReferenceUID", "") or ""), orientation
    except Exception:
        return None


def _same_acquisition(grid: tuple | None, other: tuple | None) -> bool:
    """The MRE series of one acquisition (elastograms, confidence, magnitude, raw, waves) share the
    elastogram's image grid; a study's other series (T1, T2, a 4096 x 4096 research export) do not.
    A missing frame of reference or orientation is not held against a series."""
    if grid is None or other is None or grid[:2] != other[:2]:
        return False
    return all(not a or not b or a == b for a, b in zip(grid[2:], other[2:]))


def study_files_for_volume(volume_node, database) -> tuple[list[str], str]:
    """The files of the series of the volume's study that lie on its grid (its MRE acquisition: a
    study from the PACS may hold hundreds of other images, which the engine need not read), and the
    volume's SeriesInstanceUID."""
    import pydicom

    uids = instance_uids(volume_node)
    if not uids:
        raise NotInDatabaseError(f"'{volume_node.GetName()}' did not come from the DICOM database: load the exam with 'Load MRE exam from folder' instead.")
    first = database.fileForInstance(uids[0])
    if not first or not os.path.exists(first):
        raise NotInDatabaseError(f"the DICOM files of '{volume_node.GetName()}' are no longer where the DICOM database says: import the exam again.")
    header = pydicom.dcmread(first, stop_before_pixels=True, specific_tags=["StudyInstanceUID", "SeriesInstanceUID"])
    series_uid = str(header.SeriesInstanceUID)
    study_uid = database.studyForSeries(series_uid) or str(header.StudyInstanceUID)
    grid = _grid_of(first)
    files = []
    for s in database.seriesForStudy(study_uid):
        members = [f for f in database.filesForSeries(s) if f and os.path.exists(f)]
        if members and (s == series_uid or _same_acquisition(grid, _grid_of(members[0]))):
            files += members
    files = list(dict.fromkeys(files))
    if not files:
        raise NotInDatabaseError(f"no files of study of '{volume_node.GetName()}' were found in the DICOM database: import the exam again.")
    return files, series_uid


def stage_study_folder(files: list[str], root: str | os.PathLike | None = None) -> Path:
    """A folder holding (hard links to, or copies of) exactly these files, for the engine's folder reader.

    Named by a hash of the file list, so converting the same study twice reuses it; kept for the
    session, since a later DICOM export re-reads the headers from it."""
    digest = hashlib.sha1("\n".join(sorted(files)).encode()).hexdigest()[:16]
    base = Path(root) if root is not None else Path(tempfile.gettempdir()) / "mrefibrosis-dicom-database"
    folder = base / digest
    if folder.is_dir() and len(list(folder.iterdir())) == len(files):
        return folder
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{digest}-", dir=base))
    for n, f in enumerate(files):
        target = staging / f"{n:06d}.dcm"
        try:
            os.link(f, target)  # the engine's folder scan follows no symlinks; a hard link costs nothing
        except OSError:  # another file system, or no hard links there: copy
            shutil.copy2(f, target)
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)
    return folder
