"""A Lightning callback that times each training step of a real ``fit`` and counts its FLOPs.

Given to ``training.pipeline.run_stage(..., callbacks=[meter.callback])``, it watches the
production path from the inside: each step's seconds run from ``on_train_batch_start`` to
``on_train_batch_end`` (forward, backward, optimizer step; not the data loading or the
validation loop), with ``torch.cuda.synchronize()`` at both ends on a GPU, since CUDA
kernels run asynchronously and the clock would otherwise stop before they finish. The FLOPs
of each step come from the shapes of its batch (``bench/flops.py``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .flops import llm_shape, training_step_flops


@dataclass(frozen=True)
class StepRecord:
    seconds: float
    batches: dict[str, tuple[int, int]]  # task -> (B sequences, T positions) of the padded batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepMeter:
    """``meter.callback`` goes into the Trainer; ``meter.summary()`` after the fit.

    The first ``skip`` steps are left out of the averages (allocations, AdamW's first state,
    cuDNN/cuBLAS autotuning) when there are more than ``skip + 1`` steps."""

    def __init__(self, skip: int = 2):
        import lightning as L

        outer = self
        self.skip, self.steps, self.shapes = skip, [], {}

        class _Meter(L.Callback):
            def on_train_start(self, trainer, module):  # requires_grad is set for the stage by now
                outer.shapes = {t: llm_shape(module.model, t) for t in ("comprehension", "generation")}

            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                _sync(module.device)
                outer._batches = {b["task"]: tuple(b["input_ids"].shape) for b in batch.values() if b is not None}
                outer._started = time.perf_counter()

            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                _sync(module.device)
                outer.steps.append(StepRecord(time.perf_counter() - outer._started, outer._batches))

        self.callback = _Meter()

    def step_flops(self, step: StepRecord) -> int:
        return sum(training_step_flops(self.shapes[task], [t] * b).total for task, (b, t) in step.batches.items())

    def summary(self) -> dict:
        """Averages over the timed steps; ``None`` where nothing was trained (a loaded stage)."""
        timed = self.steps[self.skip:] if len(self.steps) > self.skip + 1 else self.steps
        if not timed:
            return {"steps": 0, "timed_steps": 0, "seconds_per_step": None, "tokens_per_step": None,
                    "tokens_per_s": None, "flops_per_step": None, "flops_per_s": None}
        seconds = sum(s.seconds for s in timed)
        tokens = sum(b * t for s in timed for b, t in s.batches.values())
        flops = sum(self.step_flops(s) for s in timed)
        n = len(timed)
        return {"steps": len(self.steps), "timed_steps": n, "seconds_per_step": seconds / n,
                "tokens_per_step": tokens / n, "tokens_per_s": tokens / seconds,
                "flops_per_step": flops / n, "flops_per_s": flops / seconds,
                "shapes": {task: vars(shape) for task, shape in self.shapes.items()}}
