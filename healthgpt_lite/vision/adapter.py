"""The adapters that carry visual tokens into the LLM's embedding space, docs/PAPERS.md section 1.

LLaVA's ``mlp2x_gelu`` projector: ``Linear(d_vision -> d_llm), GELU, Linear(d_llm -> d_llm)``.
HealthGPT keeps **two** of them, one per task (paper, "Hierarchical Visual Perception"):
the comprehension adapter reads the abstract HVP layer, the generation adapter the concrete
one; the task picks which (a hard switch, like the H-LoRA plugins).
"""
from __future__ import annotations

from torch import nn

from ..config import TASKS, Config


class MLP2xGELU(nn.Sequential):
    """``(B, N, in_dim) -> (B, N, out_dim)``: LLaVA's ``mlp2x_gelu``.

    A ``Sequential``, as in LLaVA, so the parameter names (``0.weight``, ``2.weight``) are those
    of the released projector checkpoints (``mm_projector.0.weight`` ...)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
        self.in_dim, self.out_dim = in_dim, out_dim


def make_adapters(cfg: Config, vision_hidden: int | None = None) -> nn.ModuleDict:
    """One ``MLP2xGELU`` per task, vision hidden size -> ``cfg.llm.hidden_size``.

    ``vision_hidden`` defaults to ``cfg.vision.hidden_size`` (pass ``encoder.hidden_size`` when
    the encoder was loaded from a folder)."""
    d_in = vision_hidden or cfg.vision.hidden_size
    return nn.ModuleDict({task: MLP2xGELU(d_in, cfg.llm.hidden_size) for task in TASKS})
