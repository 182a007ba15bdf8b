"""Figures of the VQ tokenizer (notebook 03): quantization in 2-D, an image as its token grid,
reconstructions with their scores, and how the codebook is used. Each returns a Figure."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .plots import SCAN, _as_2d


def quantization_figure(points: torch.Tensor, codes: torch.Tensor, assign: torch.Tensor, title: str = "") -> Figure:
    """2-D vectors coloured by their nearest code (black crosses): what the quantizer does to
    every encoder vector, in a dimension we can draw."""
    fig = Figure(figsize=(4.2, 3.8))
    ax = fig.add_subplot()
    ax.scatter(points[:, 0], points[:, 1], c=assign.numpy() % 20, cmap="tab20", s=6, vmin=0, vmax=19)
    ax.scatter(codes[:, 0], codes[:, 1], c="black", marker="x", s=40, label="codes")
    ax.set_aspect("equal"), ax.legend(loc="upper right"), ax.set_title(title)
    fig.tight_layout()
    return fig


def token_grid_figure(image: torch.Tensor, indices: torch.Tensor, reconstruction: torch.Tensor, n_codes: int,
                      title: str = "") -> Figure:
    """The scan, its grid of code indices as a colour image (one cell per token), and what the
    decoder makes of those indices."""
    fig = Figure(figsize=(9.6, 3.3))
    axes = fig.subplots(1, 3)
    axes[0].imshow(_as_2d(image), **SCAN), axes[0].set_title("image")
    grid = axes[1].imshow(indices.cpu().numpy(), cmap="nipy_spectral", vmin=0, vmax=n_codes - 1, interpolation="nearest")
    h, w = indices.shape
    axes[1].set_title(f"{h}x{w} = {h * w} tokens (code index)")
    fig.colorbar(grid, ax=axes[1], fraction=0.046)
    axes[2].imshow(_as_2d(reconstruction), **SCAN), axes[2].set_title("decoded from the tokens")
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def reconstruction_figure(images: Sequence, reconstructions: Sequence, titles: Sequence[str],
                          scores: Sequence[str]) -> Figure:
    """Originals (top row) over their reconstructions (bottom row, titled with their scores)."""
    n = len(images)
    fig = Figure(figsize=(2.3 * n, 4.9))
    for i in range(n):
        for row, (img, label) in enumerate(((images[i], titles[i]), (reconstructions[i], scores[i]))):
            ax = fig.add_subplot(2, n, row * n + i + 1)
            ax.imshow(_as_2d(img), **SCAN)
            ax.set_xticks([]), ax.set_yticks([]), ax.set_title(label, fontsize=9)
    fig.tight_layout()
    return fig


def codebook_usage_figure(counts: torch.Tensor, title: str = "") -> Figure:
    """How often each code is used, most used first (log scale): a healthy codebook has a long,
    flat curve; a collapsed one a few tall bars and a long run of zeros."""
    c = np.sort(counts.cpu().numpy())[::-1]
    fig = Figure(figsize=(7, 2.8))
    ax = fig.add_subplot()
    ax.bar(np.arange(len(c)), np.maximum(c, 0.8), width=1.0, color="tab:blue")  # 0.8: zeros visible on a log axis
    ax.set_yscale("log"), ax.set_ylim(0.7, None)
    ax.set_xlabel("codes, sorted by use"), ax.set_ylabel("tokens")
    ax.set_title(title or f"{int((c > 0).sum())} of {len(c)} codes used")
    fig.tight_layout()
    return fig
