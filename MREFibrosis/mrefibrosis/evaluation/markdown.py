"""report.md: the numbers of metrics.json laid out like the seed paper's tables and figures."""

from __future__ import annotations


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f} %"


def _num(v, d=3) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def _p(v) -> str:
    return "-" if v is None else ("< .001" if v < 0.001 else f"{v:.3f}")


def _seg_row(name: str, s: dict) -> str:
    if not s.get("exams"):
        return f"| {name} | 0 | - | - | - |"
    return f"| {name} | {s['exams']} | {_pct(s['dice']['mean'])} | {_pct(s['iou']['mean'])} | {_pct(s['f1']['mean'])} |"


def _margins_text(margins: dict | None) -> str:
    if not margins:
        return ""
    return f"; automatic ROI kept {margins['liver_edge_mm']:g} mm inside the predicted liver and {margins['driver_mm']:g} mm from the driver"


def render_report(m: dict, title: str = "") -> str:
    model = m.get("model", {})
    out = [f"# {title or 'MREFibrosis evaluation report'}", ""]
    out += [
        f"- Software: {m['software']}",
        f"- Model: `{model.get('file', '?')}` ({model.get('architecture', '?')}, {model.get('model_version', '?')}, sha256 {str(model.get('sha256', ''))[:12]}...), "
        f"input {model.get('input_size', '?')} px, {model.get('device', '?')}/{model.get('precision', '?')}" + _margins_text(model.get("roi_margins_mm")),
        f"- Cohort: `{m['manifest']}`: {m['exams']} exams, {m['reader_measurable']} with a reader ROI, "
        f"{m['reader_indeterminate']} where the reader found no measurable liver, {m['errors']} unreadable",
        f"- Staging preset: {m['preset']}",
        "",
    ]
    out += [
        "## Segmentation (pixel level, exams with a reader ROI)",
        "",
        "| group | exams | Dice | IoU | F1 |",
        "|---|---:|---:|---:|---:|",
        _seg_row("all", m["segmentation"]),
    ]
    for key, label in (("segmentation_by_stage", "stage"), ("segmentation_by_fibrosis_stage", "fibrosis stage")):
        for g, s in m.get(key, {}).items():
            out.append(_seg_row(f"{label} {g}", s))
    out.append("")
    ol = m.get("roi_outside_liver")
    if ol:
        out += [
            f"Automatic ROI outside the true liver: median {_pct(ol['median'])}, mean {_pct(ol['mean'])} per exam; "
            f"{ol['over_10_percent']} of {ol['exams']} exams over 10 %.",
            "",
        ]
    out += ["## Stiffness: automatic vs manual", ""]
    pr, icc, ba = m.get("pearson"), m.get("icc"), m.get("bland_altman")
    out.append(f"- Pairs (both measured): {m['pairs']}")
    if pr:
        out.append(f"- Pearson r = {pr['r']:.4f} (95 % CI {pr['ci_low']:.4f} to {pr['ci_high']:.4f}, p {_p(pr['p_value'])})")
    if icc:
        out.append(f"- ICC(2,1), absolute agreement = {icc['icc']:.4f} (95 % CI {icc['ci_low']:.4f} to {icc['ci_high']:.4f})")
    if m.get("mean_absolute_percent_error") is not None:
        out.append(f"- Mean absolute error = {m['mean_absolute_percent_error']:.2f} % of the manual value")
    if ba:
        out.append(
            f"- Bland-Altman: bias {ba['bias']:+.3f} kPa, limits of agreement {ba['loa_low']:+.3f} to {ba['loa_high']:+.3f} kPa "
            f"({ba['bias_percent']:+.2f} %, {ba['loa_low_percent']:+.2f} % to {ba['loa_high_percent']:+.2f} %)"
        )
    plots = m.get("plots", {})
    for key, cap in (("correlation", "Automatic vs manual stiffness"), ("bland_altman", "Bland-Altman plot")):
        if key in plots:
            out += ["", f"![{cap}]({plots[key]})"]
    out += [
        "",
        "## Failures",
        "",
        f"- Exams without a measurable liver (reader): {m['reader_indeterminate']}; reported `indeterminate` automatically: {m['failures_reported_indeterminate']}",
        f"- Exams the reader measured but the software did not: {m['measurable_reported_indeterminate']}",
        "",
    ]
    st, f2 = m.get("staging"), m.get("at_least_f2")
    if st or f2:
        out += [f"## Staging ({m['preset']} preset)", ""]
    if st:
        k = st["kappa"] or {}
        out.append(
            f"- Stage agreement: {_pct(st['agreement'])} of {st['exams']} exams; Cohen's kappa {_num(k.get('kappa'))} "
            f"(95 % CI {_num(k.get('ci_low'))} to {_num(k.get('ci_high'))})"
        )
        out += ["", "| manual \\ automatic | " + " | ".join(st["labels"]) + " |", "|---|" + "---:|" * len(st["labels"])]
        for lab, row in zip(st["labels"], st["confusion_matrix"]):
            out.append(f"| {lab} | " + " | ".join(str(v) for v in row) + " |")
        if "confusion_matrix" in plots:
            out += ["", f"![Confusion matrix]({plots['confusion_matrix']})"]
    if f2:
        k = f2["kappa"] or {}
        out += [
            "",
            f"- >= F2 agreement: {_pct(f2['agreement'])} of {f2['exams']} exams (manual positive {f2['manual_positive']}, "
            f"automatic positive {f2['auto_positive']}); kappa {_num(k.get('kappa'))}",
        ]
    table = m.get("cohort_table")
    if table:
        a, b = table["cohorts"]
        out += ["", "## Cohorts", "", f"| variable | {a} (n = {table['sizes'][0]}) | {b} (n = {table['sizes'][1]}) | p |", "|---|---|---|---:|"]
        for r in table["rows"]:
            out.append(f"| {r['variable']} | {r[a]} | {r[b]} | {_p(r['p_value'])} |")
        out += ["", "Numeric: mean (SD), Welch's t-test; categorical: n (%), chi-square test."]
    out.append("")
    return "\n".join(out)
