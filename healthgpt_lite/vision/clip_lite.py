"""CLIP-lite: give the tiny ViT "eyes" before HealthGPT freezes it.

HealthGPT freezes a CLIP ViT-L/14 that OpenAI pretrained on 400M image-text pairs. A random
tiny ViT has seen nothing, and a frozen random encoder would make every later stage learn from
noise features. So the ``tiny`` / ``small`` presets first pretrain a small CLIP (transformers
``CLIPModel``: our ViT + a tiny text tower over the project tokenizer) with CLIP's symmetric
image-caption contrastive loss (``return_loss=True``) on VL-Health-lite's training images
(captions: ``clip_data.py``), then keep only the vision tower.

    path = ensure_clip_lite(cfg)          # load-or-train: ARTIFACTS_DIR/clip_lite-<hash>/
    encoder = load_vision_encoder(cfg)    # HVPEncoder from cfg.vision.pretrained_path or CLIP-lite

The artifact folder holds ``vision/`` (the ViT, ``save_pretrained``, safetensors: what HVP
loads), ``clip/`` (the whole CLIP, for zero-shot retrieval), ``run/logs/metrics.csv`` and
``meta.json`` (with the test-split retrieval scores).
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import lightning as L
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig

from ..artifacts import artifact_dir, data_dir_for, load_or_make, read_meta
from ..config import Config
from ..training.schedule import warmup_then_cosine, with_schedule
from .clip_data import CaptionPairs, captioned_phantoms, collate_pairs, load_captioned_images
from .encoder import HVPEncoder, clip_vision_config, normalize_pixels

NAME, SECTIONS = "clip_lite", ("vision", "data")
PRETRAIN_SEED_OFFSET = 2_000_003  # CLIP-lite's extra phantoms: a seed no data set or probe uses
MAKE_HINT = ("run notebooks/02_vision_encoder_hvp.ipynb or `python -m healthgpt_lite reproduce`; "
             "or set vision.pretrained_path to a local CLIP folder (m3 / l14: openai/clip-vit-large-patch14-336)")


def clip_lite_config(cfg: Config, vocab_size: int, eos_token_id: int) -> CLIPConfig:
    """Our ViT (``cfg.vision``) + a tiny causal text tower, joined in ``projection_dim`` space."""
    v = cfg.vision
    text = CLIPTextConfig(vocab_size=vocab_size, hidden_size=v.clip_text_hidden_size,
                          intermediate_size=4 * v.clip_text_hidden_size, num_hidden_layers=v.clip_text_layers,
                          num_attention_heads=v.clip_text_heads, max_position_embeddings=v.clip_text_max_len,
                          projection_dim=v.projection_dim, hidden_act="quick_gelu",
                          eos_token_id=eos_token_id, pad_token_id=eos_token_id, bos_token_id=None)
    return CLIPConfig(text_config=text.to_dict(), vision_config=clip_vision_config(v).to_dict(),
                      projection_dim=v.projection_dim)


class CLIPLite(L.LightningModule):
    """Contrastive image-caption pretraining (Radford et al. 2021, CLIP's loss), with Lightning."""

    def __init__(self, clip_config: CLIPConfig, lr: float, max_steps: int, warmup_fraction: float = 0.05):
        super().__init__()
        self.clip = CLIPModel(clip_config)
        self.lr, self.max_steps, self.warmup = lr, max_steps, max(1, int(warmup_fraction * max_steps))

    def forward(self, batch) -> dict:
        out = self.clip(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                        pixel_values=normalize_pixels(batch["pixels"]), return_loss=True)
        # in-batch top-1: does each image pick its own caption? (chance = 1 / B)
        target = torch.arange(len(out.logits_per_image), device=out.logits_per_image.device)
        acc = (out.logits_per_image.argmax(-1) == target).float().mean()
        return {"loss": out.loss, "acc": acc}

    def training_step(self, batch, batch_idx):
        out = self(batch)
        self.log_dict({"train_loss": out["loss"], "train_acc": out["acc"],
                       "temperature": 1 / self.clip.logit_scale.exp()}, prog_bar=True)
        return out["loss"]

    def validation_step(self, batch, batch_idx):
        out = self(batch)
        self.log_dict({"val_loss": out["loss"], "val_acc": out["acc"]})

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.05)
        return with_schedule(opt, warmup_then_cosine(self.max_steps, self.warmup, floor=0.1))  # cosine to 10 %


