"""Constrained image decoding: every generation decodes to an image (docs/PAPERS.md sections 1, 6).

The released HealthGPT code lets the LLM write free text and *scrapes digits* out of it to
rebuild the 1024 VQ indices, so one stray digit (or a missing one) breaks the image. Here a
``LogitsProcessor`` masks the logits instead: after ``<start_index>`` only ``<idx_*>`` tokens
are allowed for exactly h*w steps, then only ``<end_index>``, then only ``<|end|>``. Even an
untrained model therefore produces a decodable grid of exactly h*w codes.
"""
from __future__ import annotations

import torch
from transformers import LogitsProcessor

from ..data.text_tokenizer import ImageTokenIds
from ..errors import InputError


class ImageTokenConstraint(LogitsProcessor):
    """Logits mask for image generation, applied per row of the batch.

    Counts the tokens after the last ``<start_index>`` in each row (k): k < n_tokens -> only
    ``<idx_*>``; k == n_tokens -> only ``<end_index>``; after that -> only ``end_turn``. Rows
    without ``<start_index>`` are left alone (ordinary text generation)."""

    def __init__(self, block: ImageTokenIds, n_tokens: int, end_turn_id: int):
        self.block, self.n_tokens, self.end_turn = block, n_tokens, end_turn_id

    def allowed_mask(self, input_ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """(B, V) bool: which tokens may come next in each row."""
        B, T = input_ids.shape
        is_start = input_ids == self.block.start  # (B, T)
        has_start = is_start.any(1)  # (B,)
        last_start = T - 1 - is_start.flip(1).int().argmax(1)  # (B,) position of the last <start_index>
        k = T - 1 - last_start  # (B,) tokens generated since it
        allowed = torch.ones(B, vocab_size, dtype=torch.bool, device=input_ids.device)
        idx = slice(self.block.first_idx, self.block.first_idx + self.block.n_codes)
        for row in torch.nonzero(has_start).flatten().tolist():
            allowed[row] = False
            if k[row] < self.n_tokens:
                allowed[row, idx] = True
            elif k[row] == self.n_tokens:
                allowed[row, self.block.end] = True
            else:
                allowed[row, self.end_turn] = True
        return allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        allowed = self.allowed_mask(input_ids, scores.shape[-1])  # (B, V)
        return scores.masked_fill(~allowed, float("-inf"))


def codes_from_tokens(generated: torch.Tensor, block: ImageTokenIds, grid: int) -> torch.Tensor:
    """The h*w tokens after ``<start_index>`` -> a (B, grid, grid) grid of VQ codes.

    ``generated`` (B, T) holds the tokens produced after a prompt that ended with
    ``<start_index>``; with the constraint above the first grid*grid of them are ``<idx_*>``."""
    n = grid * grid
    tokens = generated[:, :n]  # (B, h*w)
    codes = tokens - block.first_idx
    if tokens.shape[1] < n:
        raise InputError(f"the generation holds {tokens.shape[1]} tokens, fewer than the {n} image tokens of a "
                         f"{grid}x{grid} grid; use ImageTokenConstraint so every generation decodes")
    if (codes < 0).any() or (codes >= block.n_codes).any():
        raise InputError(f"the first {n} generated tokens are not all <idx_*> image tokens; "
                         "use ImageTokenConstraint so every generation decodes")
    return codes.reshape(-1, grid, grid)
