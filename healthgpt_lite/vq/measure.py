"""Measure the VQ tokenizer against its targets:

    python -m healthgpt_lite vq --profile cpu --split test

Trains the tokenizer first when its artifact is missing (load-or-train; the training wall time is
recorded in the artifact's meta.json) and prints one JSON line: tokens per image, PSNR / SSIM
(overall and per modality), codebook usage and perplexity, training and evaluation seconds.
"""
from __future__ import annotations

import time

from ..artifacts import artifact_dir, data_dir_for, read_meta
from ..config import Config
from ..data import ensure_dataset
from .artifact import NAME, SECTIONS, ensure_vq, load_vq_tokenizer
from .evaluate import evaluate_vq


def measure_vq(cfg: Config, artifacts_dir=None, split: str = "test") -> dict:
    """Train the VQ tokenizer if its artifact is missing, then score it on ``split``: one dict."""
    data_dir = ensure_dataset(data_dir_for(cfg, artifacts_dir), cfg.data)
    result = {"preset": cfg.preset, "profile": cfg.profile}
    if not cfg.vq.pretrained_path:
        path = ensure_vq(cfg, artifacts_dir, data_dir, progress=True)
        result["train_seconds"] = read_meta(path, NAME)["train_seconds"]
        result["artifact"] = str(artifact_dir(cfg, NAME, SECTIONS, artifacts_dir))
    start = time.time()
    result.update(evaluate_vq(load_vq_tokenizer(cfg, artifacts_dir), data_dir, split))
    result["eval_seconds"] = round(time.time() - start, 1)
    return result
