"""Report statistics against values worked out by hand or published."""

import math

import numpy as np
import pytest

from mrefibrosis.evaluation import metrics as M


def test_seg_scores_hand_counted():
    pred = np.zeros((1, 4, 4), bool)
    truth = np.zeros((1, 4, 4), bool)
    pred[0, 0, :4] = True  # 4 pixels
    truth[0, 0, 1:4] = True  # 3 of them overlap
    truth[0, 1, :3] = True  # 3 more pixels the prediction misses
    s = M.seg_scores(pred, truth)  # tp 3, fp 1, fn 3
    assert s.dice == pytest.approx(6 / 10)
    assert s.iou == pytest.approx(3 / 7)
    assert s.precision == pytest.approx(3 / 4) and s.recall == pytest.approx(3 / 6)
    assert s.f1 == pytest.approx(2 * 0.75 * 0.5 / 1.25)
    assert M.seg_scores(np.zeros((2, 2), bool), np.zeros((2, 2), bool)).dice == 1.0
    assert M.seg_scores(np.ones((2, 2), bool), np.zeros((2, 2), bool)).dice == 0.0


def test_pearson_hand_computed():
    x, y = [1, 2, 3, 4, 5], [2, 4, 5, 4, 5]
    c = M.pearson(x, y)
    assert c.r == pytest.approx(6 / math.sqrt(60))  # sum dxdy 6, sum dx2 10, sum dy2 6
    z, se = math.atanh(6 / math.sqrt(60)), 1 / math.sqrt(2)
    assert c.ci_low == pytest.approx(math.tanh(z - 1.959964 * se), abs=1e-5)
    assert c.ci_high == pytest.approx(math.tanh(z + 1.959964 * se), abs=1e-5)
    assert M.pearson([1, 2, 3], [1, 2, 3]) is None  # too few pairs for an interval


def test_icc_shrout_fleiss_published_values():
    # Shrout & Fleiss (1979), Table 2: 6 targets, 4 judges; ICC(2,1) = 0.29.
    data = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    r = M.icc_2_1(data)
    assert r.icc == pytest.approx(0.29, abs=0.005)
    assert r.ci_low < r.icc < r.ci_high


def test_icc_two_raters_hand_computed():
    # By hand: row means 1, 2.5, 3, 4.5 around 2.75 -> MSR 2 * 6.25 / 3; MSC 0.5; MSE 1/6 -> ICC = 4 / 4.5.
    y = np.array([[1.0, 1.0], [2.0, 3.0], [3.0, 3.0], [4.0, 5.0]])
    r = M.icc_2_1(y)
    msr, msc, mse, n, k = 12.5 / 3, 0.5, 1 / 6, 4, 2
    assert r.icc == pytest.approx((msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n))
    assert r.icc == pytest.approx(4 / 4.5)


def test_icc_interval_covers_the_true_value():
    # Subject variance 1, rater bias 0.3, error variance 0.25: true ICC(2,1) = 1 / (1 + 0.045 + 0.25).
    rng = np.random.default_rng(0)
    true = 1 / (1 + 0.3**2 / 2 + 0.25)
    hits = 0
    for _ in range(300):
        s = rng.normal(0, 1, 40)
        bias = np.array([0.0, 0.3])
        y = s[:, None] + bias[None] + rng.normal(0, 0.5, (40, 2))
        r = M.icc_2_1(y)
        hits += r.ci_low <= true <= r.ci_high
    assert 0.90 <= hits / 300 <= 0.99


def test_bland_altman_and_error():
    ba = M.bland_altman([2, 3, 4], [1, 3, 5])  # differences 1, 0, -1
    assert ba.bias == pytest.approx(0) and ba.sd == pytest.approx(1)
    assert ba.loa_low == pytest.approx(-1.96) and ba.loa_high == pytest.approx(1.96)
    assert M.mean_absolute_percent_error([2.2, 3.0], [2.0, 4.0]) == pytest.approx((10 + 25) / 2)


def test_confusion_and_kappa_hand_computed():
    truth = ["a"] * 25 + ["b"] * 25
    pred = ["a"] * 20 + ["b"] * 5 + ["a"] * 10 + ["b"] * 15
    cm = M.confusion_matrix(truth, pred, ["a", "b"])
    assert cm.tolist() == [[20, 5], [10, 15]]
    k = M.cohen_kappa(cm)  # po 0.7, pe (25*30 + 25*20)/2500 = 0.5
    assert k.observed_agreement == pytest.approx(0.7) and k.expected_agreement == pytest.approx(0.5)
    assert k.kappa == pytest.approx(0.4)
    se = math.sqrt(0.7 * 0.3 / (50 * 0.25))
    assert k.ci_low == pytest.approx(0.4 - 1.959964 * se, abs=1e-5)


def test_welch_t_matches_the_formula():
    x, y = np.array([5.1, 4.9, 5.6, 5.8, 6.0]), np.array([6.2, 6.8, 7.1, 6.5, 7.9, 7.0])
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    t = (x.mean() - y.mean()) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    from scipy import stats

    assert M.welch_t(x, y) == pytest.approx(2 * stats.t.sf(abs(t), df))
    assert M.chi_square(np.array([[10, 0], [0, 0]])) is None
