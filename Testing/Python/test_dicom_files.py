"""One parse per file: the pixel read uses the folder scan's header and reads only the pixel data
element, and falls back to a whole-file read whenever that shortcut could be wrong."""

import os
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fixtures import make_ge_exam

from mrefibrosis.reading import dicom_files
from mrefibrosis.reading.dicom_files import read_header_located, read_pixels
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.reading.series import scan_folder


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture()
def no_whole_file_reads(monkeypatch):
    """Fails the test if a pixel read parses a whole file again."""
    calls = []
    real = dicom_files._dcmread

    def counting(path, stop_before_pixels):
        if not stop_before_pixels:
            calls.append(path)
        return real(path, stop_before_pixels)

    monkeypatch.setattr(dicom_files, "_dcmread", counting)
    return calls


def test_pixel_read_from_the_scans_header_equals_a_whole_file_read(tmp_path, no_whole_file_reads):
    exam = make_ge_exam(tmp_path / "exam")
    for path in _files(exam.path):
        known = read_header_located(path)
        assert known.pixels is not None
        # the element the header read stopped at, in the file's own bytes: (7FE0,0010) little endian
        assert path.read_bytes()[known.pixels.offset : known.pixels.offset + 4] == b"\xe0\x7f\x10\x00"
        ds, values = read_pixels(path, known=known)
        whole = pydicom.dcmread(path)
        np.testing.assert_array_equal(values, whole.pixel_array)
        assert values.dtype == whole.pixel_array.dtype
        assert {e.tag for e in ds} == {e.tag for e in whole}
        for keyword in ("ImagePositionPatient", "PixelSpacing", "RescaleSlope", "SOPInstanceUID", "Rows", "BitsStored"):
            assert ds.get(keyword) == whole.get(keyword)
        assert ds.file_meta.TransferSyntaxUID == whole.file_meta.TransferSyntaxUID
        # the scan's header is not changed by the pixel read (it may be read again), and holds no
        # copy of the file: a scan keeps thousands of them
        assert "PixelData" not in known.header
        assert known.header.buffer is None and ds.buffer is None
    assert no_whole_file_reads == []


def test_whole_exam_reads_each_file_once_and_matches(tmp_path, no_whole_file_reads, monkeypatch):
    exam_dir = make_ge_exam(tmp_path / "exam").path
    fast = read_exam(exam_dir)
    assert no_whole_file_reads == [], "every file was found by the scan: none should be parsed twice"
    monkeypatch.setattr(dicom_files, "_with_pixel_data", lambda path, known: None)
    slow = read_exam(exam_dir)
    assert len(no_whole_file_reads) == len(_files(exam_dir))
    for name in ("stiffness_kpa", "valid", "confidence", "magnitude", "wave_amplitude"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name), err_msg=name)
    assert fast.findings == slow.findings and fast.notes == slow.notes


def test_a_file_changed_after_the_scan_is_read_again_whole(tmp_path):
    """A file replaced between the scan and the pixel read (a PACS re-send, an export still being
    written) must give its new values, never the old header with new bytes or the reverse."""
    exam = make_ge_exam(tmp_path / "exam")
    path = _files(exam.path)[0]
    known = read_header_located(path)
    ds = pydicom.dcmread(path)
    changed = ds.pixel_array.copy()
    changed[0, 0] += 7
    ds.PixelData = changed.tobytes()
    ds.InstanceNumber = 999
    ds.save_as(path)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, known.pixels.mtime_ns + 1_000_000))
    new_ds, values = read_pixels(path, known=known)
    assert int(new_ds.InstanceNumber) == 999
    np.testing.assert_array_equal(values, changed)


def test_bytes_that_are_not_the_pixel_element_fall_back(tmp_path):
    """Same size and time, other bytes where the pixel data began (a copy tool that keeps times):
    the shortcut sees no pixel data tag there and reads the whole file, with its own checks."""
    exam = make_ge_exam(tmp_path / "exam")
    path = _files(exam.path)[0]
    known = read_header_located(path)
    data = bytearray(path.read_bytes())
    st = os.stat(path)
    at = known.pixels.offset
    moved = tmp_path / "moved.dcm"
    shutil.copy(path, moved)
    data[at : at + 4] = b"\x08\x00\x18\x00"  # a (0008,0018) tag where (7FE0,0010) was
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(dicom_files.MREFibrosisError):
        read_pixels(path, known=known)  # the whole-file read finds no pixel data: one clear error
    ds, values = read_pixels(moved, known=read_header_located(moved))
    np.testing.assert_array_equal(values, pydicom.dcmread(moved).pixel_array)


def test_scan_keeps_headers_only_up_to_its_cap(tmp_path, monkeypatch):
    """A scan of a large folder must not hold every header for pixel reads that may never come."""
    exam = make_ge_exam(tmp_path / "exam")
    uncapped = read_exam(exam.path)
    monkeypatch.setattr("mrefibrosis.reading.series.MAX_HEADERS_KEPT", 5)
    scan = scan_folder(exam.path)
    refs = [ref for s in scan.series for ref in s.instances]
    assert sum(ref.known is not None for ref in refs) == 5
    assert len(refs) > 5
    capped = read_exam(exam.path)
    for name in ("stiffness_kpa", "confidence", "magnitude"):
        np.testing.assert_array_equal(getattr(capped, name), getattr(uncapped, name), err_msg=name)
