"""Quality control a reader does before reporting a number: a liver that is dark on the magnitude
images (iron overload) makes the exam indeterminate, whatever ROI was drawn."""

import numpy as np
import pytest

from mrefibrosis.measure.qc import FLAG_DARK_LIVER, QcSettings, liver_brightness
from mrefibrosis.measure.roi_stats import measure_roi
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import read_roi
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


def _square_exam(ge_exam, spacing_check=True):
    """The fixture exam with every pixel valid and confident, so areas follow from pixel counts."""
    exam = read_exam(ge_exam.path)
    exam.valid[:] = True
    exam.confidence_valid[:] = True
    return exam


def test_tiny_confident_liver_is_indeterminate_with_its_area(ge_exam):
    from mrefibrosis.measure.qc import FLAG_SMALL_CONFIDENT_LIVER, confident_liver_cm2

    exam = _square_exam(ge_exam)
    px_cm2 = exam.geometry.pixel_area_mm2 / 100.0
    liver = np.zeros(exam.valid.shape, bool)
    liver[0, 10:20, 10:20] = True  # 100 px on one slice
    exam.confidence_valid[0, 10:20, 10:15] = False  # half of it not confident
    assert confident_liver_cm2(exam, liver) == pytest.approx(50 * px_cm2)
    roi = np.zeros_like(liver)
    roi[0, 12:18, 15:20] = True
    m = measure_roi(exam, roi, "seed", liver=liver, qc=QcSettings(min_confident_liver_cm2=50 * px_cm2 + 0.01))
    assert m.status == "indeterminate" and m.reason_flag == FLAG_SMALL_CONFIDENT_LIVER and m.mean_kpa is None
    assert m.liver_confident_cm2 == pytest.approx(50 * px_cm2, abs=1e-3)
    ok = measure_roi(exam, roi, "seed", liver=liver, qc=QcSettings(min_confident_liver_cm2=1.0, low_confident_liver_cm2=1.0))
    assert ok.status == "ok" and FLAG_SMALL_CONFIDENT_LIVER not in ok.flags


def test_edge_share_is_the_roi_share_near_the_liver_edge(ge_exam):
    """A 40x40 px liver, an ROI over its whole width on 4 rows: the share within 1.5 px of the edge
    is counted by hand and compared."""
    from mrefibrosis.measure.qc import FLAG_LIVER_EDGE, edge_share

    exam = _square_exam(ge_exam)
    sp = exam.geometry.row_spacing_mm
    liver = np.zeros(exam.valid.shape, bool)
    liver[0, 10:50, 10:50] = True
    roi = np.zeros_like(liver)
    roi[0, 28:32, 10:50] = True  # 160 px; the leftmost and rightmost column touch the edge
    # depth (distance to the nearest outside pixel) is 1 px on the border column, 2 px one further in
    assert edge_share(exam, roi, liver, 1.5 * sp) == pytest.approx(8 / 160)
    assert edge_share(exam, roi, liver, 2.5 * sp) == pytest.approx(16 / 160)
    rim = np.zeros_like(liver)
    rim[0, 10:50, 10:12] = True  # a strip along the edge only
    m = measure_roi(exam, rim, "seed", liver=liver, qc=QcSettings(edge_mm=3 * sp, min_confident_liver_cm2=0, low_confident_liver_cm2=0))
    assert m.status == "indeterminate" and m.reason_flag == FLAG_LIVER_EDGE and "edge" in m.reason


def test_tta_disagreement_is_a_warning_not_a_failure(ge_exam):
    from mrefibrosis.measure.qc import FLAG_TTA

    exam = _square_exam(ge_exam)
    roi = np.zeros(exam.valid.shape, bool)
    roi[:, 20:40, 20:40] = True
    m = measure_roi(exam, roi, "seed", tta_agreement=0.5)
    assert m.status == "ok" and m.warnings == [FLAG_TTA] and m.status_text == f"ok with warnings: {FLAG_TTA}"
    assert measure_roi(exam, roi, "seed", tta_agreement=0.9).warnings == []


def test_no_wave_exam_is_indeterminate(tmp_path):
    """Driver off: no confident liver anywhere, so the reader's ROI is empty and so is the engine's."""
    exam, liver = _exam_and_liver(tmp_path, "driver_off", "ge")
    roi = liver & exam.confidence_valid
    m = measure_roi(exam, roi, "seed", liver=liver)
    assert m.status == "indeterminate" and m.mean_kpa is None and m.reason


def test_dark_liver_is_judged_on_the_predicted_liver_when_there_is_one(tmp_path):
    """An ROI on bright false patches passes the ROI-only check; the whole (dark) liver does not."""
    exam, liver = _exam_and_liver(tmp_path, "iron_overload", "ge")
    bright = exam.valid & ~liver & (exam.magnitude > np.percentile(exam.magnitude[exam.valid], 60))
    roi = np.zeros_like(bright)
    k = int(np.argmax(bright.sum((1, 2))))
    roi[k] = bright[k]
    assert measure_roi(exam, roi, "seed").status == "ok"
    m = measure_roi(exam, roi, "seed", liver=liver)
    assert m.status == "indeterminate" and m.reason_flag == FLAG_DARK_LIVER
