"""The VQ tokenizer as a stage artifact: train it once per config, load it everywhere.

    ensure_vq(cfg, artifacts_dir)         -> ARTIFACTS_DIR/vq-<hash of cfg.vq + cfg.data>/
                                             vq.safetensors, meta.json, logs/metrics.csv
    load_vq_tokenizer(cfg, artifacts_dir) -> a frozen VQTokenizer
                                             (from cfg.vq.pretrained_path when set: a real taming checkpoint)
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..artifacts import artifact_dir, atomic_save_safetensors, data_dir_for, load_or_make, read_meta, read_safetensors
from ..config import Config
from ..errors import InputError
from .tokenizer import VQTokenizer
from .vqgan import VQGAN

NAME, SECTIONS, WEIGHTS = "vq", ("vq", "data"), "vq.safetensors"
MAKE_HINT = "run notebooks/03_vq_tokenizer.ipynb or `python -m healthgpt_lite reproduce` with this preset and profile"


def ensure_vq(cfg: Config, artifacts_dir: str | Path | None = None, data_dir: str | Path | None = None,
              progress: bool = False) -> Path:
    """Load-or-train the tokenizer for ``cfg``; returns the artifact folder (its training curves
    are ``read_metrics(path)``). A real checkpoint (``cfg.vq.pretrained_path``) is never trained."""
    if cfg.vq.pretrained_path:
        raise InputError(f"vq.pretrained_path={cfg.vq.pretrained_path!r} is set: the tokenizer is loaded, not "
                         "trained; use load_vq_tokenizer(cfg)")

    def make(path: Path) -> dict:
        from ..data import ensure_dataset
        from .module import train_vq

        data = ensure_dataset(data_dir or data_dir_for(cfg, artifacts_dir), cfg.data, progress=progress)
        module, info = train_vq(cfg, path, data, progress=progress)
        atomic_save_safetensors(module.model.state_dict(), path / WEIGHTS)
        shutil.rmtree(path / "checkpoints", ignore_errors=True)  # resume state (pickle): not part of the artifact
        return info

    return load_or_make(cfg, NAME, SECTIONS, make, artifacts_dir)


def load_vq_tokenizer(cfg: Config, artifacts_dir: str | Path | None = None) -> VQTokenizer:
    """The frozen tokenizer for ``cfg``: from ``cfg.vq.pretrained_path`` if set (taming layout,
    ``vq/convert.py``), else the artifact ``ensure_vq`` trained; refuses a missing artifact or one
    made for another preset, saying how to make it."""
    if cfg.vq.pretrained_path:
        from .convert import load_taming_checkpoint

        return VQTokenizer(load_taming_checkpoint(cfg.vq.pretrained_path, cfg.vq))
    path = artifact_dir(cfg, NAME, SECTIONS, artifacts_dir)
    read_meta(path, NAME, preset=cfg.preset, make_hint=MAKE_HINT)
    model = VQGAN(cfg.vq)
    try:
        model.load_state_dict(read_safetensors(path / WEIGHTS))  # InputError if truncated
    except (OSError, RuntimeError) as e:
        raise InputError(f"{path / WEIGHTS}: cannot load the trained tokenizer ({str(e).splitlines()[0]}); "
                         f"delete {path} and {MAKE_HINT}") from None
    return VQTokenizer(model)
