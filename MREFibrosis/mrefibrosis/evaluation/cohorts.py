"""The two-cohort table (the seed paper's Table 2): demographics, kPa and >= F2 share per cohort.

Cohorts come from the manifest's `cohort` column (exactly two values), or are the evaluated
cohort against a second manifest (`--compare-with`, e.g. the training cohort). Numeric columns get
mean (SD) and Welch's t-test; categorical columns counts (%) and the chi-square test.
"""

from __future__ import annotations

import numpy as np

from ..measure.fibrosis_stages import Preset, at_least_f2
from ..training.manifest import ManifestRow
from . import metrics as M

SKIP = {"fibrosis_stage", "failure", "vendor"}


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) else None


def cohort_table(evals, other_rows: list[ManifestRow] | None, preset: Preset) -> dict | None:
    if other_rows is not None:
        groups = {"evaluated": [(e.row, e) for e in evals], "comparison": [(r, None) for r in other_rows]}
    else:
        names = sorted({e.row.cohort for e in evals if e.row.cohort})
        if len(names) != 2:
            return None
        groups = {n: [(e.row, e) for e in evals if e.row.cohort == n] for n in names}
    (na, a), (nb, b) = groups.items()
    lines = []

    def numeric(label, fa, fb):
        xa = [v for v in map(fa, a) if v is not None]
        xb = [v for v in map(fb, b) if v is not None]
        if not xa and not xb:
            return
        cell = lambda x: f"{np.mean(x):.2f} ({np.std(x, ddof=1):.2f})" if len(x) > 1 else ("-" if not x else f"{x[0]:.2f}")
        lines.append({"variable": label, "kind": "mean (SD)", na: cell(xa), nb: cell(xb), "n": [len(xa), len(xb)], "p_value": M.welch_t(xa, xb)})

    def categorical(label, fa, fb):
        va = [v for v in map(fa, a) if v not in (None, "")]
        vb = [v for v in map(fb, b) if v not in (None, "")]
        cats = sorted(set(va) | set(vb), key=str)
        if not cats:
            return
        table = np.array([[va.count(c) for c in cats], [vb.count(c) for c in cats]])
        for c in cats:
            pa = f"{va.count(c)} ({100 * va.count(c) / max(1, len(va)):.0f}%)"
            pb = f"{vb.count(c)} ({100 * vb.count(c) / max(1, len(vb)):.0f}%)"
            lines.append({"variable": f"{label}: {c}", "kind": "n (%)", na: pa, nb: pb, "n": [len(va), len(vb)], "p_value": M.chi_square(table)})

    demo_cols = sorted({k for r, _ in a + b for k in r.demographics if k not in SKIP})
    for col in demo_cols:
        values = [r.demographics.get(col, "") for r, _ in a + b]
        filled = [v for v in values if v != ""]
        if filled and all(_number(v) is not None for v in filled):
            numeric(col, lambda p, c=col: _number(p[0].demographics.get(c, "")), lambda p, c=col: _number(p[0].demographics.get(c, "")))
        elif filled:
            categorical(col, lambda p, c=col: p[0].demographics.get(c, ""), lambda p, c=col: p[0].demographics.get(c, ""))
    numeric("manual kPa", lambda p: p[0].manual_kpa, lambda p: p[0].manual_kpa)
    numeric("automatic kPa", lambda p: p[1].auto_kpa if p[1] else None, lambda p: p[1].auto_kpa if p[1] else None)

    def f2_manual(p):
        v = at_least_f2(p[0].stage, p[0].manual_kpa, preset) if p[0].roi_path is not None else None
        return None if v is None else (">=F2" if v else "<F2")

    def f2_auto(p):
        return None if p[1] is None or p[1].auto_f2 is None else (">=F2" if p[1].auto_f2 else "<F2")

    categorical("manual stage", f2_manual, f2_manual)
    categorical("automatic stage", f2_auto, f2_auto)
    return {"cohorts": [na, nb], "sizes": [len(a), len(b)], "rows": lines}
