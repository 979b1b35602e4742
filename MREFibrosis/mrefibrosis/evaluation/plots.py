"""Report figures (matplotlib, no display needed): correlation, Bland-Altman, confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        from ..errors import MREFibrosisError

        raise MREFibrosisError("the evaluation report needs matplotlib; install it with: pip install 'mrefibrosis[train]'.") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_correlation(path: Path, manual, auto, pearson: dict | None, icc: dict | None) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    ax.scatter(manual, auto, s=14, alpha=0.7, color="#2b6cb0", edgecolors="none")
    hi = float(max(np.max(manual), np.max(auto))) * 1.05
    ax.plot([0, hi], [0, hi], color="0.5", lw=1, ls="--", label="identity")
    if len(manual) >= 2 and np.std(manual) > 0:
        k, c = np.polyfit(manual, auto, 1)
        ax.plot([0, hi], [c, c + k * hi], color="#c53030", lw=1.2, label=f"fit y = {k:.3f}x + {c:.3f}")
    text = []
    if pearson:
        text.append(f"r = {pearson['r']:.3f} [{pearson['ci_low']:.3f}, {pearson['ci_high']:.3f}]")
    if icc:
        text.append(f"ICC(2,1) = {icc['icc']:.3f} [{icc['ci_low']:.3f}, {icc['ci_high']:.3f}]")
    ax.text(0.04, 0.96, "\n".join(text), transform=ax.transAxes, va="top", fontsize=9)
    ax.set(xlim=(0, hi), ylim=(0, hi), xlabel="manual stiffness (kPa)", ylabel="automatic stiffness (kPa)", title=f"Automatic vs manual (n = {len(manual)})")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_bland_altman(path: Path, auto, manual, ba: dict | None) -> None:
    plt = _pyplot()
    mean, diff = (np.asarray(auto) + np.asarray(manual)) / 2, np.asarray(auto) - np.asarray(manual)
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    ax.scatter(mean, diff, s=14, alpha=0.7, color="#2b6cb0", edgecolors="none")
    if ba:
        for y, label, style in (
            (ba["bias"], f"bias {ba['bias']:+.3f}", "-"),
            (ba["loa_low"], f"-1.96 SD {ba['loa_low']:+.3f}", "--"),
            (ba["loa_high"], f"+1.96 SD {ba['loa_high']:+.3f}", "--"),
        ):
            ax.axhline(y, color="#c53030", ls=style, lw=1)
            ax.text(float(np.max(mean)), y, f" {label}", va="bottom", ha="right", fontsize=8)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xlabel="mean of automatic and manual (kPa)", ylabel="automatic - manual (kPa)", title="Bland-Altman")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(path: Path, cm: np.ndarray, labels: list[str], preset: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(labels), 1.0 + 0.8 * len(labels)), dpi=120)
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set(xlabel="automatic", ylabel="manual", title=f"Stage ({preset})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
