"""Two training recipes drawn side by side (notebook 11): what trains in each stage, and the
learning curves of both on one axis. Figures only; the numbers come from ``eval/recipes.py``."""
from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .diagrams import COLORS

if TYPE_CHECKING:  # the annotation only; pandas is imported where the curves are drawn
    import pandas as pd

# rows of the grid: (what the reader sees, the stage-table groups it covers, needs plugins)
PARTS = [
    ("projector / abstract adapter\n(mlp2x_gelu on ViT layer -2)", ("abstract_adapter",), False),
    ("LLM base weights\n(embeddings, layers, head)", ("llm", "embeddings", "head"), False),
    ("comprehension H-LoRA plugin", ("comp_plugin",), True),
    ("generation H-LoRA plugin\n+ image vocabulary", ("gen_plugin", "image_rows"), True),
]
ABSENT = "#ffffff"


def recipe_grid_figure(recipes, counts: dict[str, int] | None = None) -> Figure:
    """One column per stage of each recipe (``training.qilin_stages.Recipe``), one row per part of
    the model: orange = trains (with its learning rate), blue-gray = frozen, white = not in this
    model. ``counts``: trainable weights per stage name, written under the column title."""
    columns = [(rec, spec) for rec in recipes for spec in rec.stages]
    fig = Figure(figsize=(2.1 * len(columns) + 2.6, 0.85 * len(PARTS) + 1.4))
    ax = fig.add_subplot()
    for j, (rec, spec) in enumerate(columns):
        for i, (_, groups, needs_plugins) in enumerate(PARTS):
            trained = [g for g in groups if g in spec.lrs]
            absent = needs_plugins and not rec.plugins
            color = ABSENT if absent else COLORS["trained"] if trained else COLORS["frozen"]
            ax.add_patch(Rectangle((j, -i - 1), 0.95, 0.9, fc=color, ec="#999999" if absent else "#333333"))
            text = "not in model" if absent else f"trains\nlr {spec.lrs[trained[0]]:g}" if trained else "frozen"
            ax.text(j + 0.475, -i - 0.55, text, ha="center", va="center", fontsize=8,
                    color="#999999" if absent else "black", weight="bold" if trained else "normal")
        head = f"{rec.name}\n{spec.name.split('_')[-1]}"
        if counts and spec.name in counts:
            head += f"\n{counts[spec.name]:,} weights"
        ax.text(j + 0.475, 0.1, head, ha="center", va="bottom", fontsize=8.5)
    for i, (label, _, _) in enumerate(PARTS):
        ax.text(-0.1, -i - 0.55, label, ha="right", va="center", fontsize=8.5)
    n_first = len(recipes[0].stages)
    ax.axvline(n_first - 0.025, color="#333333", lw=1.5)
    ax.set_xlim(-2.6, len(columns)), ax.set_ylim(-len(PARTS) - 0.2, 1.1), ax.axis("off")
    fig.tight_layout()
    return fig


def overlay_curves(runs: dict[str, pd.DataFrame], key: str, title: str = "", logy: bool = True) -> Figure:
    """``key`` (a column of ``read_metrics``) of several runs against the step, on one axis:
    ``plot_curves`` with one column per run."""
    import pandas as pd

    from ..training.trainer import plot_curves

    frames = [df[["step", key]].rename(columns={key: label}) for label, df in runs.items() if key in df]
    return plot_curves(pd.concat(frames, ignore_index=True), list(runs), title=title, logy=logy, ylabel=key)
