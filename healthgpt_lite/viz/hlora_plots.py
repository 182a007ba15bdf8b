"""Figures for H-LoRA (notebook 05): router weights over tokens, and the speed benchmark."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

PAPER_MOELORA = {2: 1.22, 4: 1.49, 8: 2.09}  # training time vs LoRA, paper Tables 4 and 10 / docs/PAPERS.md section 4


def router_heatmap(weights: Mapping[str, object], tokens: Sequence[str], title: str = "") -> Figure:
    """One panel per layer: expert (rows) x token (columns), colour = router weight in [0, 1].

    ``weights``: ``{label: (T, k) array}``, e.g. ``last_router_weights(model)`` of one sequence."""
    n = len(weights)
    fig = Figure(figsize=(max(6.0, 0.42 * len(tokens) + 1.5), 1.2 + 0.8 * n))
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, (label, w) in zip(axes, weights.items()):
        w = np.asarray(w.detach().cpu() if hasattr(w, "detach") else w, dtype=np.float32)  # (T, k)
        im = ax.imshow(w.T, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(w.shape[1]), [f"e{i}" for i in range(w.shape[1])], fontsize=7)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_xticks([])
    axes[-1].set_xticks(range(len(tokens)), tokens, rotation=60, ha="right", fontsize=8)
    fig.colorbar(im, ax=list(axes), fraction=0.02, pad=0.01, label="router weight")
    if title:
        fig.suptitle(title)
    return fig


def bench_figure(df: pd.DataFrame) -> Figure:
    """Training-step time and step memory relative to LoRA, vs the number of experts k."""
    sizes = list(dict.fromkeys(df["size"]))
    fig = Figure(figsize=(8.5, 2.9 * len(sizes)))
    axes = fig.subplots(len(sizes), 2, squeeze=False)
    for row, size in zip(axes, sizes):
        d = df[df["size"] == size]
        for ax, col, what in ((row[0], "time_vs_lora", "step time"), (row[1], "memory_vs_lora", "step memory")):
            for kind, style in (("moelora", "o-"), ("hlora", "s-")):
                dk = d[d["kind"] == kind]
                ax.plot(dk["experts"], dk[col], style, label=f"{'MoELoRA' if kind == 'moelora' else 'H-LoRA'} (measured)")
            if col == "time_vs_lora":
                ax.plot(list(PAPER_MOELORA), list(PAPER_MOELORA.values()), "x:", color="gray", label="MoELoRA (paper, M3)")
            ax.axhline(1.0, color="black", lw=0.8, ls="--")
            ax.set_xscale("log", base=2), ax.set_xticks(sorted(d[d["kind"] != "lora"]["experts"].unique()))
            ax.get_xaxis().set_major_formatter("{x:.0f}")
            ax.set_xlabel("experts k (same total rank)"), ax.set_ylabel(f"{what} / LoRA")
            ax.set_title(f"{size} LLM (hidden {int(d['hidden'].iloc[0])}): {what}"), ax.grid(alpha=0.3)
        row[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
