"""Measure the VQ tokenizer against its targets:

    python -m healthgpt_lite.vq --profile cpu --split test

Trains the tokenizer first when its artifact is missing (load-or-train; the training wall time is
recorded in the artifact's meta.json) and prints one JSON line: tokens per image, PSNR / SSIM
(overall and per modality), codebook usage and perplexity, training and evaluation seconds.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from ..artifacts import artifact_dir, data_dir_for, read_meta
from ..config import build_config
from ..data import ensure_dataset
from .artifact import NAME, SECTIONS, ensure_vq, load_vq_tokenizer
from .evaluate import evaluate_vq


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m healthgpt_lite.vq", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--artifacts", default=None, help="artifacts folder (default: ./artifacts)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (the targets are for 2 cores)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = build_config(args.preset, args.profile, args.overrides, seed=args.seed)
    data_dir = ensure_dataset(data_dir_for(cfg, args.artifacts), cfg.data)
    result = {"preset": cfg.preset, "profile": cfg.profile}
    if not cfg.vq.pretrained_path:
        path = ensure_vq(cfg, args.artifacts, data_dir, progress=True)
        result["train_seconds"] = read_meta(path, NAME)["train_seconds"]
        result["artifact"] = str(artifact_dir(cfg, NAME, SECTIONS, args.artifacts))
    start = time.time()
    result.update(evaluate_vq(load_vq_tokenizer(cfg, args.artifacts), data_dir, args.split))
    result["eval_seconds"] = round(time.time() - start, 1)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
