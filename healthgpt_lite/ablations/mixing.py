"""Training on both tasks at a set ratio: the mixed run and the task-conflict runs.

The data module draws one batch of each task type per step (as in stage 2); this module keeps
task ``t``'s batch on ``batches[t]`` of the ``total_steps`` steps, spread evenly (step ``s``
keeps it when ``floor((s + 1) n / N) > floor(s n / N)``), and adds the kept losses. Adding
(not averaging) keeps the comprehension loss's weight the same whatever generation data joins
it: the generation batches are *added* work, which is the question the conflict table asks.
"""
from __future__ import annotations

from ..training.lit_module import HealthGPTLitModule


def keeps_batch(step: int, n: int, total: int) -> bool:
    """Whether step ``step`` (0-based) of ``total`` uses one of the ``n`` batches of a task."""
    return (step + 1) * n // total > step * n // total


def check_batches(batches: dict[str, int], total: int) -> None:
    """One task must have a batch on every step: a step without a loss is not counted by Lightning."""
    if any(n < 0 for n in batches.values()) or max(batches.values(), default=0) != total:
        raise ValueError(f"batches {batches}: one task must have a batch on each of the {total} steps and none more")


class TaskMixModule(HealthGPTLitModule):
    def __init__(self, *args, batches: dict[str, int], **kwargs):
        super().__init__(*args, **kwargs)
        check_batches(batches, self.total_steps)
        self.batches = dict(batches)

    def training_step(self, batch, batch_idx):
        kept = {t: b for t, b in batch.items()
                if b is not None and keeps_batch(self.global_step, self.batches.get(t, 0), self.total_steps)}
        losses = {t: self._loss(b) for t, b in kept.items()}
        for task, loss in losses.items():
            self.log(f"train/loss_{task}", loss, batch_size=len(kept[task]["input_ids"]))
        loss = sum(losses.values())
        self.log("train/loss", loss, prog_bar=True, batch_size=1)
        return loss
