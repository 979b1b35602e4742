"""Quality control a reader does before reporting a number: a liver that is dark on the magnitude
images (iron overload) makes the exam indeterminate, whatever ROI was drawn."""

import numpy as np
import pytest

from mrefibrosis.exam_reader import read_exam
from mrefibrosis.measure import measure_roi
from mrefibrosis.qc import FLAG_DARK_LIVER, QcSettings, liver_brightness
from mrefibrosis.roi_io import read_roi
from mrefibrosis.synth.export import GE_SETTINGS, SIEMENS_SETTINGS, write_exam
from mrefibrosis.synth.simulate import simulate_exam


def _exam_and_liver(tmp_path, failure, vendor):
    settings = GE_SETTINGS if vendor == "ge" else SIEMENS_SETTINGS
    sim = simulate_exam(21, settings, n_slices=2, failure=failure, liver_kpa=2.4, snr=25)
    folder = tmp_path / f"{vendor}-{failure}"
    write_exam(folder, sim, vendor, f"qc-{vendor}-{failure}")
    exam = read_exam(folder / "dicom")
    liver = read_roi(folder / "liver.seg.nrrd", exam.geometry)
    return exam, liver & exam.valid


@pytest.mark.parametrize("vendor", ["ge", "siemens"])
def test_dark_liver_is_indeterminate_and_a_normal_liver_is_not(tmp_path, vendor):
    normal, roi = _exam_and_liver(tmp_path, None, vendor)
    assert liver_brightness(normal, roi) > 0.4
    m = measure_roi(normal, roi, "seed")
    assert m.status == "ok" and FLAG_DARK_LIVER not in m.flags

    iron, roi = _exam_and_liver(tmp_path, "iron_overload", vendor)
    assert roi.sum() > 100  # an ROI exists: the stiffness map would give a number
    assert liver_brightness(iron, roi) < 0.15
    m = measure_roi(iron, roi, "seed")
    assert m.status == "indeterminate" and m.mean_kpa is None and m.stage is None
    assert FLAG_DARK_LIVER in m.flags and any("iron overload" in msg for msg in m.messages)
    # the threshold is a setting: switched off, the same ROI gives a number again
    assert measure_roi(iron, roi, "seed", qc=QcSettings(dark_liver_ratio=0.0)).status == "ok"


def test_known_brightness_ratio(ge_exam):
    """Hand-built magnitude: body 100, a 'liver' of 40, so the ratio is 0.4 exactly."""
    exam = read_exam(ge_exam.path)
    mag = np.zeros(exam.stiffness_kpa.shape, np.float32)
    mag[:, 8:56, 8:56] = 100.0
    mag[:, 20:30, 20:30] = 40.0
    exam.magnitude = mag
    roi = np.zeros(mag.shape, bool)
    roi[:, 22:28, 22:28] = True
    assert liver_brightness(exam, roi) == pytest.approx(0.4)
    exam.magnitude = None
    assert liver_brightness(exam, roi) is None
