"""Figures of the vision encoder (notebook 02): patches, feature maps, layer similarity, probes.
Every helper returns a matplotlib Figure; scans are gray on a fixed [0, 1] window."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .plots import SCAN, _as_2d


def patch_grid_figure(image: torch.Tensor, patch: int, show_tokens: int = 12) -> Figure:
    """An image cut into its ``patch x patch`` grid, and its first patches laid out as the token
    sequence the ViT reads (row-major, after a CLS token)."""
    img = _as_2d(image)
    g = img.shape[0] // patch
    fig = Figure(figsize=(9, 3.4))
    grid = fig.add_gridspec(2, show_tokens + 1, width_ratios=[show_tokens / 2.2] + [1] * show_tokens)
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(img, **SCAN)
    for k in range(1, g):
        ax.axhline(k * patch - 0.5, color="tab:orange", lw=0.6), ax.axvline(k * patch - 0.5, color="tab:orange", lw=0.6)
    for n in range(show_tokens):
        r, c = divmod(n, g)
        ax.text(c * patch + patch / 2 - 0.5, r * patch + patch / 2 - 0.5, str(n + 1), color="tab:orange",
                fontsize=6, ha="center", va="center")
    ax.set_title(f"{g}x{g} patches of {patch}x{patch} px"), ax.set_xticks([]), ax.set_yticks([])
    for n in range(show_tokens):
        r, c = divmod(n, g)
        a = fig.add_subplot(grid[1, n + 1])
        a.imshow(img[r * patch:(r + 1) * patch, c * patch:(c + 1) * patch], **SCAN)
        a.set_xticks([]), a.set_yticks([]), a.set_title(f"t{n + 1}", fontsize=7)
    fig.text(0.62, 0.8, f"sequence: [CLS], t1 ... t{g * g}  ->  {g * g} patch tokens\n"
             "(each patch: flattened, linearly embedded, + position embedding)", ha="center", fontsize=9)
    return fig


def pca_rgb(tokens: torch.Tensor) -> np.ndarray:
    """``(N, D)`` tokens -> ``(g, g, 3)`` image of their first 3 principal components, in [0, 1]."""
    x = tokens.double() - tokens.double().mean(0)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    pcs = x @ v[:3].T  # (N, 3)
    lo, hi = pcs.min(0).values, pcs.max(0).values
    pcs = (pcs - lo) / (hi - lo + 1e-12)
    g = int(round(len(tokens) ** 0.5))
    return pcs.reshape(g, g, 3).numpy()


def layer_maps_figure(images: Sequence[torch.Tensor], hidden: Sequence[tuple], layers: dict[str, int],
                      titles: Sequence[str]) -> Figure:
    """Rows = images; columns = the image, then each named layer's patch tokens as a PCA map
    (3 principal components as RGB): similar colours = similar tokens."""
    fig = Figure(figsize=(2.1 * (1 + len(layers)), 2.2 * len(images)))
    for r, (img, hs) in enumerate(zip(images, hidden)):
        ax = fig.add_subplot(len(images), 1 + len(layers), r * (1 + len(layers)) + 1)
        ax.imshow(_as_2d(img), **SCAN), ax.set_xticks([]), ax.set_yticks([]), ax.set_title(titles[r])
        for c, (name, layer) in enumerate(layers.items()):
            ax = fig.add_subplot(len(images), 1 + len(layers), r * (1 + len(layers)) + c + 2)
            ax.imshow(pca_rgb(hs[layer][0, 1:]), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([]), ax.set_title(name)
    fig.tight_layout()
    return fig


def similarity_matrix_figure(sim: torch.Tensor, marks: dict[str, int], title: str = "") -> Figure:
    """A layer x layer similarity matrix (e.g. linear CKA), with the HVP layers named on the rows."""
    fig = Figure(figsize=(5.2, 3.6))
    ax = fig.add_subplot()
    im = ax.imshow(sim.numpy(), vmin=0, vmax=1, cmap="viridis")
    n = len(sim)
    names = [f"hs[{i}]" for i in range(n)]
    for name, layer in marks.items():
        names[layer % n] = f"{name} = hs[{layer % n}]" if ":" not in name else name
    ax.set_xticks(range(n)), ax.set_xticklabels([f"hs[{i}]" for i in range(n)], fontsize=8)
    ax.set_yticks(range(n)), ax.set_yticklabels(names, fontsize=8)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{sim[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if sim[i, j] < 0.6 else "black")
    ax.set_title(title or "hidden state i vs j")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def probe_bars_figure(results: dict[str, list[dict]], layers: dict[str, int], metrics: Sequence[str]) -> Figure:
    """Grouped bars: each metric for each (encoder, layer); black ticks = majority baseline."""
    fig = Figure(figsize=(1.4 * len(metrics) + 2, 3.4))
    ax = fig.add_subplot()
    groups = [(enc, name, layer) for enc in results for name, layer in layers.items()]
    width = 0.8 / len(groups)
    colors = ["tab:blue", "tab:cyan", "tab:gray", "silver"]
    for g, (enc, name, layer) in enumerate(groups):
        rows = results[enc]
        row = next(r for r in rows if r["layer"] == layer % len(rows))
        x = np.arange(len(metrics)) + (g - (len(groups) - 1) / 2) * width
        ax.bar(x, [row[m] for m in metrics], width, label=f"{enc}, {name}", color=colors[g % len(colors)])
        for xi, m in zip(x, metrics):
            if f"{m} majority" in row:
                ax.plot([xi - width / 2, xi + width / 2], [row[f"{m} majority"]] * 2, color="black", lw=1.5)
    ax.set_xticks(range(len(metrics))), ax.set_xticklabels([m.replace(" (dB)", "") for m in metrics], rotation=20, fontsize=8)
    ax.set_ylim(0, 1.05), ax.set_ylabel("R² / accuracy (test)"), ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(groups), frameon=False)
    ax.set_xlabel("linear probes on the test images (black ticks: majority-class baseline)", fontsize=8)
    fig.tight_layout()
    return fig


def probe_curves_figure(results: dict[str, list[dict]], metrics: Sequence[str], marks: dict[str, int]) -> Figure:
    """Each metric against the hidden-state index, one panel per metric, one line per encoder."""
    fig = Figure(figsize=(2.4 * len(metrics), 2.6))
    for k, m in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), k + 1)
        for enc, rows in results.items():
            ax.plot([r["layer"] for r in rows], [r[m] for r in rows], marker="o", label=enc)
        n = len(next(iter(results.values())))
        for name, layer in marks.items():
            ax.axvline(layer % n, color="tab:orange", ls=":", lw=1)
        ax.set_title(m, fontsize=9), ax.set_xlabel("hidden state"), ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
