"""Figures of the ablation tables (notebook 10, ``results/ablations.md``): every seed is a dot,
the bar or line is their mean, so the spread is always in view."""
from __future__ import annotations

import math
from typing import Sequence

from matplotlib.figure import Figure

from ..ablations.runs import METRICS


def metric_bars(rows: list[dict], metrics: Sequence[str], title: str = "") -> Figure:
    """One panel per metric: a bar per row (mean over seeds) with each seed's value as a dot."""
    fig = Figure(figsize=(3.2 * len(metrics), 3.3))
    for i, m in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for x, r in enumerate(rows):
            s = r["ours"][m]
            if s["mean"] is not None:
                ax.bar(x, s["mean"], color=f"C{x}", alpha=0.6)
                ax.plot([x] * len(s["values"]), s["values"], "k.", ms=6)
        ax.set_xticks(range(len(rows)), [r["row"] for r in rows], rotation=35, ha="right", fontsize=8)
        ax.set_title(m, fontsize=9)
        ax.set_ylabel(METRICS.get(m, m), fontsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def time_ratio_figure(rows: list[dict], title: str = "training time relative to LoRA") -> Figure:
    """Ours (mean, seeds as dots) beside the paper's ratio for every row that has one."""
    fig = Figure(figsize=(1.1 * len(rows) + 2.5, 3.3))
    ax = fig.add_subplot()
    for x, r in enumerate(rows):
        s = r["ours"]["time_vs_lora"]
        ax.bar(x - 0.2, s["mean"] or 0.0, width=0.4, color="C0", label="ours" if x == 0 else None)
        ax.plot([x - 0.2] * len(s["values"]), s["values"], "k.", ms=6)
        if "time" in r["paper"]:
            ax.bar(x + 0.2, r["paper"]["time"], width=0.4, color="C1", label="paper (M3, GPU)" if x == 0 else None)
    ax.axhline(1.0, color="gray", lw=1, ls="--")
    ax.set_xticks(range(len(rows)), [r["row"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("time / LoRA's time")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def conflict_figure(rows: list[dict], fractions: Sequence[float], metrics: Sequence[str] = ("closed", "open")) -> Figure:
    """Comprehension as generation batches are added: shared plugin vs separate plugins.

    ``rows``: the conflict table's rows, the shared ones first, each group in ``fractions`` order."""
    n = len(fractions)
    fig = Figure(figsize=(3.6 * len(metrics), 3.3))
    for i, m in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for g, (label, group) in enumerate((("one shared plugin", rows[:n]), ("separate plugins", rows[n:]))):
            means = [r["ours"][m]["mean"] for r in group]
            ax.plot(fractions, [math.nan if v is None else v for v in means], "-o", color=f"C{g}", label=label)
            for p, r in zip(fractions, group):
                ax.plot([p] * len(r["ours"][m]["values"]), r["ours"][m]["values"], ".", color=f"C{g}", alpha=0.5)
        ax.set_xlabel("generation batches per comprehension batch")
        ax.set_ylabel(METRICS.get(m, m), fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("task conflict: comprehension as generation data is added")
    fig.tight_layout()
    return fig
