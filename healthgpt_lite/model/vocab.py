"""The unified vocabulary: text tokens + HealthGPT's image tokens (docs/PAPERS.md section 1).

``<start_index>``, ``<idx_0>`` ... ``<idx_{N-1}>``, ``<end_index>`` (+ an unused
``<pixel_newline>``) are new rows of the LLM's embedding matrix *and* of its output head. The
new rows start at the **mean of the old rows** (HealthGPT's choice, as LLaVA's
``smart_tokenizer_and_embedding_resize``): a new word begins as an "average" word instead of a
random vector whose scale has nothing to do with the trained ones.

Phi-3 detail: its embedding has 32064 rows for a 32011-token tokenizer; resizing to
len(tokenizer) = 40206 makes ids 32011..40205 the new tokens, and those rows (some of which
were Phi-3's unused padding rows) are all set to the mean of rows 0..32010.

The pitfall (docs/PAPERS.md section 3): all new rows start *identical*, so every image token gets
the same logit until the rows learn; which stage lets them learn is a training decision.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError


@torch.no_grad()
def extend_vocabulary(llm: nn.Module, new_size: int, first_new_id: int) -> None:
    """Resize embeddings and head to ``new_size`` rows; rows ``first_new_id..new_size-1`` are
    the new tokens, each set to the mean of rows ``0..first_new_id-1``."""
    if not 0 < first_new_id < new_size:
        raise ConfigError(f"new tokens must start inside the vocabulary: first_new_id={first_new_id}, size={new_size}")
    old_in = llm.get_input_embeddings().weight[:first_new_id].clone()  # (V_text, d)
    head = llm.get_output_embeddings()
    old_head = head.weight[:first_new_id].clone() if head is not None else None
    llm.resize_token_embeddings(new_size, mean_resizing=False)
    emb = llm.get_input_embeddings().weight
    emb[first_new_id:] = old_in.mean(0)  # (d,) broadcast to every new row
    out = llm.get_output_embeddings()
    if old_head is not None and out.weight is not emb:
        out.weight[first_new_id:] = old_head.mean(0)
    llm.config.vocab_size = new_size
