"""Figures of notebook 12: where a GPU's memory goes in each way of running a stage."""
from __future__ import annotations

from matplotlib.figure import Figure

PARTS = ("weights", "grads", "optimizer", "buffers", "activations")
COLORS = ("#4c72b0", "#dd8452", "#c44e52", "#8172b3", "#55a868")


def memory_figure(breakdowns: dict[str, dict], gpu_gib: float = 80.0, title: str = "") -> Figure:
    """Stacked bars, GiB per GPU: ``{panel title: {variant: MemoryEstimate}}``, one panel each,
    with the memory of one GPU as a dashed line."""
    fig = Figure(figsize=(5.2 * len(breakdowns), 2.9))
    for i, (panel, variants) in enumerate(breakdowns.items()):
        ax = fig.add_subplot(1, len(breakdowns), i + 1)
        names = list(variants)
        left = [0.0] * len(names)
        for part, color in zip(PARTS, COLORS):
            values = [getattr(variants[n], part) for n in names]
            ax.barh(names, values, left=left, color=color, label=part)
            left = [a + b for a, b in zip(left, values)]
        for y, total in enumerate(left):
            ax.text(total + 1, y, f"{total:.0f}", va="center", fontsize=8)
        ax.axvline(gpu_gib, color="k", ls="--", lw=1)
        ax.set_xlim(0, max(gpu_gib, max(left)) * 1.15)
        ax.invert_yaxis()
        ax.set_xlabel("GiB per GPU")
        ax.set_title(panel, fontsize=10)
        if i == 0:
            ax.legend(fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
