"""Before/after figures of what a model produces: image grids and answer tables."""
from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure

from .plots import SCAN, _as_2d


def image_grid(columns: dict[str, Sequence], row_titles: Sequence[str] | None = None, size: float = 1.9,
               title: str = "") -> Figure:
    """One column per entry of ``columns`` (name -> images), one row per sample."""
    names = list(columns)
    n_rows = len(columns[names[0]])
    fig = Figure(figsize=(size * len(names) + (1.2 if row_titles else 0), size * n_rows + 0.4))
    for r in range(n_rows):
        for c, name in enumerate(names):
            ax = fig.add_subplot(n_rows, len(names), r * len(names) + c + 1)
            img = columns[name][r]
            if img is not None:
                ax.imshow(_as_2d(img), **SCAN)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(name)
            if c == 0 and row_titles:
                ax.set_ylabel(row_titles[r], rotation=0, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
