"""Where on the image grid the next code goes: a learned 2-D position for image tokens.

HealthGPT writes an image as ``<start_index>`` + h*w ``<idx_*>`` tokens in raster order
(paper, "Unified Autoregressive Generation"); Phi-3 tells positions apart only by 1-D rotary embeddings (RoPE), i.e. by
*distance in the sequence*. Code (r, c) then has to work out its row and column by counting
back from ``<start_index>``, which a small LLM does not learn: it copies the neighbouring code
under teacher forcing and falls apart when it decodes on its own (measured in notebook 06:
greedy reconstruction SSIM far below teacher-forced).

This module gives every position that *predicts* a code a learned vector saying which cell of
the grid comes next, as ViT and image-GPT models do for their patches:

    input at  <start_index>  <idx_a>  <idx_b>  ...   (j = 0, 1, 2, ..., h*w - 1)
    predicts  code 0         code 1   code 2   ...
    adds      row[0]+col[0]  row[0]+col[1]  ...  row[j // w] + col[j % w]

Row and column vectors are separate tables (h + w vectors of size d, 2-D "axial" embeddings),
initialised to zero so a fresh model computes exactly what the paper's model computes; they
train with the image-token rows (stage-1 generation) and the generation plugin (stage 3).
``image_tokens.positions = "none"`` is the paper's design (1-D RoPE only) for ablations.

``"aligned"`` also adds the same vectors to the *input* image of a generation task (CT->MRI,
super-resolution, reconstruction): the visual token of ViT patch (R, C) gets the mean of the
grid vectors of the code cells it covers (:meth:`ImagePositions.input_table`), so the code to
write at (r, c) and the patch it is made from carry a shared vector that attention can match,
whatever their distance in the sequence.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ImagePositions(nn.Module):
    """Row + column embeddings of an h x w code grid, added at the code-predicting positions."""

    def __init__(self, grid: int, hidden_size: int, on_input: bool = False):
        super().__init__()
        self.grid = grid
        self.on_input = on_input  # "aligned": the generation input's visual tokens get them too
        self.row = nn.Parameter(torch.zeros(grid, hidden_size))  # (h, d)
        self.col = nn.Parameter(torch.zeros(grid, hidden_size))  # (w, d)

    @property
    def n_positions(self) -> int:
        return self.grid * self.grid

    def table(self) -> torch.Tensor:
        """(h*w, d): the vector added where code j = r*w + c is predicted."""
        return (self.row[:, None, :] + self.col[None, :, :]).reshape(self.n_positions, -1)

    def at(self, j: int | torch.Tensor) -> torch.Tensor:
        """The vector(s) for code index j (an int or a tensor of indices): (..., d)."""
        j = torch.as_tensor(j, device=self.row.device)
        return self.row[j // self.grid] + self.col[j % self.grid]

    def input_table(self, n_visual: int) -> torch.Tensor:
        """(N, d): the vector of each of the N = g*g visual tokens (a g x g ViT patch grid), the
        mean over the code cells that patch covers (adaptive average pooling of rows and columns)."""
        g = round(n_visual ** 0.5)
        if g * g != n_visual:
            raise ValueError(f"{n_visual} visual tokens are not a square patch grid")
        row = F.adaptive_avg_pool1d(self.row.T[None], g)[0].T  # (g, d)
        col = F.adaptive_avg_pool1d(self.col.T[None], g)[0].T  # (g, d)
        return (row[:, None, :] + col[None, :, :]).reshape(n_visual, -1)

    def add_to(self, embeds: torch.Tensor, input_ids: torch.Tensor, start_id: int) -> torch.Tensor:
        """embeds (B, T, d) + the grid vectors at the positions ``<start_index>`` + j, j < h*w.

        Rows without ``<start_index>`` (comprehension, text) are returned unchanged."""
        is_start = input_ids == start_id  # (B, T)
        has_start = is_start.any(1, keepdim=True)  # (B, 1)
        start = is_start.int().argmax(1, keepdim=True)  # (B, 1) position of <start_index>
        j = torch.arange(input_ids.shape[1], device=input_ids.device)[None] - start  # (B, T)
        inside = has_start & (j >= 0) & (j < self.n_positions)  # (B, T)
        if not inside.any():
            return embeds
        add = torch.zeros_like(embeds)
        add[inside] = self.at(j[inside]).to(embeds.dtype)  # (n_inside, d)
        return embeds + add


def image_positions_for(cfg) -> ImagePositions | None:
    """The config's choice: row + column vectors of the VQ code grid (``"grid"``), the same also on
    the generation input's patches (``"aligned"``), or none (the paper's 1-D RoPE)."""
    mode = cfg.image_tokens.positions
    if mode == "none":
        return None
    return ImagePositions(cfg.vq.grid_size, cfg.llm.hidden_size, on_input=mode == "aligned")
