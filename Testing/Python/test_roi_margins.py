"""The reader's margins around the automatic ROI: known distances on hand-made masks, the shipped
segmenter keeping them on a simulated exam, the setting reaching result.json, and bad values
refused in one line."""

import json
import subprocess
import sys

import numpy as np
import pytest
from fixtures import plant_driver_source
from scipy import ndimage

from mrefibrosis.measure.driver import driver_contact
from mrefibrosis.model.margin_settings import NO_MARGINS, RoiMargins
from mrefibrosis.model.roi_margins import within_margins
from mrefibrosis.reading.exam_loader import read_exam
from mrefibrosis.results.roi_files import read_roi


def _plain_exam(ge_exam):
    exam = read_exam(ge_exam.path)
    exam.valid[:] = True
    exam.confidence_valid[:] = True
    exam.wave_amplitude = None
    return exam


def test_liver_edge_margin_counts_pixels_from_the_edge(ge_exam):
    exam = _plain_exam(ge_exam)
    sp = exam.geometry.row_spacing_mm
    liver = np.zeros(exam.valid.shape, bool)
    liver[0, 10:50, 10:50] = True
    keep = within_margins(exam, liver, RoiMargins(liver_edge_mm=3 * sp, driver_mm=0))
    # depth = distance to the nearest pixel outside: 1 px on the border row, 3 px two rows further in
    expected = np.zeros_like(liver)
    expected[0, 12:48, 12:48] = True
    assert np.array_equal(keep, expected)  # and nothing on slices without predicted liver
    assert within_margins(exam, None, RoiMargins(liver_edge_mm=3 * sp, driver_mm=0)).all()  # no liver output: no edge margin
    assert within_margins(exam, liver, NO_MARGINS).all()


def test_driver_margin_keeps_the_roi_away_from_the_contact_patch(simulated_ge_exam):
    """A body square with a point source on its top wall (as in test_driver): the patch lies on the
    wall around the source; the margin's border follows from the patch's lowest row."""
    exam = read_exam(simulated_ge_exam / "dicom")
    exam.valid[:] = True
    plant_driver_source(exam, row=40, col=100)
    sp = exam.geometry.row_spacing_mm
    patch = driver_contact(exam)[0]
    lowest = np.nonzero(patch)[0].max()
    below = int(np.nonzero(patch[:, 100])[0].max())
    keep = within_margins(exam, None, RoiMargins(liver_edge_mm=0, driver_mm=25.0))[0]
    assert not keep[patch].any()
    assert not keep[below + int(25 / sp) - 1, 100]  # straight under the patch, under 25 mm from it
    assert keep[lowest + int(np.ceil(25 / sp)), 100]  # 25 mm below the patch's lowest row: far enough
    assert keep[200, 200] and keep[60, 200]  # deep, and on the wall far from the source
    exam.wave_amplitude = None  # no wave images: no driver margin
    assert within_margins(exam, None, RoiMargins(liver_edge_mm=0, driver_mm=25.0)).all()


@pytest.mark.parametrize("bad", [-1.0, 101.0, float("nan")])
def test_margins_out_of_range_are_refused(bad):
    with pytest.raises(ValueError):
        RoiMargins(liver_edge_mm=bad)
    with pytest.raises(ValueError):
        RoiMargins(driver_mm=bad)


def test_shipped_segmenter_keeps_the_margins_and_says_so(simulated_ge_exam):
    pytest.importorskip("onnxruntime")
    from mrefibrosis.evaluation.metrics import seg_scores
    from mrefibrosis.model.inference import Segmenter

    exam = read_exam(simulated_ge_exam / "dicom")
    reader = read_roi(simulated_ge_exam / "roi.seg.nrrd", exam.geometry)
    cut = Segmenter(device="cpu", runtime="onnx").segment(exam)
    plain = Segmenter(device="cpu", runtime="onnx", margins=NO_MARGINS).segment(exam)
    assert cut.roi.any() and not (cut.roi & ~plain.roi).any()  # the margins only take away
    spacing = (exam.geometry.row_spacing_mm, exam.geometry.column_spacing_mm)
    contact = driver_contact(exam)
    for k in range(exam.n_slices):
        if cut.roi[k].any():
            assert ndimage.distance_transform_edt(cut.liver[k], sampling=spacing)[cut.roi[k]].min() >= 10.0
            if contact[k].any():
                assert ndimage.distance_transform_edt(~contact[k], sampling=spacing)[cut.roi[k]].min() >= 25.0
    assert seg_scores(cut.roi, reader).dice > 0.85
    identity = Segmenter(device="cpu", runtime="onnx", margins=RoiMargins(8.0, 0.0)).identity(exam)
    assert identity.to_json()["roi_margins_mm"] == {"liver_edge_mm": 8.0, "driver_mm": 0.0}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mrefibrosis", *map(str, args)], capture_output=True, text=True, timeout=300)


def test_cli_margins_reach_result_json_and_bad_values_are_one_line(simulated_ge_exam, tmp_path):
    pytest.importorskip("onnxruntime")
    bad = _cli("measure", simulated_ge_exam / "dicom", "--out", tmp_path / "bad", "--roi-edge-mm", "-3")
    assert bad.returncode == 2 and "--roi-edge-mm" in bad.stderr and "0 (off) to 100" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad").exists()
    done = _cli("measure", simulated_ge_exam / "dicom", "--out", tmp_path / "m", "--roi-driver-mm", "0")
    assert done.returncode == 0, done.stderr
    model = json.loads((tmp_path / "m" / "result.json").read_text())["provenance"]["model"]
    assert model["roi_margins_mm"] == {"liver_edge_mm": RoiMargins().liver_edge_mm, "driver_mm": 0.0}
    help_text = _cli("measure", "--help").stdout
    assert f"default {RoiMargins().liver_edge_mm:g}," in help_text and f"default {RoiMargins().driver_mm:g};" in help_text


def test_the_driver_patch_found_for_the_margins_serves_the_measurement(simulated_ge_exam, monkeypatch):
    """One search for the driver per measured exam (it was two, 37 ms each), and the measurement's
    driver check answers with the segmenter's patch exactly as with its own, on an ROI under it."""
    pytest.importorskip("onnxruntime")
    from mrefibrosis.measure import driver
    from mrefibrosis.measure.qc import FLAG_UNDER_DRIVER, segmentation_findings
    from mrefibrosis.measure.roi_stats import measure_roi
    from mrefibrosis.model.inference import Segmenter
    from mrefibrosis.pipeline import process_exam

    exam = read_exam(simulated_ge_exam / "dicom")
    searches = []
    real = driver.body_mask
    monkeypatch.setattr(driver, "body_mask", lambda e: searches.append(1) or real(e))
    result = process_exam(exam, None, segmenter=Segmenter(device="cpu", runtime="onnx"))
    assert len(searches) == 1 and result.roi.any()  # an empty ROI would skip the measurement's search
    alone = measure_roi(exam, result.roi, liver=result.liver)
    assert alone == result.measurement

    exam.valid[:] = True
    plant_driver_source(exam, row=40, col=100)
    contact = driver_contact(exam)
    under = np.zeros_like(exam.valid)
    under[1] = ndimage.binary_dilation(contact[1], iterations=8) & (exam.magnitude[1] > 0)  # one slice's ROI under the driver
    given = segmentation_findings(exam, under, None, None, contact=contact)
    assert given == segmentation_findings(exam, under, None, None)
    assert [f.flag for f in given] == [FLAG_UNDER_DRIVER]
