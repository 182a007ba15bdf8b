"""Training the VQ tokenizer with Lightning (taming's first stage, without the GAN).

    loss = l1_weight * |x_rec - x| + l2_weight * (x_rec - x)^2 + quantizer loss (commitment, beta)

on pixels in [-1, 1] (taming's range). taming adds a perceptual (LPIPS) and an adversarial loss
for sharp textures on natural images; both need pretrained or extra networks and minutes of GPU
time, and our smooth phantoms reconstruct well without them, so they are left out (a choice).

Logged to ``metrics.csv``: train loss terms and batch perplexity every few steps; on the val
split every ``val_every`` steps: PSNR, SSIM (torchmetrics), codebook usage and perplexity.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ..config import Config, VQConfig
from ..training.schedule import warmup_then_cosine, with_schedule
from ..training.trainer import last_checkpoint, make_trainer
from .data import load_split_images
from .metrics import code_counts, codebook_stats, image_metrics
from .vqgan import VQGAN

WARMUP_FRACTION = 0.05  # linear warm-up, then cosine decay to 0 (a choice; taming uses a constant LR)


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """(B, 1|3, H, W) in [0, 1] -> (B, 3, H, W) in [-1, 1]: gray is replicated to RGB."""
    return images.expand(-1, 3, -1, -1) * 2 - 1


def to_image_range(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> [0, 1], clamped."""
    return ((x + 1) / 2).clamp(0, 1)


class VQModule(L.LightningModule):
    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        self.model = VQGAN(cfg)
        self._val = self._empty_val()

    def _empty_val(self) -> dict:
        return {"psnr": [], "ssim": [], "counts": torch.zeros(self.cfg.n_embed, dtype=torch.long)}

    def training_step(self, batch, batch_idx):
        x = to_model_range(batch[0])  # (B, 3, H, W)
        rec, q = self.model(x)
        rec_loss = self.cfg.l1_weight * F.l1_loss(rec, x) + self.cfg.l2_weight * F.mse_loss(rec, x)
        loss = rec_loss + q.loss
        batch_stats = codebook_stats(code_counts(q.indices, self.cfg.n_embed))
        self.log_dict({"train/loss": loss, "train/rec_loss": rec_loss, "train/q_loss": q.loss,
                       "train/perplexity": batch_stats["perplexity"]}, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        images = batch[0].expand(-1, 3, -1, -1)  # (B, 3, H, W) in [0, 1]
        rec, q = self.model(to_model_range(images))
        psnr, ssim = image_metrics(to_image_range(rec), images)
        self._val["psnr"].append(psnr.cpu())
        self._val["ssim"].append(ssim.cpu())
        self._val["counts"] += code_counts(q.indices, self.cfg.n_embed)

    def on_validation_epoch_end(self):
        stats = codebook_stats(self._val["counts"])
        self.log_dict({"val/psnr": torch.cat(self._val["psnr"]).mean().item(),
                       "val/ssim": torch.cat(self._val["ssim"]).mean().item(),
                       "val/usage": stats["usage"], "val/perplexity": stats["perplexity"]})
        self._val = self._empty_val()

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=self.cfg.lr, betas=(0.5, 0.9))  # taming's betas
        total = self.cfg.train_steps
        return with_schedule(opt, warmup_then_cosine(total, int(WARMUP_FRACTION * total)))


def train_vq(cfg: Config, run_dir: str | Path, data_dir: str | Path, progress: bool = False) -> tuple[VQModule, dict]:
    """Train on every train-split image, validate on the val split; resumes from
    ``run_dir/checkpoints/last.ckpt`` if an earlier run was interrupted. Returns the module and
    ``{"train_seconds": wall time of fit, "val": last val metrics}``."""
    q = cfg.vq
    torch.manual_seed(cfg.seed)
    train_images, _ = load_split_images(data_dir, "train", q.resolution)  # (N, 1, R, R)
    val_images, _ = load_split_images(data_dir, "val", q.resolution)
    workers = cfg.train.num_workers
    train = DataLoader(TensorDataset(train_images), batch_size=min(q.batch_size, len(train_images)), shuffle=True,
                       drop_last=True, num_workers=workers, generator=torch.Generator().manual_seed(cfg.seed))
    val = DataLoader(TensorDataset(val_images), batch_size=64, num_workers=workers)
    module = VQModule(q)
    val_every = min(q.val_every, q.train_steps)
    trainer = make_trainer(run_dir, q.train_steps, cfg.train, progress=progress,
                           val_check_interval=val_every)
    with warnings.catch_warnings():  # Lightning's notices about tiny epochs and its own deprecations
        warnings.filterwarnings("ignore", message=".*(smaller than the logging interval|LeafSpec).*")
        start = time.time()
        trainer.fit(module, train, val, ckpt_path=last_checkpoint(run_dir))
        seconds = time.time() - start
        if q.train_steps % val_every:  # the last step was not validated: measure the final model too
            trainer.validate(module, val, verbose=False)
    final = {k.split("/")[1]: round(float(v), 4) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    return module, {"train_seconds": round(seconds, 1), "val": final}
