"""Checkers of exercise 05 (constrained image decoding, docs/PAPERS.md sections 1 and 6).

q1 ``allowed_next_tokens(input_ids, vocab_size, block, n_tokens, end_turn) -> (B, V) bool``:
   which tokens may come next in each row, checked against
   ``model/decoding.py:ImageTokenConstraint.allowed_mask`` on many random batches (a small
   made-up vocabulary, and the project's real tokenizer once).
"""
from __future__ import annotations

import random

import torch

from ..data.text_tokenizer import ImageTokenIds
from ..model.decoding import ImageTokenConstraint
from .checking import Case, Question

EXERCISE = "05_constrained_decoding"
# A small vocabulary for the random cases: text 0..19 (id 5 plays <|end|>), <start_index> 20,
# <idx_0..15> 21..36, <end_index> 37, <pixel_newline> 38, one more text id 39.
SMALL_BLOCK, SMALL_VOCAB, SMALL_END_TURN, SMALL_N_TOKENS = ImageTokenIds(20, 37, 21, 16), 40, 5, 4


def reference_allowed_next_tokens(input_ids: torch.Tensor, vocab_size: int, block: ImageTokenIds, n_tokens: int,
                                  end_turn: int) -> torch.Tensor:
    return ImageTokenConstraint(block, n_tokens, end_turn).allowed_mask(input_ids, vocab_size)


# ----------------------------------------------------------------------------- cases
def random_row(rng: random.Random, block: ImageTokenIds, n_tokens: int, end_turn: int) -> list[int]:
    """Text, then zero, one or two image blocks, the last one cut at a random point: every state
    a decoder meets (writing codes, due to close the image, after <end_index>)."""
    text_ids = [i for i in range(block.start) if i != end_turn]
    row = [rng.choice(text_ids) for _ in range(rng.randint(1, 3))]
    n_images = rng.choice([0, 1, 1, 1, 2])
    for i in range(n_images):
        complete = i < n_images - 1
        written = n_tokens + 2 if complete else rng.randint(0, n_tokens + 2)  # codes, then <end_index>, <|end|>
        row += [block.start] + [block.first_idx + rng.randrange(block.n_codes) for _ in range(min(written, n_tokens))]
        row += [block.end, end_turn][:max(0, written - n_tokens)]
        if complete:
            row.append(rng.choice(text_ids))  # some text between the two images
    return row


def _batch_case(seed: int) -> Case:
    rng = random.Random(seed)
    rows = [random_row(rng, SMALL_BLOCK, SMALL_N_TOKENS, SMALL_END_TURN) for _ in range(rng.randint(1, 6))]
    width = max(len(r) for r in rows)
    ids = [[0] * (width - len(r)) + r for r in rows]  # left-padded with a text id, as batched generation does
    return Case(f"a random batch of {len(ids)} sequences of length {width} (small vocabulary: "
                f"<start_index>={SMALL_BLOCK.start}, <idx_*>={SMALL_BLOCK.first_idx}..{SMALL_BLOCK.first_idx + 15}, "
                f"<end_index>={SMALL_BLOCK.end}, end_turn={SMALL_END_TURN}, n_tokens={SMALL_N_TOKENS})",
                lambda: (torch.tensor(ids), SMALL_VOCAB, SMALL_BLOCK, SMALL_N_TOKENS, SMALL_END_TURN))


def _real_tokenizer_case() -> Case:
    from ..data.text_tokenizer import image_token_ids, load_tokenizer

    tok = load_tokenizer()
    block, end_turn, n = image_token_ids(tok), tok.convert_tokens_to_ids("<|end|>"), 256
    prompt = tok("<|user|>\nGenerate an X-ray image.<|end|>\n<|assistant|>\n")["input_ids"] + [block.start]
    rows = [prompt + [block.first_idx + k for k in range(j)] for j in (0, 100, n)]
    width = max(len(r) for r in rows)
    ids = [[tok.pad_token_id] * (width - len(r)) + r for r in rows]
    return Case(f"the project's tokenizer ({len(tok)} tokens) and a 16x16 image (n_tokens=256), "
                "with 0, 100 and 256 image tokens written", lambda: (torch.tensor(ids), len(tok), block, n, end_turn))


