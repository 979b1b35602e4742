"""Header values convert on first use: nothing is converted that is not used, and a conversion
neither warns nor logs (warnings may quote identifying values) and fails as a one-line read error."""

import logging
import pickle
import threading
import warnings
from pathlib import Path

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from mrefibrosis.errors import DicomReadError
from mrefibrosis.reading.dicom_files import DEFER_HEADER_VALUES_BYTES, read_header
from mrefibrosis.reading.lazy_header import quiet_pydicom

BIRTH_DATE = (0x0010, 0x0030)
CONTENT_DATE = (0x0008, 0x0023)
ACQUISITION_MATRIX = (0x0018, 0x1310)


def _write(path: Path, big_private: bytes | None = None) -> Path:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Doe^Jane"
    ds.PatientBirthDate = "19700101"
    ds.ContentDate = "19710202"  # DA and DS elements the reader never uses: converted on first use
    ds.EchoTime = "5"
    if big_private is not None:
        block = ds.private_block(0x0029, "MREFIBROSIS TEST", create=True)
        block.add_new(0x10, "OB", big_private)
    ds.AcquisitionMatrix = [0, 64, 64, 0]  # US, 4 values: an element the reader never uses
    ds.Rows = 2
    ds.save_as(path, enforce_file_format=True)
    return path


def _patch(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert data.count(old) == 1
    path.write_bytes(data.replace(old, new))


@pytest.fixture()
def pydicom_records():
    """The records pydicom's logger passes to a handler of its own. An earlier test may have set its
    level (the command line sets CRITICAL) or disabled it: here it is enabled and at DEBUG."""
    logger = logging.getLogger("pydicom")
    level, disabled = logger.level, logger.disabled
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger.disabled = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.disabled = disabled


def test_values_are_converted_only_when_used(tmp_path):
    header = read_header(_write(tmp_path / "a.dcm"))
    assert not isinstance(header.get_item(BIRTH_DATE), RawDataElement)  # relied on: converted at read
    assert isinstance(header.get_item(ACQUISITION_MATRIX), RawDataElement)
    assert header.Rows == 2
    assert isinstance(header.get_item(ACQUISITION_MATRIX), RawDataElement)  # Rows did not convert the rest
    assert list(header.AcquisitionMatrix) == [0, 64, 64, 0]


def test_a_bad_value_converts_without_a_warning_or_a_log_record_quoting_it(tmp_path, pydicom_records):
    path = _write(tmp_path / "a.dcm")
    _patch(path, b"19700101", b"1970x101")  # a birth date pydicom calls invalid, quoting it (at read)
    _patch(path, b"19710202", b"1971x202")  # and two values converted on first use
    _patch(path, b"DS\x02\x005 ", b"DS\x02\x00ab")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header = read_header(path)
        assert isinstance(header.get_item(CONTENT_DATE), RawDataElement)
        assert str(header.PatientBirthDate) == "1970x101"
        assert str(header.ContentDate) == "1971x202"
        assert str(header.EchoTime) == "ab"
    assert [str(w.message) for w in caught] == []
    logging.getLogger("pydicom").warning("kept: outside a conversion")  # the logger does pass records
    assert [r.getMessage() for r in pydicom_records] == ["kept: outside a conversion"]


def test_a_damaged_element_the_reader_relies_on_fails_the_read_as_before(tmp_path):
    """Rows is converted when the file is read: the scan skips and counts the file, as it did when
    every element was converted there."""
    path = _write(tmp_path / "broken.dcm")
    _patch(path, b"(\x00\x10\x00US\x02\x00\x02\x00", b"(\x00\x10\x00US\x03\x00\x02\x00\x00")  # US of 3 bytes
    with pytest.raises(DicomReadError, match=r"^broken\.dcm: corrupt DICOM header .*re-export the file\.$"):
        read_header(path)


def test_a_damaged_element_used_later_is_a_one_line_read_error_naming_the_file(tmp_path):
    path = _write(tmp_path / "broken.dcm")
    matrix = b"\x18\x00\x10\x13US\x08\x00" + bytes([0, 0, 64, 0, 64, 0, 0, 0])
    _patch(path, matrix, b"\x18\x00\x10\x13US\x07\x00" + bytes([0, 0, 64, 0, 64, 0, 0]))  # US of 7 bytes
    header = read_header(path)
    assert str(header.PatientName) == "Doe^Jane" and header.Rows == 2  # the rest of the header is usable
    with pytest.raises(DicomReadError, match=r"^broken\.dcm: element \(0018,1310\) cannot be read .*re-export it\.$"):
        header[ACQUISITION_MATRIX]
    with pytest.raises(DicomReadError):
        _ = pickle.loads(pickle.dumps(header)).AcquisitionMatrix  # a header sent to a child process keeps the behaviour


def test_values_too_large_to_parse_at_once_are_in_the_header_without_the_file(tmp_path):
    payload = bytes(range(256)) * (DEFER_HEADER_VALUES_BYTES // 256 + 8)
    path = _write(tmp_path / "big.dcm", big_private=payload)
    header = read_header(path)
    path.unlink()  # a PACS worker removes what it read; the header must not go back to the file
    assert header[(0x0029, 0x1010)].value == payload


def test_only_the_reading_thread_is_muted(pydicom_records):
    logger = logging.getLogger("pydicom")
    inside, release = threading.Event(), threading.Event()

    def reader() -> None:
        with quiet_pydicom():
            logger.warning("muted: from the reading thread")
            inside.set()
            release.wait(5)

    thread = threading.Thread(target=reader)
    thread.start()
    assert inside.wait(5)
    logger.warning("kept: another thread's record while the reader is quiet")
    release.set()
    thread.join(5)
    logger.warning("kept: after the quiet block")
    messages = [r.getMessage() for r in pydicom_records]
    assert messages == ["kept: another thread's record while the reader is quiet", "kept: after the quiet block"]
