"""Bad input from the ecosystem notes: each gives a typed one-line error (or is survived), never a
traceback, in bounded time, and leaves no partial output."""

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fixtures import make_ge_exam
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence

from mrefibrosis.cli import main
from mrefibrosis.errors import DicomReadError, PixelDataError
from mrefibrosis.reading.dicom_files import read_header, read_pixels
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import write_seg_nrrd


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    fx = make_ge_exam(root / "exam", n_slices=3, rows=48, cols=48, seed=11)
    exam = read_exam(root / "exam")
    roi = np.zeros(exam.geometry.shape, bool)
    roi[:, 16:26, 10:20] = True
    write_seg_nrrd(root / "roi.seg.nrrd", roi, exam.geometry)
    return root, fx, roi


def copy_exam(good, dst: Path) -> Path:
    shutil.copytree(good[0] / "exam", dst)
    return dst


def stiffness_files(exam_dir: Path) -> list[Path]:
    return sorted((exam_dir / "series_0500").iterdir())


def run_measure(exam_dir, good, out, *extra):
    proc = subprocess.run(
        [sys.executable, "-m", "mrefibrosis", "-q", "measure", str(exam_dir), "--out", str(out), "--roi", str(good[0] / "roi.seg.nrrd"), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stderr


def assert_clean_failure(code, err, out, *words):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]
    assert not out.exists() or not any(out.iterdir())


def rewrite(path: Path, change, **save):
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, **save)


# ---------------------------------------------------------------- single files: header level


def _valid_bytes(good) -> bytes:
    return stiffness_files(good[0] / "exam")[0].read_bytes()


def _nested(depth: int) -> Dataset:
    ds = Dataset()
    inner = ds
    for _ in range(depth):
        item = Dataset()
        inner.ReferencedImageSequence = Sequence([item])
        inner = item
    return ds


BAD_FILES = {
    "empty": lambda good: b"",
    "random": lambda good: np.random.default_rng(0).bytes(4096),
    "text": lambda good: b"patient list\nthis is not DICOM\n" * 20,
    "no_preamble": lambda good: _valid_bytes(good)[132:],
    "truncated_header": lambda good: _valid_bytes(good)[:300],
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_headers_raise_typed_errors(tmp_path, good, case):
    f = tmp_path / "IM0001.dcm"
    f.write_bytes(BAD_FILES[case](good))
    with pytest.raises(DicomReadError) as info:
        read_header(f)
    assert "\n" not in str(info.value) and "IM0001.dcm" in str(info.value)


def test_element_length_larger_than_file(tmp_path, good):
    data = bytearray(_valid_bytes(good))
    i = data.index(b"LO", 132)  # first explicit-VR LO element after the meta header
    data[i + 2 : i + 4] = struct.pack("<H", 0xFFF0)
    f = tmp_path / "long.dcm"
    f.write_bytes(bytes(data[: i + 200]))
    with pytest.raises((DicomReadError, PixelDataError)):
        read_pixels(f)


def test_deeply_nested_sequences(tmp_path, good):
    exam_dir = copy_exam(good, tmp_path / "exam")
    f = stiffness_files(exam_dir)[0]
    ds = pydicom.dcmread(f)
    ds.ReferencedImageSequence = _nested(1000).ReferencedImageSequence
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20000)
    try:
        ds.save_as(f)
    finally:
        sys.setrecursionlimit(limit)
    code, err = run_measure(exam_dir, good, tmp_path / "out")
    if code != 0:  # either survived (the nesting is never walked) or refused in one line
        assert_clean_failure(code, err, tmp_path / "out", "nested")
    assert "Traceback" not in err


def test_junk_files_in_the_folder_are_skipped(tmp_path, good):
    exam_dir = copy_exam(good, tmp_path / "exam")
    for name, make in BAD_FILES.items():
        (exam_dir / f"{name}.dcm").write_bytes(make(good))
    (exam_dir / "notes.txt").write_text("hello")
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.DirectoryRecordSequence = Sequence([])
    ds.save_as(exam_dir / "DICOMDIR", enforce_file_format=True)
    os.symlink(exam_dir, exam_dir / "loop")  # a symlink loop must not trap the scan
    code, err = run_measure(exam_dir, good, tmp_path / "out")
    assert code == 0, err
    code = main(["inspect", str(exam_dir)])
    assert code == 0


