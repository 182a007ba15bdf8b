"""Learning-rate schedules: the one home of the warm-up + cosine rule every trainer here uses.

Each function maps an optimizer step to a factor on the base learning rate; ``with_schedule``
wraps it into the dictionary Lightning's ``configure_optimizers`` returns (stepped per batch).
"""
from __future__ import annotations

import math
from typing import Callable

import torch


def cosine_decay(progress: float) -> float:
    """1 -> 0 along half a cosine as ``progress`` goes 0 -> 1 (clamped at 1)."""
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def warmup_then_cosine(total_steps: int, warmup_steps: int, floor: float = 0.0,
                       constant: bool = False) -> Callable[[int], float]:
    """Linear warm-up over ``warmup_steps``, then cosine decay from 1 to ``floor`` over the rest
    (or a constant 1 after the warm-up when ``constant``)."""
    warmup = max(1, warmup_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if constant:
            return 1.0
        return floor + (1 - floor) * cosine_decay((step - warmup) / max(1, total_steps - warmup))

    return factor


def warmup_times_cosine(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """A linear warm-up multiplied by a cosine over *all* steps (LLM-lite pretraining's schedule)."""
    warmup = max(1, warmup_steps)
    return lambda step: min(1.0, (step + 1) / warmup) * cosine_decay(step / max(1, total_steps))


def with_schedule(opt: torch.optim.Optimizer, factor: Callable[[int], float]) -> dict:
    """``configure_optimizers``' return value: ``opt`` with ``factor`` applied every step."""
    return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor),
                                               "interval": "step"}}
