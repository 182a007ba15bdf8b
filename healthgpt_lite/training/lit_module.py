"""One LightningModule for every stage and task: the stage table decides what trains.

``configure_optimizers`` builds exactly one AdamW group per trained parameter group of the
stage (weight decay 0, docs/PAPERS.md section 3), at the stage's learning rate times
``train.lr_scale``, with a linear warm-up then cosine decay (stage 2: constant after warm-up).
Everything else is frozen. ``image_rows`` trains only the new image-token rows of the
embeddings and the head, through a gradient mask.
"""
from __future__ import annotations

import contextlib

import lightning as L
import torch

from ..errors import ConfigError
from ..model.healthgpt_model import HealthGPTModel
from .sampling import step_seed
from .schedule import warmup_then_cosine, with_schedule
from .stages import StageSpec


def freeze_for_stage(model: HealthGPTModel, spec: StageSpec) -> list[torch.utils.hooks.RemovableHandle]:
    """requires_grad only on the stage's groups; returns the gradient-mask hooks it installed."""
    for p in model.parameters():
        p.requires_grad_(False)
    groups = model.parameter_groups()
    for g in spec.trains:
        for p in groups[g]:
            p.requires_grad_(True)
    hooks = []
    if "image_rows" in spec.trains:  # rows >= <start_index> are the image-token block
        hooks = [train_only_rows_from(p, model.block.start) for p in groups["image_rows"]]
    return hooks


def train_only_rows_from(weight: torch.Tensor, first_row: int) -> torch.utils.hooks.RemovableHandle:
    """Let only rows ``first_row..`` of ``weight`` (V, d) learn: a gradient hook zeroes the
    gradient of every earlier row, in every backward pass, until the handle is removed.

    ``requires_grad`` is per tensor, not per row, so the text rows of the embedding and the head
    are frozen by their gradient instead. With a zero gradient from the first step, AdamW (at
    weight decay 0, as every stage here) leaves them exactly as they were."""
    mask = torch.zeros(weight.shape[0], 1, dtype=weight.dtype, device=weight.device)  # (V, 1)
    mask[first_row:] = 1
    return weight.register_hook(lambda grad: grad * mask.to(grad.dtype))  # (V, d) * (V, 1)


# the names FSDP's and activation checkpointing's wrappers insert into parameter names
WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.")


def plain_name(name: str) -> str:
    """A parameter's name in the unwrapped model (what artifacts and checkpoints are keyed by)."""
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def trainable_parameter_count(model: HealthGPTModel, spec: StageSpec) -> int:
    """Weights a stage really updates (``image_rows``: only the new rows of embeddings and head)."""
    groups, seen, total = model.parameter_groups(), set(), 0
    for g in spec.trains:
        for p in groups[g]:
            if g == "image_rows":
                total += (p.shape[0] - model.block.start) * p.shape[1]
            elif id(p) not in seen:
                total += p.numel()
            seen.add(id(p))
    return total


def corrupt_image_tokens(input_ids: torch.Tensor, block, p: float) -> torch.Tensor:
    """Replace a fraction ``p`` of the image-code *inputs* by random codes; labels stay true.

    Under teacher forcing the model always builds on the right previous codes; when it writes
    an image on its own it builds on its own mistakes (exposure bias). Training on inputs
    with some wrong codes teaches it to predict the right next code anyway. Random draws
    follow the step's seed (``on_train_batch_start``)."""
    is_code = (input_ids >= block.first_idx) & (input_ids < block.first_idx + block.n_codes)  # (B, T)
    flip = is_code & (torch.rand(input_ids.shape, device=input_ids.device) < p)
    random_codes = torch.randint_like(input_ids, block.n_codes) + block.first_idx  # (B, T)
    return torch.where(flip, random_codes, input_ids)


class TaskInBackward(torch.autograd.Function):
    """The identity on one task's loss, whose backward switches the model back to that task.

    Stage 2 runs the comprehension and the generation forward, then one backward. With activation
    checkpointing (the L14 FSDP policy, ``--model.activation_checkpointing``) every layer runs its
    forward again during backward, reading the task that is active *then*: the generation plugin,
    set last. Without this switch the comprehension layers would recompute with the wrong plugin:
    wrong gradients, silently where both plugins have the same rank, or a checkpoint metadata
    error. Autograd runs the nodes made later first (the generation branch down to its first
    layer) and reaches a branch's layers only through its loss, so the switch at each loss holds
    for the whole branch (tests/test_stages.py checks the gradients with and without)."""

    @staticmethod
    def forward(ctx, loss: torch.Tensor, model: HealthGPTModel, task: str) -> torch.Tensor:
        ctx.model, ctx.task = model, task
        return loss.view_as(loss)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ctx.model.set_task(ctx.task)
        return grad, None, None