def cases() -> list[Case]:
    return [_batch_case(seed) for seed in range(60)] + [_real_tokenizer_case()]


# ----------------------------------------------------------------------------- explaining a wrong mask
def observe(args: tuple, mask):
    return mask, args  # compare needs the block and the sequences to say *where* a mask is wrong


def compare_masks(expected: tuple, got: tuple) -> str | None:
    (want, (input_ids, vocab_size, block, n_tokens, end_turn)), (have, _) = expected, got
    if not isinstance(have, torch.Tensor):
        return f"return a torch.Tensor, got {type(have).__name__}"
    if have.shape != want.shape:
        return (f"shape {tuple(have.shape)} but expected one row per sequence and one column per vocabulary "
                f"entry, {tuple(want.shape)}")
    if have.dtype != torch.bool:
        return f"dtype {have.dtype}: return a bool mask (True = may come next)"
    starts = (input_ids == block.start).sum(1)  # (B,)
    wrong = sorted((have != want).any(1).nonzero().flatten().tolist(), key=lambda r: (int(starts[r]) > 1, r))
    if not wrong:
        return None
    r = wrong[0]
    if starts[r] == 0:
        return f"row {r} has no <start_index>: ordinary text generation must allow every token"
    if starts[r] > 1:
        first = int((input_ids[r] == block.start).nonzero()[0])
        k_first = input_ids.shape[1] - 1 - first
        if torch.equal(have[r], _row_mask(k_first, vocab_size, block, n_tokens, end_turn)):
            return f"row {r} holds two <start_index>: count the tokens after the last one, not the first"
    idx = torch.zeros(vocab_size, dtype=torch.bool)
    idx[block.first_idx:block.first_idx + block.n_codes] = True
    other = ~idx  # text, <start_index>, <pixel_newline>: never allowed once an image has started
    other[[block.end, end_turn]] = False
    if bool(have[r, other].any()):
        return f"in row {r} the mask still allows text tokens after <start_index>"
    if bool(want[r, idx].all()):  # the image is being written
        if not bool(have[r, idx].all()):
            return f"in row {r} some <idx_*> tokens are forbidden while the image is being written"
        return f"in row {r} the mask allows closing the image before all n_tokens image tokens are written"
    if bool(have[r, idx].any()):
        return (f"in row {r} all n_tokens image tokens are written, yet the mask still allows <idx_*>: "
                "count the tokens after <start_index>")
    closing = "<end_index>" if bool(want[r, block.end]) else "end_turn (after <end_index>)"
    return f"in row {r} exactly one token may come next, {closing}, and the mask does not allow just that one"


def _row_mask(k: int, vocab_size: int, block: ImageTokenIds, n_tokens: int, end_turn: int) -> torch.Tensor:
    """The allowed tokens k tokens after <start_index> (to recognise a mask that counts from elsewhere)."""
    row = torch.zeros(vocab_size, dtype=torch.bool)
    if k < n_tokens:
        row[block.first_idx:block.first_idx + block.n_codes] = True
    else:
        row[block.end if k == n_tokens else end_turn] = True
    return row


q1 = Question(EXERCISE, "q1", "allowed_next_tokens", reference_allowed_next_tokens, cases, compare_masks,
              observe=observe, placeholder=None, forbidden=("healthgpt_lite.model.decoding",),
              hints=("Everything depends on one number per row: how many tokens have been written since the image "
                     "began. Which <start_index> counts when a row holds two images, and what may follow each count?",
                     "Find the last <start_index> of each row (a row without one is unconstrained), count the tokens "
                     "after it, and allow exactly one set of columns for that count: the codes while the image is "
                     "unfinished, then the closing token, then the end of the turn."))
QUESTIONS = (q1,)
