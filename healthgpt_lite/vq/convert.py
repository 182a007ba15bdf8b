"""Load a taming-transformers VQGAN checkpoint (the real HealthGPT tokenizer: OpenImages f8-8192,
Gumbel) into :class:`~healthgpt_lite.vq.vqgan.VQGAN` (docs/PAPERS.md section 1).

taming saves a Lightning checkpoint ``{"state_dict": {...}, ...}``; next to the model it holds the
training loss (``loss.discriminator.*``, ``loss.perceptual_loss.*``), which is dropped here. The
model keys must match exactly: a missing or unexpected key is an :class:`InputError` naming them
(the released HealthGPT code loads with ``strict=False`` and only warns; docs/PAPERS.md section 6).

Files are read without pickle code execution: ``.safetensors``, or ``.ckpt``/``.pt`` through
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..artifacts import read_safetensors, read_torch_weights
from ..config import VQConfig
from ..errors import InputError
from .vqgan import VQGAN

DROPPED_PREFIXES = ("loss.",)  # taming's LPIPS + discriminator: training only


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The model tensors of a taming checkpoint (``loss.*`` dropped)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: VQGAN checkpoint not found (vq.pretrained_path)")
    state = read_safetensors(path) if path.suffix == ".safetensors" else read_torch_weights(path, key="state_dict")
    return {k: v for k, v in state.items() if not k.startswith(DROPPED_PREFIXES)}


def load_taming_checkpoint(path: str | Path, cfg: VQConfig) -> VQGAN:
    """A :class:`VQGAN` shaped by ``cfg`` with the checkpoint's weights; strict about keys and shapes."""
    state = read_checkpoint(path)
    model = VQGAN(cfg)
    statistics = {f"quantize.{name}" for name in model.quantize.STATISTICS}  # ours only, not taming's
    expected = {k: v for k, v in model.state_dict().items() if k not in statistics}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected) - statistics)
    if missing or unexpected:
        raise InputError(f"{path}: checkpoint does not match vq config ({_describe(cfg)})"
                         f"{_keys('missing', missing)}{_keys('unexpected', unexpected)}{_quantizer_hint(state, cfg)}")
    wrong = [f"{k} {tuple(state[k].shape)} (config expects {tuple(v.shape)})"
             for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        raise InputError(f"{path}: tensor shapes do not match vq config ({_describe(cfg)}): {'; '.join(wrong[:5])}"
                         + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""))
    model.load_state_dict({k: state[k] for k in expected}, strict=False)
    if hasattr(model.quantize, "reset_statistics"):
        model.quantize.reset_statistics()  # a loaded codebook must not be re-initialised from data
    return model


def _describe(cfg: VQConfig) -> str:
    return (f"ch={cfg.ch}, ch_mult={list(cfg.ch_mult)}, num_res_blocks={cfg.num_res_blocks}, "
            f"attn_resolutions={list(cfg.attn_resolutions)}, n_embed={cfg.n_embed}, quantizer={cfg.quantizer!r}")


def _keys(kind: str, keys: list[str], shown: int = 8) -> str:
    if not keys:
        return ""
    more = f" ... and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"; {len(keys)} {kind} key(s): {', '.join(keys[:shown])}{more}"


def _quantizer_hint(state: dict, cfg: VQConfig) -> str:
    if "quantize.proj.weight" in state and cfg.quantizer != "gumbel":
        return ". The checkpoint has a Gumbel quantizer: set vq.quantizer=gumbel (preset m3 does)"
    if "quantize.embedding.weight" in state and cfg.quantizer == "gumbel":
        return ". The checkpoint has a nearest-code quantizer: set vq.quantizer=vq"
    return ""
