"""The language model: a transformers ``Phi3ForCausalLM`` (docs/PAPERS.md section 1).

* ``tiny`` / ``small``: built from a config made of ``cfg.llm`` (random init; the tiny preset
  then learns language from the corpus, see ``training/``), vocabulary = the text part of the
  project tokenizer.
* ``m3`` / ``l14``: ``from_pretrained`` of a *local* Phi-3-mini or phi-4 folder (both are the
  Phi3 architecture); nothing is downloaded, and ``trust_remote_code`` is never used.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import Phi3Config, Phi3ForCausalLM

from ..config import LLMConfig
from ..errors import InputError


def phi3_config(cfg: LLMConfig, vocab_size: int, pad_token_id: int = 0) -> Phi3Config:
    return Phi3Config(
        vocab_size=vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings, rope_theta=cfg.rope_theta,
        pad_token_id=pad_token_id, bos_token_id=None, eos_token_id=None, tie_word_embeddings=False,
        attention_dropout=0.0, resid_pdrop=0.0, embd_pdrop=0.0)


def build_llm(cfg: LLMConfig, vocab_size: int, pad_token_id: int = 0, dtype: torch.dtype | None = None) -> Phi3ForCausalLM:
    """A Phi-3-architecture causal LM: from ``cfg.pretrained_path`` if set, else random from ``cfg``."""
    if cfg.pretrained_path:
        return load_pretrained_llm(cfg, dtype)
    model = Phi3ForCausalLM(phi3_config(cfg, vocab_size, pad_token_id))
    return model.to(dtype) if dtype else model


def load_pretrained_llm(cfg: LLMConfig, dtype: torch.dtype | None = None) -> Phi3ForCausalLM:
    path = Path(cfg.pretrained_path)
    if not (path / "config.json").is_file():
        raise InputError(f"llm.pretrained_path={path}: no config.json there (expected a local Hugging Face folder "
                         "of Phi-3-mini-4k-instruct or phi-4)")
    config = Phi3Config.from_pretrained(str(path), local_files_only=True)
    if config.model_type != "phi3":
        raise InputError(f"{path}: model_type {config.model_type!r}; HealthGPT uses the Phi3 architecture")
    expected = {"hidden_size": cfg.hidden_size, "num_hidden_layers": cfg.num_layers,
                "num_attention_heads": cfg.num_heads, "num_key_value_heads": cfg.num_kv_heads}
    wrong = {k: (getattr(config, k), v) for k, v in expected.items() if getattr(config, k) != v}
    if wrong:
        detail = ", ".join(f"{k}: checkpoint {a} vs preset {b}" for k, (a, b) in wrong.items())
        raise InputError(f"{path}: the checkpoint's shapes do not match this preset ({detail})")
    return Phi3ForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=dtype or torch.float32)


@contextmanager
def no_progress_bars():
    """Hide transformers' "Loading weights" / "Writing model shards" bars, then restore what the
    caller had (never switch on bars a smoke notebook switched off)."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
