"""Where the driver sat, read from the waves, and the reader's rule that an ROI right under it does
not count: known answers on hand-made fields, and the simulator's true driver band on both vendors."""

import numpy as np
import pytest
from fixtures import plant_driver_source
from scipy import ndimage

from mrefibrosis.measure.driver import driver_contact, driver_share
from mrefibrosis.measure.qc import FLAG_UNDER_DRIVER, QcSettings
from mrefibrosis.measure.roi_stats import measure_roi
from mrefibrosis.reading.exam_loader import ReadOptions, read_exam
from mrefibrosis.reading.waves import first_harmonic_amplitude
from mrefibrosis.synth.export import GE_SETTINGS, SIEMENS_SETTINGS, write_exam
from mrefibrosis.synth.simulate import simulate_exam


@pytest.mark.parametrize("t", [4, 8])
def test_first_harmonic_is_the_cosine_amplitude_and_ignores_the_static_phase(t):
    amp = np.array([[0.0, 1.0], [2.5, 7.0]])
    phi = np.array([[0.3, -1.2], [2.0, 0.0]])
    steps = np.arange(t)[:, None, None]
    frames = 40.0 + amp * np.cos(2 * np.pi * steps / t + phi) + 0.5 * np.cos(4 * np.pi * steps / t)  # offset + 2nd harmonic
    assert first_harmonic_amplitude(frames) == pytest.approx(amp, abs=1e-9)
    assert first_harmonic_amplitude(frames[:2]).max() == 0.0  # two samples do not define a cycle


def _simulated(tmp_path, vendor, failure=None, seed=21):
    settings = GE_SETTINGS if vendor == "ge" else SIEMENS_SETTINGS
    sim = simulate_exam(seed, settings, n_slices=2, failure=failure, liver_kpa=2.4, snr=25)
    folder = tmp_path / f"{vendor}-{failure}-{seed}"
    write_exam(folder, sim, vendor, f"drv-{vendor}-{failure}-{seed}")
    return sim, folder


@pytest.mark.parametrize("vendor,source", [("ge", "wave"), ("siemens", "phase")])
def test_contact_patch_lies_on_the_simulators_driver_band(tmp_path, vendor, source):
    """GE exams carry processed wave images, Siemens exams raw phase offsets: on both, the patch found
    from the waves sits on the band the simulator drove, which no file records."""
    sim, folder = _simulated(tmp_path, vendor)
    exam = read_exam(folder / "dicom")
    assert source in [u.role for u in exam.series_used]
    contact = driver_contact(exam)
    mm = exam.geometry.row_spacing_mm
    for k in range(exam.n_slices):
        true = sim.driver[k]
        assert contact[k].sum() > 50
        from_true = ndimage.distance_transform_edt(~true) * mm
        from_found = ndimage.distance_transform_edt(~contact[k]) * mm
        assert np.median(from_true[contact[k]]) < 10.0  # what was found lies on the band
        assert np.median(from_found[true]) < 10.0  # and covers it
    assert read_exam(folder / "dicom", ReadOptions(read_waves=False)).wave_amplitude is None


def test_driver_off_has_no_patch(tmp_path):
    _, folder = _simulated(tmp_path, "ge", failure="driver_off")
    exam = read_exam(folder / "dicom")
    assert exam.wave_amplitude is not None and not driver_contact(exam).any()


def _planted(tmp_path):
    """A body square with a point source on its top wall: the amplitude falls with distance from
    it, so the contact patch is a known stretch of the wall and distances can be counted."""
    _, folder = _simulated(tmp_path, "ge")
    exam = read_exam(folder / "dicom")
    plant_driver_source(exam, row=40, col=100)
    exam.valid[:] = True
    exam.confidence_valid[:] = True
    exam.stiffness_kpa[:] = 2.5
    return exam


def test_roi_under_the_driver_is_indeterminate_and_half_under_it_a_warning(tmp_path):
    exam = _planted(tmp_path)
    contact = driver_contact(exam)
    rows, cols = np.nonzero(contact[0])
    assert rows.min() == 40 and rows.max() <= 40 + 15 / exam.geometry.row_spacing_mm  # on the wall
    assert abs(cols.mean() - 100) < 1  # around the source
    near = np.zeros(exam.valid.shape, bool)
    near[0, 50:56, 95:105] = True  # just under the source
    far = np.zeros_like(near)
    far[0, 180:186, 95:105] = True  # 14 cm deep
    assert driver_share(exam, near, contact, 25.0) == 1.0
    assert driver_share(exam, far, contact, 25.0) == 0.0
    m = measure_roi(exam, near, "seed")
    assert m.status == "indeterminate" and m.reason_flag == FLAG_UNDER_DRIVER and "driver" in m.reason and m.mean_kpa is None
    half = near | far  # 60 px each
    m = measure_roi(exam, half, "seed")
    assert m.status == "ok" and FLAG_UNDER_DRIVER in m.warnings and "50%" in " ".join(m.messages)
    assert FLAG_UNDER_DRIVER not in measure_roi(exam, far, "seed").flags
    # the margin is a setting; and an exam without wave images gets no driver finding at all
    gap_mm = (50 - rows.max()) * exam.geometry.row_spacing_mm  # from the patch to the ROI's top row
    assert measure_roi(exam, near, "seed", qc=QcSettings(driver_mm=gap_mm - 0.1)).status == "ok"
    assert measure_roi(exam, near, "seed", qc=QcSettings(driver_mm=gap_mm + 6 * 1.5625)).status == "indeterminate"
    exam.wave_amplitude = None
    assert FLAG_UNDER_DRIVER not in measure_roi(exam, near, "seed").flags