# ---------------------------------------------------------------- transfer syntaxes


@pytest.mark.parametrize("syntax", ["big_endian", "deflated", "implicit"])
def test_other_transfer_syntaxes_read_the_same(tmp_path, good, syntax):
    exam_dir = copy_exam(good, tmp_path / "exam")
    for f in stiffness_files(exam_dir):
        ds = pydicom.dcmread(f)
        if syntax == "big_endian":
            values = ds.pixel_array  # decode while the file is still little endian
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
            ds.PixelData = values.astype(">i2").tobytes()
            pydicom.dcmwrite(f, ds, implicit_vr=False, little_endian=False, force_encoding=True)
        elif syntax == "deflated":
            ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
            ds.save_as(f)
        else:
            ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
            ds.save_as(f, implicit_vr=True)
    exam = read_exam(exam_dir)
    s = good[1].stiffness_pa
    np.testing.assert_array_equal(exam.valid, (s != 0) & (s != 32766))
    np.testing.assert_allclose(exam.stiffness_kpa[exam.valid], s[exam.valid] / 1000.0, rtol=1e-6)


# ---------------------------------------------------------------- pixel data


def _set_missing_pixels(ds):
    del ds.PixelData


def _set_rows_mismatch(ds):
    ds.Rows = 96


def _rle_bomb(ds):
    ds.file_meta.TransferSyntaxUID = pydicom.uid.RLELossless
    ds.Rows = ds.Columns = 8192
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"


def _multiframe_bomb(ds):
    ds.file_meta.TransferSyntaxUID = pydicom.uid.RLELossless
    ds.Rows = ds.Columns = 4000
    ds.NumberOfFrames = 10
    ds.PixelData = encapsulate([b"\x00" * 64])
    ds["PixelData"].VR = "OB"


def _corrupt_rle(ds):
    ds.file_meta.TransferSyntaxUID = pydicom.uid.RLELossless
    ds.PixelData = encapsulate([b"\xff" * 200])
    ds["PixelData"].VR = "OB"


def _no_decoder(ds):
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"  # HTJ2K: no decoder installed here
    ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00" * 100])
    ds["PixelData"].VR = "OB"


def _bad_spacing(value):
    def change(ds):
        ds.PixelSpacing = value

    return change


def _no_position(ds):
    del ds.ImagePositionPatient


PIXEL_CASES = {
    "missing_pixel_data": (_set_missing_pixels, ["no pixel data"]),
    "rows_inconsistent": (_set_rows_mismatch, ["truncated"]),
    "decompression_bomb": (_rle_bomb, ["cap"]),
    "multiframe_bomb": (_multiframe_bomb, ["cap"]),
    "corrupt_rle": (_corrupt_rle, ["corrupt"]),
    "no_decoder": (_no_decoder, ["install"]),
    "zero_spacing": (_bad_spacing([0, 0]), ["PixelSpacing"]),
    "negative_spacing": (_bad_spacing([-1.5, 1.5]), ["PixelSpacing"]),
    "missing_position": (_no_position, ["ImagePositionPatient"]),
}


@pytest.mark.parametrize("case", sorted(PIXEL_CASES))
def test_bad_stiffness_image_fails_cleanly(tmp_path, good, case):
    change, words = PIXEL_CASES[case]
    exam_dir = copy_exam(good, tmp_path / "exam")
    targets = stiffness_files(exam_dir) if "spacing" in case else stiffness_files(exam_dir)[1:2]
    for f in targets:
        rewrite(f, change)
    code, err = run_measure(exam_dir, good, tmp_path / "out")
    assert_clean_failure(code, err, tmp_path / "out", *words)


def test_truncated_pixel_data(tmp_path, good):
    exam_dir = copy_exam(good, tmp_path / "exam")
    f = stiffness_files(exam_dir)[0]
    f.write_bytes(f.read_bytes()[:-500])
    code, err = run_measure(exam_dir, good, tmp_path / "out")
    assert_clean_failure(code, err, tmp_path / "out")


def test_invalid_ds_string(tmp_path, good):
    exam_dir = copy_exam(good, tmp_path / "exam")
    for f in stiffness_files(exam_dir):
        data = f.read_bytes()
        ds = pydicom.dcmread(f)
        old = ds["PixelSpacing"].value
        text = "\\".join(str(v) for v in old).encode()
        data = data.replace(text, b"abc\\1.5" + b" " * (len(text) - 7), 1) if len(text) >= 7 else data
        f.write_bytes(data)
    code, err = run_measure(exam_dir, good, tmp_path / "out")
    assert_clean_failure(code, err, tmp_path / "out")


