"""The statistics of the seed paper's report, written out so each can be checked by hand.

Segmentation: pixel Dice, IoU and F1 (Dice and F1 agree on one exam; they differ once averaged over
exams only through how empty masks are counted). Agreement: Pearson r with a Fisher-z interval,
ICC(2,1) (two-way random effects, absolute agreement, single measurement; McGraw & Wong 1996 case
2A) with its F-based interval, Bland-Altman bias and limits. Staging: confusion matrix and Cohen's
kappa. Cohorts: Welch's t-test and the chi-square test.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass
class SegScores:
    dice: float
    iou: float
    f1: float
    precision: float
    recall: float


def seg_scores(pred: np.ndarray, truth: np.ndarray) -> SegScores:
    """Pixel-level scores; two empty masks agree perfectly (1.0), one empty mask scores 0."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    if tp + fp + fn == 0:
        return SegScores(1.0, 1.0, 1.0, 1.0, 1.0)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SegScores(2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn), f1, precision, recall)


@dataclass
class Correlation:
    n: int
    r: float
    ci_low: float
    ci_high: float
    p_value: float


def pearson(x, y, confidence: float = 0.95) -> Correlation | None:
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < 4 or np.std(x) == 0 or np.std(y) == 0:
        return None
    res = stats.pearsonr(x, y)
    ci = res.confidence_interval(confidence_level=confidence)  # Fisher z, as in the paper's statistics
    return Correlation(n, float(np.clip(res.statistic, -1.0, 1.0)), float(ci.low), float(ci.high), float(res.pvalue))


@dataclass
class ICC:
    n: int
    k: int
    icc: float
    ci_low: float
    ci_high: float
    kind: str = "ICC(2,1) two-way random, absolute agreement, single measurement"


def icc_2_1(ratings, confidence: float = 0.95) -> ICC | None:
    """ratings: (n subjects, k raters)."""
    y = np.asarray(ratings, float)
    if y.ndim != 2 or y.shape[0] < 3 or y.shape[1] < 2:
        return None
    n, k = y.shape
    grand = y.mean()
    ss_rows = k * ((y.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((y.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((y - grand) ** 2).sum() - ss_rows - ss_cols
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    denom = msr + (k - 1) * mse + k * (msc - mse) / n
    if denom <= 0 or mse < 0:
        return None
    icc = (msr - mse) / denom
    alpha = 1 - confidence
    # McGraw & Wong (1996) case 2A: approximate F distribution with Satterthwaite degrees of freedom.
    a = k * icc / (n * (1 - icc)) if icc < 1 else float("inf")
    b = 1 + k * icc * (n - 1) / (n * (1 - icc)) if icc < 1 else float("inf")
    if not math.isfinite(a) or mse == 0:
        return ICC(n, k, float(icc), float(icc), float(icc))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    f_low = stats.f.ppf(1 - alpha / 2, n - 1, v)
    f_high = stats.f.ppf(1 - alpha / 2, v, n - 1)
    low = n * (msr - f_low * mse) / (f_low * (k * msc + (k * n - k - n) * mse) + n * msr)
    high = n * (f_high * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_high * msr)
    return ICC(n, k, float(icc), float(low), float(high))


@dataclass
class BlandAltman:
    n: int
    bias: float
    sd: float
    loa_low: float
    loa_high: float
    bias_percent: float
    loa_low_percent: float
    loa_high_percent: float


def bland_altman(auto, manual) -> BlandAltman | None:
    """Differences auto - manual in kPa and in percent of the pair mean; limits are bias +- 1.96 SD."""
    a, m = np.asarray(auto, float), np.asarray(manual, float)
    if len(a) < 2:
        return None
    d = a - m
    pct = 100.0 * d / ((a + m) / 2)
    sd, sdp = float(np.std(d, ddof=1)), float(np.std(pct, ddof=1))
    return BlandAltman(
        len(a),
        float(d.mean()),
        sd,
        float(d.mean() - 1.96 * sd),
        float(d.mean() + 1.96 * sd),
        float(pct.mean()),
        float(pct.mean() - 1.96 * sdp),
        float(pct.mean() + 1.96 * sdp),
    )


def mean_absolute_percent_error(auto, manual) -> float | None:
    a, m = np.asarray(auto, float), np.asarray(manual, float)
    return float(np.mean(np.abs(a - m) / m) * 100.0) if len(a) else None


def confusion_matrix(truth: list[str], pred: list[str], labels: list[str]) -> np.ndarray:
    """Rows: reference (manual) label; columns: automatic label."""
    index = {lab: i for i, lab in enumerate(labels)}
    out = np.zeros((len(labels), len(labels)), int)
    for t, p in zip(truth, pred):
        out[index[t], index[p]] += 1
    return out


@dataclass
class Kappa:
    n: int
    observed_agreement: float
    expected_agreement: float
    kappa: float
    ci_low: float
    ci_high: float


def cohen_kappa(cm: np.ndarray, confidence: float = 0.95) -> Kappa | None:
    """Unweighted kappa from a confusion matrix, with the large-sample standard error of Cohen (1960)."""
    cm = np.asarray(cm, float)
    n = cm.sum()
    if n == 0:
        return None
    po = np.trace(cm) / n
    pe = float((cm.sum(axis=1) * cm.sum(axis=0)).sum() / n**2)
    if pe >= 1.0:
        return Kappa(int(n), float(po), pe, 1.0 if po == 1.0 else 0.0, float("nan"), float("nan"))
    kappa = (po - pe) / (1 - pe)
    se = math.sqrt(po * (1 - po) / (n * (1 - pe) ** 2))
    q = stats.norm.ppf(0.5 + confidence / 2)
    return Kappa(int(n), float(po), pe, float(kappa), float(max(-1.0, kappa - q * se)), float(min(1.0, kappa + q * se)))


def welch_t(x, y) -> float | None:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or len(y) < 2 or (np.std(x) == 0 and np.std(y) == 0):
        return None
    return float(stats.ttest_ind(x, y, equal_var=False).pvalue)


def chi_square(table: np.ndarray) -> float | None:
    """p of the chi-square test of independence (Yates-corrected for 2x2); None when a margin is empty."""
    t = np.asarray(table, float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    if t.shape[0] < 2 or t.shape[1] < 2:
        return None
    return float(stats.chi2_contingency(t)[1])


def as_dict(obj) -> dict | None:
    return None if obj is None else asdict(obj)
