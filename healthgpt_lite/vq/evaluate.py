"""Measure a tokenizer on a split: the numbers the targets are checked against.

    python -m healthgpt_lite vq --profile cpu --split test      (vq/measure.py)

reports tokens per image, PSNR / SSIM (overall and per modality), codebook usage and perplexity.
Tune on ``val``; report ``test``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .data import load_split_images
from .metrics import code_counts, codebook_stats, image_metrics
from .tokenizer import VQTokenizer


def evaluate_vq(tokenizer: VQTokenizer, data_dir: str | Path, split: str = "test", batch_size: int = 64) -> dict:
    """Reconstruction quality and codebook use of ``tokenizer`` on every image of ``split``."""
    images, modalities = load_split_images(data_dir, split, tokenizer.resolution)  # (N, 1, R, R)
    psnr, ssim, counts = [], [], torch.zeros(tokenizer.n_codes, dtype=torch.long)
    for chunk in images.split(batch_size):
        indices = tokenizer.encode(chunk)  # (b, h, w)
        p, s = image_metrics(tokenizer.decode(indices), chunk.expand(-1, 3, -1, -1))
        psnr.append(p), ssim.append(s)
        counts += code_counts(indices, tokenizer.n_codes)
    psnr, ssim = torch.cat(psnr), torch.cat(ssim)
    result = {"split": split, "images": len(images), "tokens_per_image": tokenizer.grid_size ** 2,
              "psnr": round(psnr.mean().item(), 2), "ssim": round(ssim.mean().item(), 4),
              **{k: round(v, 4) for k, v in codebook_stats(counts).items()}}
    for m in sorted(set(modalities)):
        pick = torch.tensor([x == m for x in modalities])
        result[f"psnr_{m}"] = round(psnr[pick].mean().item(), 2)
        result[f"ssim_{m}"] = round(ssim[pick].mean().item(), 4)
    return result