def test_nan_and_inf_never_enter_statistics(tmp_path, good):
    exam_dir = copy_exam(good, tmp_path / "exam")
    files = stiffness_files(exam_dir)
    s = good[1].stiffness_pa.astype(np.float32)
    expected_mask = good[2] & (s != 0) & (s != 32766)
    for f in files:
        ds = pydicom.dcmread(f)
        k = int(np.argmin(np.abs(good[1].stack.positions[:, 2][np.argsort(good[1].stack.positions[:, 2])] - float(ds.ImagePositionPatient[2]))))
        img = ds.pixel_array.astype(np.float32)
        img[img == 32766] = np.nan
        img[20, 12] = np.inf
        expected_mask[k, 20, 12] = False
        del ds.PixelData
        ds.BitsAllocated = 32
        ds.FloatPixelData = img.tobytes()
        ds.save_as(f)
    exam = read_exam(exam_dir)
    assert np.isfinite(exam.stiffness_kpa[exam.valid]).all()
    from mrefibrosis.measure.roi_stats import measure_roi

    m = measure_roi(exam, good[2])
    assert m.pooled.pixels == expected_mask.sum()
    assert m.mean_kpa == pytest.approx(s[expected_mask].mean() / 1000.0, rel=1e-5)


def test_colour_only_is_never_measured(tmp_path, good):
    from mrefibrosis.synth.vendor_dicom import StudyContext, axial_stack, write_siemens_exam

    el = np.random.default_rng(0).integers(100, 500, size=(2, 32, 32))
    rgb = np.stack([el.clip(0, 255)] * 3, axis=-1).astype(np.uint8)
    write_siemens_exam(tmp_path / "exam", StudyContext("rgb", "SIEMENS", "X"), axial_stack(2, 32, 32, 2, 8, 2), el, None, color=rgb)
    shutil.rmtree(tmp_path / "exam" / "series_0013")
    code, err = run_measure(tmp_path / "exam", good, tmp_path / "out")
    assert_clean_failure(code, err, tmp_path / "out", "colour")


def test_selecting_a_colour_series_is_refused(tmp_path, good):
    from mrefibrosis.synth.vendor_dicom import StudyContext, axial_stack, write_siemens_exam

    el = np.random.default_rng(0).integers(100, 500, size=(2, 32, 32))
    rgb = np.stack([el.clip(0, 255)] * 3, axis=-1).astype(np.uint8)
    write_siemens_exam(tmp_path / "exam", StudyContext("rgb", "SIEMENS", "X"), axial_stack(2, 32, 32, 2, 8, 2), el, None, color=rgb)
    code, err = run_measure(tmp_path / "exam", good, tmp_path / "out", "--stiffness-series", "15")
    assert_clean_failure(code, err, tmp_path / "out", "colour")


# ---------------------------------------------------------------- exam structure


def test_mixed_studies_need_a_choice(tmp_path, good):
    root = tmp_path / "two"
    copy_exam(good, root / "a")
    make_ge_exam(root / "b", n_slices=3, rows=48, cols=48, seed=12, study_key="other")
    code, err = run_measure(root, good, tmp_path / "out")
    assert_clean_failure(code, err, tmp_path / "out", "--study")
    key = read_exam(root / "a").exam_key
    code, err = run_measure(root, good, tmp_path / "out2", "--study", key)
    assert code == 0, err


def test_duplicate_instances_are_ignored(tmp_path, good):
    exam_dir = copy_exam(good, tmp_path / "exam")
    for f in stiffness_files(exam_dir):
        shutil.copy(f, f.with_name(f.stem + "_copy.dcm"))
    assert run_measure(exam_dir, good, tmp_path / "out")[0] == 0


