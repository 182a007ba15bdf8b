"""A frozen linear layer ``W0`` with one adapter *plugin* per task, switched in place.

    y = W0 x                       (no task active)
    y = W0 x + plugin[task](x)     (task = "comprehension" | "generation" | ...)

HealthGPT's task-level routing is a **hard, non-learned switch** (docs/PAPERS.md section 2): each
task owns its own plugin in every wrapped layer, and the task type picks which one runs. The
released code reloads the whole model to switch; here :meth:`TaskPluginLinear.set_task` flips
one attribute, so switching costs nothing and the other plugin's weights stay where they are.

How a plugin computes its low-rank update is the subclass's business:
:class:`~healthgpt_lite.lora.hlora.HLoRALinear` (fused, 2 matmuls) or
:class:`~healthgpt_lite.lora.moelora.MoELoRALinear` (a loop over k experts, 2k matmuls).
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..config import PluginConfig, rank_split_problem
from ..errors import ConfigError, InputError


def check_plugin_config(task: str, cfg: PluginConfig) -> None:
    """k experts of rank r each: the total rank must split evenly over the experts."""
    if problem := rank_split_problem(cfg.rank, cfg.experts):
        raise ConfigError(f"{task} plugin: {problem}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ConfigError(f"{task} plugin: dropout={cfg.dropout} must lie in [0, 1)")


def routing_weights(router_logits: torch.Tensor) -> torch.Tensor:
    """``(..., k)`` router logits -> mixing weights summing to 1 per token: a dense softmax (no
    top-k, no noise), as H-LoRA and MoELoRA use it."""
    return F.softmax(router_logits, dim=-1)


class RoutedPlugin(nn.Module):
    """What H-LoRA and MoELoRA plugins share: k experts of rank r, a dense token-level router
    ``softmax(R x)`` over them (no top-k, no noise) and dropout on the low-rank activations.
    Subclasses build ``self.router = nn.Linear(d_in, k)`` and their experts, and say how the
    experts' updates are computed (fused or in a loop)."""

    router: nn.Linear

    def __init__(self, cfg: PluginConfig):
        super().__init__()
        self.config = cfg
        self.experts, self.rank_per_expert, self.scale = cfg.experts, cfg.rank_per_expert, cfg.scale
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def router_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., d_in) -> (..., k)`` mixing weights, summing to 1 per token."""
        return routing_weights(self.router(x))


class TaskPluginLinear(nn.Module):
    """Wraps a frozen ``nn.Linear`` and holds one plugin per task; subclasses set ``plugin_cls``.

    ``plugin_cls(d_in, d_out, cfg, device=..., dtype=...)`` must return a module mapping
    ``(..., d_in) -> (..., d_out)``: the adapter's update, added to ``W0 x``. The first task
    given is active after construction; ``set_task`` changes that.
    """

    plugin_cls: type[nn.Module]

    def __init__(self, base: nn.Linear, plugins: Mapping[str, PluginConfig]):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise InputError(f"{type(self).__name__} wraps an nn.Linear, got {type(base).__name__}")
        if not plugins:
            raise InputError(f"{type(self).__name__} needs at least one task plugin")
        self.base = base.requires_grad_(False)  # W0 stays frozen
        self.plugins = nn.ModuleDict()
        for task, cfg in plugins.items():
            check_plugin_config(task, cfg)
            self.plugins[task] = self.plugin_cls(base.in_features, base.out_features, copy.deepcopy(cfg),
                                                 device=base.weight.device, dtype=base.weight.dtype)
        self.active_task: str | None = next(iter(self.plugins))  # the first task starts active

    # HF code sometimes reads these off a projection (dtype checks, shapes): answer like W0 would.
    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def tasks(self) -> list[str]:
        return list(self.plugins)

    def set_task(self, task: str | None) -> None:
        """Activate ``task``'s plugin (``None``: the base layer alone). Nothing is copied."""
        if task is not None and task not in self.plugins:
            raise InputError(f"unknown task {task!r}; this layer has plugins for {self.tasks} (or None)")
        self.active_task = task

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., d_in) -> (..., d_out)
        y = self.base(x)  # W0 x
        if self.active_task is None:
            return y
        return y + self.plugins[self.active_task](x)

    def extra_repr(self) -> str:
        return f"active_task={self.active_task!r}"
