"""Figures for notebooks and reports. Every helper returns a matplotlib Figure and never calls
``plt.show()``; scans are drawn in gray with a fixed [0, 1] window so images compare."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from ..data.phantoms import FOV_MM, MODALITIES, Patient, render

SCAN = dict(cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")


def _as_2d(img) -> np.ndarray:
    a = img.detach().cpu().float().numpy() if hasattr(img, "detach") else np.asarray(img, dtype=np.float32)
    if a.ndim == 3:  # (C, H, W) -> (H, W)
        a = a.mean(0) if a.shape[0] in (1, 3) else a.mean(-1)
    return a


def show_scans(images: Sequence, titles: Sequence[str] | None = None, ncols: int | None = None,
               size: float = 2.2, suptitle: str | None = None) -> Figure:
    """A grid of scans, each in gray on [0, 1]."""
    n = len(images)
    ncols = ncols or n
    nrows = int(np.ceil(n / ncols))
    fig = Figure(figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)))
    for i, img in enumerate(images):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        ax.imshow(_as_2d(img), **SCAN)
        ax.set_xticks([]), ax.set_yticks([])
        if titles:
            ax.set_title(titles[i])
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def mark_lesions(ax, patient: Patient, size: int, color: str = "tab:red") -> None:
    """Outline the ground-truth lesions of ``patient`` on an image of ``size`` pixels."""
    for l in patient.lesions:
        cx, cz = ((np.array(l.center) + 1) / 2 * size) - 0.5
        r = l.diameter_mm / FOV_MM * size / 2 * 2
        ax.add_patch(Circle((cx, cz), r * 1.35, fill=False, color=color, lw=1.2))


def patient_gallery(patient: Patient, sizes: Sequence[int] = (32, 64, 128, 256), mark: bool = False) -> Figure:
    """One virtual patient: rows = modalities, columns = resolutions (rendered, not resized)."""
    fig = Figure(figsize=(2.3 * len(sizes), 2.4 * len(MODALITIES)))
    for r, m in enumerate(MODALITIES):
        for c, s in enumerate(sizes):
            ax = fig.add_subplot(len(MODALITIES), len(sizes), r * len(sizes) + c + 1)
            ax.imshow(render(patient, m, s), **SCAN)
            if mark:
                mark_lesions(ax, patient, s)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{m.upper()} {s}x{s}")
    fig.suptitle(f"virtual patient {patient.pid}: {len(patient.lesions)} lesion(s)")
    fig.tight_layout()
    return fig


def record_figure(record: dict, data_dir: str | Path, wrap: int = 48) -> Figure:
    """A task record as a student reads it: input image (if any), the turn, the target."""
    from ..data.io import load_image

    data_dir = Path(data_dir)
    panels = [("input", record.get("image")), ("target", record.get("target_image"))]
    panels = [(t, p) for t, p in panels if p]
    fig = Figure(figsize=(2.4 * len(panels) + 4.2, 2.6))
    grid = fig.add_gridspec(1, len(panels) + 2)
    for i, (title, rel) in enumerate(panels):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(_as_2d(load_image(data_dir / rel, channels=1)), **SCAN)
        ax.set_title(f"{title} ({Path(rel).stem.split('_', 1)[1]})")
        ax.set_xticks([]), ax.set_yticks([])
    ax = fig.add_subplot(grid[0, len(panels):])
    ax.axis("off")
    human, gpt = record["conversations"][0]["value"], record["conversations"][1]["value"]
    text = f"task: {record['task']} ({record['task_type']}, {record['lang']})\n\n"
    if record.get("lang") == "en":
        text += f"human: {textwrap.fill(human.replace(chr(10), ' '), wrap)}\n\ngpt: {textwrap.fill(gpt, wrap)}"
    else:  # matplotlib's bundled fonts have no CJK glyphs: print() Chinese text instead
        text += "(Chinese text: print the record to read it)"
    ax.text(0, 1, text, va="top", ha="left", fontsize=8)
    fig.tight_layout()
    return fig
