"""H-LoRA: k low-rank experts stored *fused* in one A and one B, mixed per token by a router.

docs/PAPERS.md section 2 / HealthGPT paper, "Heterogeneous Knowledge Adaptation" (Eqs. 7-11). Per task plugin:

    A: Linear(d_in -> r*k)     B: Linear(r*k -> d_out)     router R: Linear(d_in -> k)   (no biases)

    w     = softmax(R x)                    (..., k)     dense: no top-k, no noise, no balancing loss
    w_exp = repeat_interleave(scale * w, r) (..., r*k)   expert i owns rank columns [i*r, (i+1)*r)
    delta = B( w_exp * dropout(A x) ),      scale = alpha / r

Why this is exactly a mixture of k LoRA experts: split A into row blocks A_i (r x d_in) and B
into column blocks B_i (d_out x r). Then ``B (w_exp * A x) = sum_i B_i (w_i * A_i x)
= sum_i w_i B_i A_i x`` because every column of block i is multiplied by the same w_i. The
sum over experts happens inside one matmul; :mod:`.moelora` computes the same thing with a loop.

Init: A and R Kaiming-uniform (a = sqrt(5)), B zeros, so a fresh plugin is a no-op.

Weight names: the released HealthGPT code calls these ``lora_A``, ``lora_B``, ``lora_route``
(:data:`UPSTREAM_NAMES` maps them), and multiplies the scale into ``A x`` before dropout; the
paper folds it into the expanded router weights (Eq. 9), as here. All are the same function,
since dropout and B are linear in their input; the mixing weights are the narrowest tensor to
scale (scaling the (..., d_out) output instead made a tiny stage-3 comprehension step about 6 %
slower on 2 CPU threads).

    >>> from healthgpt_lite.config import PluginConfig
    >>> layer = HLoRALinear(nn.Linear(64, 32), {"comprehension": PluginConfig(rank=16, experts=4)})
    >>> layer(torch.randn(2, 5, 64)).shape
    torch.Size([2, 5, 32])
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import PluginConfig
from .layer import RoutedPlugin, TaskPluginLinear

UPSTREAM_NAMES = {"lora_A": "A", "lora_B": "B", "lora_route": "router"}  # released code -> ours


class HLoRAPlugin(RoutedPlugin):
    """One task's fused H-LoRA update for one linear layer: ``(..., d_in) -> (..., d_out)``."""

    def __init__(self, d_in: int, d_out: int, cfg: PluginConfig, device=None, dtype=None):
        super().__init__(cfg)
        kw = dict(bias=False, device=device, dtype=dtype)
        self.A = nn.Linear(d_in, cfg.rank, **kw)  # k experts' down-projections, stacked
        self.B = nn.Linear(cfg.rank, d_out, **kw)  # k experts' up-projections, side by side
        self.router = nn.Linear(d_in, cfg.experts, **kw)  # token-level soft routing
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.A.weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.router.weight, a=math.sqrt(5))
        nn.init.zeros_(self.B.weight)  # the update starts at exactly zero

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.router_weights(x) * self.scale  # (..., k), the scale alpha/r folded in
        w_exp = w.repeat_interleave(self.rank_per_expert, dim=-1)  # (..., r*k)
        h = self.dropout(self.A(x))  # (..., r*k)
        return self.B(w_exp * h)  # (..., d_out)


class HLoRALinear(TaskPluginLinear):
    """A frozen ``nn.Linear`` plus one fused H-LoRA plugin per task (see the module docstring).

    ``HLoRALinear(base, {"comprehension": PluginConfig(...), "generation": PluginConfig(...)})``;
    ``layer.set_task("generation")`` switches in place; ``layer.set_task(None)`` = ``W0`` alone.
    The first task given is active after construction.
    """

    plugin_cls = HLoRAPlugin