def test_uneven_spacing_and_single_slice(tmp_path, good):
    exam_dir = copy_exam(good, tmp_path / "exam")
    f = stiffness_files(exam_dir)[0]
    rewrite(
        f,
        lambda ds: setattr(
            ds, "ImagePositionPatient", [float(ds.ImagePositionPatient[0]), float(ds.ImagePositionPatient[1]), float(ds.ImagePositionPatient[2]) + 3.0]
        ),
    )
    exam = read_exam(exam_dir)
    assert any("uneven" in n for n in exam.notes)
    one = tmp_path / "one"
    make_ge_exam(one, n_slices=1, rows=48, cols=48, seed=11, study_key="single")
    exam1 = read_exam(one)
    assert exam1.n_slices == 1
    roi = np.zeros(exam1.geometry.shape, bool)
    roi[0, 16:26, 10:20] = True
    write_seg_nrrd(tmp_path / "one.seg.nrrd", roi, exam1.geometry)
    assert main(["-q", "measure", str(one), "--out", str(tmp_path / "o1"), "--roi", str(tmp_path / "one.seg.nrrd")]) == 0


def test_no_valid_pixels_gives_indeterminate(tmp_path, good):
    import json

    exam_dir = copy_exam(good, tmp_path / "exam")
    for f in stiffness_files(exam_dir):

        def zero(ds):
            ds.PixelData = np.zeros((ds.Rows, ds.Columns), np.int16).tobytes()

        rewrite(f, zero)
    code, err = run_measure(exam_dir, good, tmp_path / "out")
    assert code == 0, err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["status"] == "indeterminate" and result["mean_kpa"] is None and result["stage"] is None


# ---------------------------------------------------------------- security and privacy


def test_hostile_identifiers_never_reach_paths_or_logs(tmp_path, good, monkeypatch):
    monkeypatch.setattr(pydicom.config.settings, "writing_validation_mode", pydicom.config.IGNORE)
    monkeypatch.setattr(pydicom.config.settings, "reading_validation_mode", pydicom.config.IGNORE)
    exam_dir = copy_exam(good, tmp_path / "exam")
    hostile = "../../evil/" + "A" * 10000

    def change(ds):
        ds.PatientID = "../../../tmp/pwn\x00id"
        ds.PatientName = "EVIL^../../x"
        ds.SpecificCharacterSet = "ISO_IR 999"
        ds.InstanceNumber = 71

    for series in exam_dir.iterdir():
        for f in series.iterdir():
            rewrite(f, change)
            # an invalid IS value, patched into the bytes (pydicom refuses to write one)
            f.write_bytes(f.read_bytes().replace(b"\x20\x00\x13\x00IS\x02\x0071", b"\x20\x00\x13\x00IS\x02\x00x1"))
    # a 10,000-character UID on the stiffness series
    for f in stiffness_files(exam_dir):
        rewrite(f, lambda ds: ds.__setitem__("SeriesInstanceUID", pydicom.DataElement(0x0020000E, "UI", hostile)))
    out = tmp_path / "out"
    before = set(os.listdir(tmp_path))
    code, err = run_measure(exam_dir, good, out)
    assert code == 0, err
    assert set(os.listdir(tmp_path)) == before | {"out"}
    assert sorted(os.listdir(out)) == ["measurements.csv", "result-set.json", "result.json", "roi.seg.nrrd"]
    blob = err + "".join(p.read_bytes().decode("latin-1") for p in out.iterdir())
    assert "pwn" not in blob and "EVIL" not in blob and "AAAAAAAAAA" not in blob


def test_polyglot_preamble_is_only_read(tmp_path, good):
    exam_dir = copy_exam(good, tmp_path / "exam")
    marker = tmp_path / "executed"
    for f in stiffness_files(exam_dir):
        data = bytearray(f.read_bytes())
        script = f"#!/bin/sh\ntouch {marker}\nexit 0\n".encode()
        data[: len(script)] = script
        f.write_bytes(bytes(data))
    assert run_measure(exam_dir, good, tmp_path / "out")[0] == 0
    assert not marker.exists()


def test_written_dicom_has_zeroed_preamble(good):
    for f in stiffness_files(good[0] / "exam"):
        assert f.read_bytes()[:128] == b"\x00" * 128


def test_a_study_path_the_system_cannot_open_is_one_line(tmp_path, capsys):
    """A name over the file system's limit (or a loop of links) is the user's path, not a bug."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for study in ("x" * 300, str(loop / "exam")):
        for argv in (["inspect", study], ["measure", study, "--out", str(tmp_path / "o"), "--roi", str(tmp_path / "r.seg.nrrd")]):
            assert main(["-q", *argv]) != 0
            err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
            assert len(err) == 1 and "internal error" not in err[0] and "give the folder" in err[0], err
