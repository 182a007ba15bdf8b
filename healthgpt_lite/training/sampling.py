"""Batches as a function of the step: what makes an interrupted stage resume *exactly*.

A plain shuffling DataLoader restarts its epoch when training resumes from a mid-epoch
checkpoint, so the resumed run sees other batches than the uninterrupted one would have. Here
the batch of global step ``s`` is a pure function of ``(seed, s)``: epoch ``s // steps_per_epoch``
has its own seeded permutation, and the sampler starts at the step the checkpoint stopped at.
Together with a per-step seed for dropout (``HealthGPTLitModule.on_train_batch_start``), a
resumed stage ends with the same weights as an uninterrupted one.

Data parallelism (DDP / FSDP) and gradient accumulation split one *global* batch into
``world_size x accumulate`` equal micro-batches, the "slots" of the step: micro-batch ``a`` of
rank ``r`` is slot ``a * world_size + r``. The sampler shards itself, so Lightning must not
inject its ``DistributedSampler`` (it cannot: this is no ``BatchSampler``; the trainers pass
``use_distributed_sampler=False``). Every slot is the same whichever way it is computed, so two
processes with batch ``b`` see exactly the examples of one process with batch ``b`` that
accumulates two micro-batches, in the same order.
"""
from __future__ import annotations

import torch
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Infinite micro-batches of ``batch_size`` indices into ``n_items``; the global batch of
    optimizer step s (``batch_size x world_size x accumulate`` indices) is fixed by (seed, s),
    and this rank yields its slots of it, from optimizer step ``start_step`` on."""

    def __init__(self, n_items: int, batch_size: int, seed: int, start_step: int = 0,
                 rank: int = 0, world_size: int = 1, accumulate: int = 1):
        if n_items < 1:
            raise ValueError("cannot sample batches from an empty data set")
        self.slots = world_size * accumulate
        if n_items < self.slots:
            raise ValueError(f"{n_items} examples cannot fill {world_size} ranks x {accumulate} accumulated "
                             f"micro-batches (one example each at least); use fewer devices or more data")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size}")
        self.n, self.seed, self.start_step = n_items, seed, start_step
        self.rank, self.world_size, self.accumulate = rank, world_size, accumulate
        self.batch_size = min(batch_size, n_items // self.slots)  # per micro-batch
        self.per_epoch = self.n // (self.batch_size * self.slots)  # optimizer steps per pass

    def global_batch(self, step: int) -> list[int]:
        """Every index of optimizer step ``step``, slot after slot."""
        size = self.batch_size * self.slots
        epoch, i = divmod(step, self.per_epoch)
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        return order[i * size:(i + 1) * size].tolist()

    def batch(self, step: int, micro: int = 0) -> list[int]:
        """This rank's micro-batch ``micro`` (0 .. accumulate-1) of optimizer step ``step``."""
        slot = micro * self.world_size + self.rank
        return self.global_batch(step)[slot * self.batch_size:(slot + 1) * self.batch_size]

    def __iter__(self):
        step = self.start_step
        while True:
            for micro in range(self.accumulate):
                yield self.batch(step, micro)
            step += 1


def step_seed(seed: int, step: int, slot: int = 0) -> int:
    """The RNG seed of one micro-batch (dropout masks), independent of what ran before: ranks and
    accumulated micro-batches draw their own masks, as the examples of one large batch would."""
    return (seed * 1_000_003 + step * 7919 + slot * 1_000_000_007) % (2**63 - 1)
