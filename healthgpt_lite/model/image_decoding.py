"""Writing an image token by token: greedy, or sampled with a temperature and top-k.

After a prompt that ends with ``<start_index>`` the model writes exactly h*w codes
(paper, "Unified Autoregressive Generation"). This loop keeps the attention keys and values of everything seen so far
(a KV cache), so each new code costs one token's forward pass, and at every step it only ever
looks at the logits of the ``<idx_*>`` tokens: the same guarantee as
:class:`~healthgpt_lite.model.decoding.ImageTokenConstraint` (every output decodes to an
image), without a mask over the whole vocabulary. The grid position of the next code is added
to each new input exactly as in training (:mod:`.image_positions`).

Greedy decoding picks the most likely code at every cell. That is right for a task with one
answer (reconstruction, CT->MRI), and wrong for a one-to-many task: for report->X-ray the most
likely code in every cell is "healthy tissue", so a greedy image of "two lesions in the left
lung" shows none. Sampling (``temperature > 0``, optionally from the ``top_k`` most likely codes)
draws an image from the model's distribution instead.
"""
from __future__ import annotations

import torch


def pick_codes(logits: torch.Tensor, temperature: float = 0.0, top_k: int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, K) code logits -> (B,) codes: argmax when ``temperature == 0``, else a sample."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1) the k-th largest logit
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)  # (B, K)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)


@torch.no_grad()
def decode_image(model, embeds: torch.Tensor, attention_mask: torch.Tensor, temperature: float = 0.0,
                 top_k: int | None = None, generator: torch.Generator | None = None,
                 guidance: float = 0.0) -> torch.Tensor:
    """Codes (B, h*w) written after left-padded prompts that end with ``<start_index>``.

    ``model`` is a :class:`~healthgpt_lite.model.healthgpt_model.HealthGPTModel` in its generation task;
    ``embeds`` (B, T, d) are its input embeddings of the prompts (visual tokens spliced, the
    position of code 0 added), ``attention_mask`` (B, T) is 0 on the left padding.

    ``guidance > 0``: the second half of the batch holds *guide* prompts (B/2 each), and every
    code is picked from ``cond + guidance * (cond - guide)`` and written to both halves: what
    makes the prompt differ from its guide (a report's lesions, against a lesion-free report) is
    amplified, as classifier-free guidance does in image generators; returns (B/2, h*w)."""
    llm, block = model.llm, model.block
    n, half = model.n_image_tokens, embeds.shape[0] // 2
    codes = torch.empty(embeds.shape[0], n, dtype=torch.long, device=embeds.device)  # (B, h*w)
    mask = attention_mask.clone()
    positions = (mask.cumsum(1) - 1).clamp(min=0)  # (B, T) RoPE positions that skip the padding
    out = llm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    for j in range(n):
        logits = out.logits[:, -1, block.first_idx:block.first_idx + block.n_codes]  # (B, K) only <idx_*>
        if guidance > 0:
            cond, guide = logits[:half], logits[half:]
            picked = pick_codes(cond + guidance * (cond - guide), temperature, top_k, generator)  # (B/2,)
            codes[:, j] = torch.cat([picked, picked])
        else:
            codes[:, j] = pick_codes(logits, temperature, top_k, generator)
        if j == n - 1:
            break
        step = model.code_embeddings(codes[:, j], j + 1)[:, None]  # (B, 1, d) code j, predicting code j+1
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)  # (B, T + j + 1)
        positions = positions[:, -1:] + 1  # (B, 1)
        out = llm(inputs_embeds=step, attention_mask=mask, position_ids=positions, cache=out.cache,
                  use_cache=True)
    return codes[:half] if guidance > 0 else codes