class HealthGPTLitModule(L.LightningModule):
    def __init__(self, model: HealthGPTModel, spec: StageSpec, total_steps: int, lr_scale: float = 1.0,
                 warmup_fraction: float = 0.03, seed: int = 0, image_token_noise: float = 0.0):
        super().__init__()
        self.model, self.spec, self.seed, self.image_token_noise = model, spec, seed, image_token_noise
        self.total_steps, self.lr_scale, self.warmup_fraction = total_steps, lr_scale, warmup_fraction
        self._hooks = freeze_for_stage(model, spec)
        model.train()  # HF loads models in eval mode; the plugins' dropout must be on (from step 0)
        self.strict_loading = False  # checkpoints hold only what trains (see on_save_checkpoint)

    def setup(self, stage: str) -> None:
        from lightning.pytorch.strategies import FSDPStrategy

        if "image_rows" in self.spec.trains and isinstance(self.trainer.strategy, FSDPStrategy):
            raise ConfigError(
                f"{self.spec.name} trains only the new image-token rows of the embeddings and the head, through a "
                "gradient mask on those parameters; FSDP computes with its own flattened copies and would bypass "
                "the mask (every text row would train too). Run this stage with DDP (`fit`: --trainer.strategy ddp "
                "--model.activation_checkpointing true; memory per GPU: notebook 12 / `healthgpt_lite plan`)")

    def full_parameters(self):
        """FSDP keeps 1/N of every weight per process: gather whole tensors onto rank 0's CPU while
        saving a stage (a collective, so every rank enters). A no-op for DDP and single devices."""
        from lightning.pytorch.strategies import FSDPStrategy

        if not isinstance(self.trainer.strategy, FSDPStrategy):
            return contextlib.nullcontext()
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        return FSDP.summon_full_params(self.trainer.strategy.model, writeback=False, rank0_only=True,
                                       offload_to_cpu=True)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        """Dropout masks fixed by the step and the micro-batch's slot in it (sampling.py): the
        same masks whether a global batch is split across ranks or accumulated on one."""
        t = self.trainer
        slot = (batch_idx % t.accumulate_grad_batches) * t.world_size + t.global_rank
        torch.manual_seed(step_seed(self.seed, self.global_step, slot))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep only trainable tensors: a resumable M3 checkpoint is then megabytes of plugins
        and adapters plus optimizer state, not 7 GB of frozen Phi-3 weights. Not with FSDP's
        sharded checkpoints (L14): Lightning loads those strictly, every weight must be there
        (each process writes its 1/N)."""
        if getattr(self.trainer.strategy, "_state_dict_type", None) == "sharded":
            return
        trainable = {f"model.{plain_name(n)}" for n, p in self.model.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if plain_name(k) in trainable}

    def trained_tensors(self) -> dict[str, torch.Tensor]:
        """What the stage trained, by plain parameter names (a stage artifact); under FSDP call it
        inside :meth:`full_parameters`."""
        return {plain_name(n): t for n, t in self.model.trainable_state(self.spec.trains).items()}

    def _loss(self, batch: dict) -> torch.Tensor:
        self.model.set_task(batch["task"])
        input_ids = batch["input_ids"]
        if self.training and self.image_token_noise > 0 and batch["task"] == "generation":
            input_ids = corrupt_image_tokens(input_ids, self.model.block, self.image_token_noise)
        loss = self.model.loss(input_ids, batch["labels"], batch["attention_mask"],
                               pixels=batch.get("pixels"), features=batch.get("features"))  # cached features or pixels
        return TaskInBackward.apply(loss, self.model, batch["task"])

    def training_step(self, batch, batch_idx):
        batches = [b for b in batch.values() if b is not None]  # {task: batch}; stage 2 has both tasks
        losses = {b["task"]: self._loss(b) for b in batches}
        for task, loss in losses.items():
            self.log(f"train/loss_{task}", loss, prog_bar=len(losses) > 1, batch_size=len(batches[0]["input_ids"]))
        loss = torch.stack(list(losses.values())).mean()
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batches[0]["input_ids"]))
        return loss

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        loss = self._loss(batch)
        self.log(f"val/loss_{batch['task']}", loss, prog_bar=True, add_dataloader_idx=False,
                 batch_size=len(batch["input_ids"]), sync_dist=True)  # ranks agree (datamodule.val_dataloader)

    def configure_optimizers(self):
        groups = self.model.parameter_groups()
        param_groups, seen = [], set()
        for name, lr in self.spec.lrs.items():
            params = [p for p in groups[name] if id(p) not in seen]
            seen.update(id(p) for p in params)
            if params:  # a group this model does not have (image_tokens.positions = "none") is skipped
                param_groups.append({"params": params, "lr": lr * self.lr_scale, "name": name})
        opt = torch.optim.AdamW(param_groups, weight_decay=0.0)
        return with_schedule(opt, warmup_then_cosine(self.total_steps, int(self.total_steps * self.warmup_fraction),
                                                     constant=self.spec.schedule == "constant"))

    def on_train_end(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
