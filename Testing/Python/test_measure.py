"""Measurement statistics and staging against hand-computed answers."""

import json

import numpy as np
import pytest

from mrefibrosis.errors import StagingError
from mrefibrosis.measure.fibrosis_stages import get_preset, load_presets
from mrefibrosis.measure.roi_stats import FLAG_OUTSIDE_CONFIDENCE, FLAG_SMALL_AREA, FLAG_STAGE_REFUSED, compute_stats, measure_roi
from mrefibrosis.reading.exam import Exam
from mrefibrosis.reading.geometry import build_geometry


def _exam(values, valid=None, conf=None, spacing=(2.0, 2.0), freq=60.0):
    values = np.asarray(values, np.float32)
    s, r, c = values.shape
    geom, _ = build_geometry([np.array([0, 0, 10.0 * k]) for k in range(s)], np.array([1, 0, 0, 0, 1, 0.0]), spacing, r, c, 10.0, "t")
    valid = np.ones(values.shape, bool) if valid is None else valid
    return Exam("k", "GE", geom, values, valid, conf if conf is not None else valid.copy(), driver_frequency_hz=freq)


def test_stats_known_answer():
    st = compute_stats(np.array([1.0, 2.0, 3.0, 4.0]), pixel_area_mm2=4.0)
    assert st.pixels == 4 and st.area_cm2 == pytest.approx(0.16)
    assert st.mean_kpa == pytest.approx(2.5) and st.median_kpa == pytest.approx(2.5)
    assert st.sd_kpa == pytest.approx(np.sqrt(5 / 3))  # sample SD
    assert st.p25_kpa == pytest.approx(1.75) and st.p75_kpa == pytest.approx(3.25) and st.iqr_kpa == pytest.approx(1.5)


def test_pooled_mean_is_area_weighted_not_mean_of_slice_means():
    v = np.zeros((2, 10, 10), np.float32)
    v[0] = 2.0
    v[1] = 4.0
    roi = np.zeros(v.shape, bool)
    roi[0, :, :] = True  # 100 px at 2 kPa
    roi[1, :5, :2] = True  # 10 px at 4 kPa
    m = measure_roi(_exam(v), roi)
    assert m.status == "ok"
    assert m.mean_kpa == pytest.approx((100 * 2 + 10 * 4) / 110)
    assert [s.stats.mean_kpa for s in m.slices] == [pytest.approx(2.0), pytest.approx(4.0)]
    assert m.pooled.area_cm2 == pytest.approx(110 * 4 / 100)


def test_invalid_pixels_never_counted_and_confidence_flag():
    rng = np.random.default_rng(0)
    v = rng.uniform(1, 5, (1, 20, 20)).astype(np.float32)
    valid = np.ones(v.shape, bool)
    valid[0, :5] = False
    conf = valid.copy()
    conf[0, 5:10] = False  # 100 of the 300 valid ROI pixels (33 %) below the confidence threshold
    roi = np.ones(v.shape, bool)
    m = measure_roi(_exam(v, valid, conf), roi)
    assert m.mean_kpa == pytest.approx(float(v[valid].mean()), rel=1e-6)
    assert m.pooled.pixels == valid.sum()
    assert FLAG_OUTSIDE_CONFIDENCE in m.flags
    assert m.slices[0].outside_confidence_pixels == 5 * 20
    # the real GE reader's ROI had 18 % of its pixels below 95 %: how readers draw, no warning
    conf[0, 5:10] = True
    conf[0, 5:8, :18] = False  # 54 of 300 = 18 %
    m = measure_roi(_exam(v, valid, conf), roi)
    assert FLAG_OUTSIDE_CONFIDENCE not in m.flags and m.slices[0].outside_confidence_pixels == 54


def test_small_area_is_indeterminate_without_numbers():
    v = np.full((1, 10, 10), 3.0, np.float32)
    roi = np.zeros(v.shape, bool)
    roi[0, :2, :2] = True  # 4 px x 4 mm2 = 0.16 cm2
    m = measure_roi(_exam(v), roi)
    assert m.status == "indeterminate" and m.stage is None and m.mean_kpa is None
    assert FLAG_SMALL_AREA in m.flags
    payload = m.stats_json()
    assert m.reason and "0.16 cm2" in m.reason and m.status_text.startswith("indeterminate: ")
    assert payload["mean_kpa"] is None and payload["pooled"]["mean_kpa"] is None
    json.dumps(payload)


@pytest.mark.parametrize(
    "preset,kpa,stage",
    [
        ("seed", 2.79, "F0-F1"),
        ("seed", 2.8, ">=F2"),
        ("seed", 7.0, ">=F2"),
        ("radelement", 2.49, "normal"),
        ("radelement", 2.5, "normal or inflammation"),
        ("radelement", 2.9, "F1-F2"),
        ("radelement", 3.5, "F2-F3"),
        ("radelement", 4.0, "F3-F4"),
        ("radelement", 5.0, "F4"),
        ("liang2023_nafld", 3.13, "F0-F1"),
        ("liang2023_nafld", 3.14, "F2"),
        ("liang2023_nafld", 4.45, "F4"),
        ("singh2015", 3.45, "F1"),
        ("hsu2019_nafld", 2.97, "F2"),
    ],
)
def test_stage_cutoffs_are_half_open(preset, kpa, stage):
    v = np.full((1, 20, 20), kpa, np.float32)
    m = measure_roi(_exam(v), np.ones(v.shape, bool), preset)
    assert m.stage == stage


def test_presets_carry_citation_and_status():
    presets = load_presets()
    assert set(presets) >= {"seed", "radelement", "liang2023_nafld", "singh2015", "hsu2019_nafld"}
    assert all(p.citation and p.status for p in presets.values())
    assert presets["singh2015"].status == "assumed"


def test_non_60hz_is_not_staged_but_measured():
    v = np.full((1, 20, 20), 3.0, np.float32)
    m = measure_roi(_exam(v, freq=40.0), np.ones(v.shape, bool))
    assert m.status == "ok" and m.mean_kpa == pytest.approx(3.0)
    assert m.stage is None and FLAG_STAGE_REFUSED in m.flags


def test_user_preset_file(tmp_path):
    f = tmp_path / "site.json"
    f.write_text(
        json.dumps(
            {
                "presets": {
                    "site": {
                        "citation": "local",
                        "status": "assumed",
                        "bands": [{"min_kpa": 0, "stage": "low", "at_least_f2": False}, {"min_kpa": 3.0, "stage": "high", "at_least_f2": True}],
                    }
                }
            }
        )
    )
    assert get_preset(str(f)).stage_of(3.0).stage == "high"
    with pytest.raises(StagingError):
        get_preset("nope")
    f.write_text(json.dumps({"presets": {"bad": {"citation": "x", "status": "x", "bands": [{"min_kpa": 1, "stage": "a", "at_least_f2": False}]}}}))
    with pytest.raises(StagingError, match="start at 0"):
        get_preset(str(f))