def train_clip_lite(cfg: Config, data_dir: str | Path, run_dir: str | Path, progress: bool = False) -> CLIPLite:
    """Pretrain CLIP-lite for ``cfg.vision.clip_steps`` steps; resumes from ``run_dir`` if interrupted."""
    from ..data import load_tokenizer
    from ..training.trainer import last_checkpoint, make_trainer

    v = cfg.vision
    tok = load_tokenizer(cfg.llm.tokenizer_path)
    collate = collate_pairs(tok, v.clip_text_max_len)
    images = load_captioned_images(data_dir, "train", v.image_size)
    if v.clip_pretrain_patients:  # fresh phantoms from another seed: never a val or test patient
        images = images + captioned_phantoms(v.clip_pretrain_patients, cfg.data.seed + PRETRAIN_SEED_OFFSET,
                                             v.image_size, cfg.data.image_size)
    train = CaptionPairs(images, seed=cfg.seed, short_fraction=v.clip_short_fraction, augment=True)
    val = CaptionPairs(load_captioned_images(data_dir, "val", v.image_size), seed=cfg.seed + 1)
    loader = lambda ds, shuffle, bs: torch.utils.data.DataLoader(  # noqa: E731
        ds, batch_size=bs, shuffle=shuffle, drop_last=shuffle and len(ds) > bs, collate_fn=collate,
        num_workers=cfg.train.num_workers, generator=torch.Generator().manual_seed(cfg.seed))
    torch.manual_seed(cfg.seed)
    module = CLIPLite(clip_lite_config(cfg, len(tok), tok.eos_token_id), v.clip_lr, v.clip_steps)
    trainer = make_trainer(run_dir, v.clip_steps, cfg.train, progress=progress,
                           val_check_interval=max(1, v.clip_steps // 5))
    with warnings.catch_warnings():  # an epoch of a few batches is expected here, not a mistake
        warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        trainer.fit(module, loader(train, True, min(v.clip_batch_size, len(train))),
                    loader(val, False, v.clip_batch_size), ckpt_path=last_checkpoint(run_dir))
    return module


def ensure_clip_lite(cfg: Config, artifacts_dir: str | Path | None = None, data_dir: str | Path | None = None,
                     progress: bool = False) -> Path:
    """Load-or-train the CLIP-lite artifact of ``cfg`` (keyed by ``cfg.vision`` + ``cfg.data``)."""
    from transformers.utils import logging as hf_logging

    from ..data import ensure_dataset, load_tokenizer
    from .retrieval import evaluate_retrieval

    def make(path: Path) -> dict:
        data = ensure_dataset(data_dir or data_dir_for(cfg, artifacts_dir), cfg.data, progress=progress)
        module = train_clip_lite(cfg, data, path / "run", progress=progress)
        clip = module.clip.cpu().float().eval()
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        clip.save_pretrained(path / "clip")
        clip.vision_model.save_pretrained(path / "vision")
        if bars:  # restore, never switch on bars a caller (a smoke notebook) switched off
            hf_logging.enable_progress_bar()
        shutil.rmtree(path / "run" / "checkpoints", ignore_errors=True)  # resume-only; safetensors stay
        test = load_captioned_images(data, "test", cfg.vision.image_size)
        return {"retrieval": evaluate_retrieval(clip, load_tokenizer(cfg.llm.tokenizer_path), test, cfg)}

    return load_or_make(cfg, NAME, SECTIONS, make, artifacts_dir)


def clip_lite_path(cfg: Config, artifacts_dir: str | Path | None = None) -> Path:
    """The complete CLIP-lite artifact of ``cfg``, refused if missing or made for another preset."""
    path = artifact_dir(cfg, NAME, SECTIONS, artifacts_dir)
    read_meta(path, name=NAME, preset=cfg.preset, make_hint=MAKE_HINT)
    return path


def load_clip_lite(cfg: Config, artifacts_dir: str | Path | None = None) -> CLIPModel:
    """The whole CLIP-lite (both towers), in eval mode, for zero-shot retrieval."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return CLIPModel.from_pretrained(str(clip_lite_path(cfg, artifacts_dir) / "clip"), local_files_only=True).eval()
    finally:
        if bars:
            hf_logging.enable_progress_bar()


def load_vision_encoder(cfg: Config, artifacts_dir: str | Path | None = None) -> HVPEncoder:
    """The frozen HVP encoder: from ``cfg.vision.pretrained_path`` when set (m3 / l14: the real
    CLIP ViT-L/14-336), else the CLIP-lite artifact of this config."""
    if cfg.vision.pretrained_path:
        return HVPEncoder.from_pretrained(cfg.vision.pretrained_path, cfg.vision)
    return HVPEncoder.from_pretrained(clip_lite_path(cfg, artifacts_dir) / "vision", cfg.vision)
