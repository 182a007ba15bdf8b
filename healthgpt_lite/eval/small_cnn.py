"""The small CNNs the evaluation's readers are made of (``probe.py``, ``pixel_reference.py``).

:class:`SmallCNN` reads pixels: five 3x3 convolutions (two of them stride 2), GELU, a 4x4
max-pool and one linear layer per head: about 50k weights at width 16, trained from scratch in
well under a minute on a CPU. Max-pooling keeps *where* something was seen at a 4x4
resolution, which is what lesion side and organ questions need.

:class:`TokenGridCNN` reads what the language model reads instead: the ViT's patch tokens of
the comprehension layer, laid back on their ``sqrt(N) x sqrt(N)`` grid (8 x 8 for tiny); a
1x1 and a 3x3 convolution, the same 4x4 max-pool and heads (about 23k weights at width 16).
"""
from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """(B, 1, H, W) in [0, 1] -> one logit tensor per head, ``{name: (B, n_outputs)}``."""

    def __init__(self, heads: dict[str, int], width: int = 16):
        super().__init__()
        c = width
        self.features = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.GELU(), nn.Conv2d(c, c, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.GELU(), nn.Conv2d(2 * c, 2 * c, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.GELU(), nn.AdaptiveMaxPool2d(4), nn.Flatten())
        self.heads = nn.ModuleDict({name: nn.Linear(4 * c * 16, n) for name, n in heads.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(gray(x))  # (B, 4c*16)
        return {name: head(h) for name, head in self.heads.items()}


class TokenGridCNN(nn.Module):
    """(B, N, D) patch tokens (CLS dropped, N a square) -> ``{name: (B, n_outputs)}``."""

    def __init__(self, heads: dict[str, int], dim: int, width: int = 16):
        super().__init__()
        c = 2 * width
        self.norm = nn.LayerNorm(dim)  # ViT hidden states are not unit-scaled
        self.features = nn.Sequential(nn.Conv2d(dim, c, 1), nn.GELU(), nn.Conv2d(c, c, 3, padding=1), nn.GELU(),
                                      nn.AdaptiveMaxPool2d(4), nn.Flatten())
        self.heads = nn.ModuleDict({name: nn.Linear(c * 16, n) for name, n in heads.items()})

    def forward(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        b, n, d = tokens.shape
        side = int(round(n ** 0.5))
        grid = self.norm(tokens.float()).transpose(1, 2).reshape(b, d, side, side)  # (B, D, g, g), raster order
        h = self.features(grid)  # (B, 2w*16)
        return {name: head(h) for name, head in self.heads.items()}


def gray(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) or (B, H, W) -> (B, 1, H, W) float."""
    x = x.float()
    x = x[:, None] if x.ndim == 3 else x
    return x.mean(1, keepdim=True) if x.shape[1] != 1 else x
