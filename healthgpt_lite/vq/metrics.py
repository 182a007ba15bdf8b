"""How good is a tokenizer? Reconstruction quality (PSNR, SSIM: the generation metrics of
docs/PAPERS.md section 4) and codebook health (how many codes are used, perplexity)."""
from __future__ import annotations

import math

import torch

from ..eval.metrics import psnr_and_ssim


def image_metrics(reconstruction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image PSNR (dB) and SSIM of images in [0, 1], both ``(B, C, H, W)`` -> ``(B,)``, ``(B,)``."""
    return psnr_and_ssim(reconstruction.float().clamp(0, 1), target.float())  # in colour, unlike image_scores


def code_counts(indices: torch.Tensor, n_codes: int) -> torch.Tensor:
    """How often each code occurs in ``indices`` (any shape) -> ``(n_codes,)``."""
    return torch.bincount(indices.flatten().cpu(), minlength=n_codes)


def codebook_stats(counts: torch.Tensor) -> dict[str, float]:
    """``usage``: the fraction of codes used at least once; ``perplexity``: exp(entropy) of the
    code distribution, the 'effective number of codes' (n_codes if all are equally used)."""
    p = counts.double() / counts.sum().clamp(min=1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    return {"usage": (counts > 0).double().mean().item(), "perplexity": math.exp(entropy)}
