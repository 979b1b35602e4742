"""The GE raw series split into phase and magnitude by what each image holds
(reading/raw_series.py), not by instance order: magnitude numbered first made the real GE exam
'indeterminate: liver dark on the magnitude images', interleaved numbers dropped the magnitude
silently, one missing image averaged a phase image into a magnitude slice."""

import random

import numpy as np
import pydicom
import pytest
from fixtures import make_ge_exam
from fuzz_harness import raw_files

from mrefibrosis.reading.exam_loader import read_exam


@pytest.fixture()
def ge(tmp_path):
    fx = make_ge_exam(tmp_path / "ge", seed=31)
    clean = read_exam(fx.path)
    assert np.allclose(clean.magnitude, fx.magnitude.mean(axis=1), atol=1e-3)  # the known answer
    return fx, clean


def _renumber(files, order) -> None:
    for n, f in enumerate(order, start=1):
        ds = pydicom.dcmread(f)
        ds.InstanceNumber = n
        ds.save_as(f)


@pytest.mark.parametrize("how", ["magnitude_first", "interleaved", "shuffled", "no_numbers"])
def test_a_renumbered_raw_series_gives_the_same_magnitude_and_waves(ge, how):
    fx, clean = ge
    files = raw_files(fx.path)
    half = len(files) // 2
    if how == "magnitude_first":
        _renumber(files, files[half:] + files[:half])
    elif how == "interleaved":
        _renumber(files, [f for pair in zip(files[:half], files[half:]) for f in pair])
    elif how == "shuffled":
        order = list(files)
        random.Random(3).shuffle(order)
        _renumber(files, order)
    else:
        for f in files:
            ds = pydicom.dcmread(f)
            del ds.InstanceNumber
            ds.save_as(f)
    exam = read_exam(fx.path)
    assert np.array_equal(exam.magnitude, clean.magnitude)
    if how in ("magnitude_first", "interleaved"):  # the phase offsets keep their time (instance) order
        assert np.array_equal(exam.wave_amplitude, clean.wave_amplitude)
    assert not any(f.flag == "raw_images_missing" for f in exam.findings)


def test_a_missing_magnitude_image_is_named_and_no_phase_image_is_averaged_in(ge):
    fx, _ = ge
    files = raw_files(fx.path)
    half = len(files) // 2
    lost = files[half + 1]  # the second offset of the first slice in write order
    position_z = float(pydicom.dcmread(lost).ImagePositionPatient[2])
    lost.unlink()
    exam = read_exam(fx.path)
    (finding,) = [f for f in exam.findings if f.flag == "raw_images_missing"]
    assert "1 magnitude image(s)" in finding.message and f"{position_z:.1f} mm" in finding.message
    k = int(np.argmin(np.abs(exam.geometry.positions[:, 2] - position_z)))
    offsets = [o for o in range(fx.magnitude.shape[1]) if o != 1]
    # the magnitude of that slice is the mean of its three remaining magnitude images: no phase in it
    # (fixture arrays and the exam are both in increasing position order)
    assert np.allclose(exam.magnitude[k], fx.magnitude[k][offsets].mean(axis=0), atol=1e-3)
    assert exam.magnitude.min() >= 0


def test_unsigned_storage_falls_back_to_the_order_ge_writes(ge):
    """Phase stored without negative values cannot be told by content: instance order (GE's own)."""
    fx, clean = ge
    files = raw_files(fx.path)
    for f in files[: len(files) // 2]:
        ds = pydicom.dcmread(f)
        values = ds.pixel_array.astype(np.int32) + 4096
        ds.PixelRepresentation = 0
        ds.PixelData = values.astype(np.uint16).tobytes()
        ds.save_as(f)
    exam = read_exam(fx.path)
    assert np.array_equal(exam.magnitude, clean.magnitude)
