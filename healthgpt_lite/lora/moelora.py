"""MoELoRA: the same mixture of k LoRA experts as H-LoRA, computed as a loop (the paper's baseline).

docs/PAPERS.md section 2 / paper Table 4: per task plugin, k separate expert pairs and one router

    A_i: Linear(d_in -> r)     B_i: Linear(r -> d_out)     router R: Linear(d_in -> k)

    w     = softmax(R x)                                        (..., k)
    delta = sum_i  (scale * w_i) * B_i( dropout(A_i x) )        (..., d_out)

This is the function :class:`~healthgpt_lite.lora.hlora.HLoRAPlugin` computes with one fused
A and B; here it takes 2k small matmuls, k slices and k weighted sums. The results are the same
(:meth:`MoELoRALinear.from_hlora` builds one with identical weights; tests check equality);
only the speed differs, which is what ``python -m healthgpt_lite bench hlora`` measures.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..config import PluginConfig
from ..errors import InputError
from .hlora import HLoRALinear, HLoRAPlugin
from .layer import RoutedPlugin, TaskPluginLinear


class MoELoRAPlugin(RoutedPlugin):
    """One task's MoELoRA update for one linear layer: ``(..., d_in) -> (..., d_out)``."""

    def __init__(self, d_in: int, d_out: int, cfg: PluginConfig, device=None, dtype=None):
        super().__init__(cfg)
        kw = dict(bias=False, device=device, dtype=dtype)
        r = cfg.rank_per_expert
        self.A = nn.ModuleList(nn.Linear(d_in, r, **kw) for _ in range(cfg.experts))  # A_i
        self.B = nn.ModuleList(nn.Linear(r, d_out, **kw) for _ in range(cfg.experts))  # B_i
        self.router = nn.Linear(d_in, cfg.experts, **kw)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for a, b in zip(self.A, self.B):  # same distributions as the fused A (fan_in = d_in)
            nn.init.kaiming_uniform_(a.weight, a=math.sqrt(5))
            nn.init.zeros_(b.weight)
        nn.init.kaiming_uniform_(self.router.weight, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.router_weights(x) * self.scale  # (..., k), the scale folded in as in H-LoRA
        out = 0
        for i, (a, b) in enumerate(zip(self.A, self.B)):
            out = out + w[..., i : i + 1] * b(self.dropout(a(x)))  # (..., 1) * (..., d_out)
        return out  # (..., d_out)

    @torch.no_grad()
    def copy_from_fused(self, fused: HLoRAPlugin) -> "MoELoRAPlugin":
        """Take the weights of a fused plugin: A_i = rows [i*r, (i+1)*r) of A, B_i = those columns of B."""
        r = self.rank_per_expert
        if (fused.experts, fused.rank_per_expert) != (self.experts, r):
            raise InputError(f"fused plugin has {fused.experts} experts of rank {fused.rank_per_expert}, "
                             f"this one {self.experts} of rank {r}")
        for i, (a, b) in enumerate(zip(self.A, self.B)):
            a.weight.copy_(fused.A.weight[i * r : (i + 1) * r])  # (r, d_in)
            b.weight.copy_(fused.B.weight[:, i * r : (i + 1) * r])  # (d_out, r)
        self.router.weight.copy_(fused.router.weight)  # (k, d_in)
        return self


class MoELoRALinear(TaskPluginLinear):
    """A frozen ``nn.Linear`` plus one MoELoRA plugin per task; same API as ``HLoRALinear``."""

    plugin_cls = MoELoRAPlugin

    @classmethod
    def from_hlora(cls, layer: HLoRALinear) -> "MoELoRALinear":
        """A MoELoRA layer computing exactly what ``layer`` computes: same W0 (shared, not
        copied), same plugins' weights (split per expert), same active task."""
        moe = cls(layer.base, {task: p.config for task, p in layer.plugins.items()})
        for task, fused in layer.plugins.items():
            moe.plugins[task].copy_from_fused(fused)
        moe.set_task(layer.active_task)
        return moe
