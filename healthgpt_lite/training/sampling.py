"""Batches as a function of the step: what makes an interrupted stage resume *exactly*.

A plain shuffling DataLoader restarts its epoch when training resumes from a mid-epoch
checkpoint, so the resumed run sees other batches than the uninterrupted one would have. Here
the batch of global step ``s`` is a pure function of ``(seed, s)``: epoch ``s // steps_per_epoch``
has its own seeded permutation, and the sampler starts at the step the checkpoint stopped at.
Together with a per-step seed for dropout (``HealthGPTLitModule.on_train_batch_start``), a
resumed stage ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import torch
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Infinite batches of ``batch_size`` indices into ``n_items``; batch s is fixed by (seed, s)."""

    def __init__(self, n_items: int, batch_size: int, seed: int, start_step: int = 0):
        if n_items < 1:
            raise ValueError("cannot sample batches from an empty data set")
        self.n, self.batch_size, self.seed, self.start_step = n_items, min(batch_size, n_items), seed, start_step
        self.per_epoch = self.n // self.batch_size

    def batch(self, step: int) -> list[int]:
        epoch, i = divmod(step, self.per_epoch)
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        return order[i * self.batch_size:(i + 1) * self.batch_size].tolist()

    def __iter__(self):
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1


def step_seed(seed: int, step: int) -> int:
    """The RNG seed of one training step (dropout masks), independent of what ran before."""
    return (seed * 1_000_003 + step * 7919) % (2**63 - 1)
