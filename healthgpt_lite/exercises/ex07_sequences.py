"""Checkers of exercise 07 (multimodal sequences, docs/PAPERS.md section 1): what the language model
reads and what it is trained to predict.

q1 ``encode_example(tokenizer, user, n_visual, answer=None, image_codes=None, generation=False)
   -> {"input_ids": (T,), "labels": (T,)}``: the chat template with ``<image>`` expanded to
   ``n_visual`` slots and response-only labels, checked against
   ``model/multimodal.py:encode_example`` (without its truncation) on the project tokenizer:
   questions, reports, text-only turns, both generation kinds and inference prompts.
q2 ``splice_visual_tokens(inputs_embeds, input_ids, visual, image_token_id) -> (B, T, d)``:
   the projected visual tokens put at the ``<image>`` slots, checked against
   ``model/multimodal.py:splice_visual_tokens``: values, dtype, the caller's tensor left as it
   was, gradients to both inputs (the adapter learns through the splice), a batch whose middle
   example has no image, and a count mismatch that must be refused.
"""
from __future__ import annotations

from functools import lru_cache

import torch

from ..config import build_config
from ..data.text_tokenizer import image_token_ids, tokenizer_for
from ..model.multimodal import IGNORE_INDEX, SequenceLayout, encode_example, splice_visual_tokens
from .checking import Case, Question

EXERCISE = "07_sequences"
NO_LIMIT = 10**6  # the student's version has no truncation


@lru_cache(maxsize=1)
def project_tokenizer():
    """The tiny preset's tokenizer (the committed one, with its image tokens)."""
    return tokenizer_for(build_config("tiny", "smoke"))


# ----------------------------------------------------------------------------- q1
def reference_encode_example(tokenizer, user: str, n_visual: int, answer: str | None = None,
                             image_codes: torch.Tensor | None = None, generation: bool = False) -> dict:
    return encode_example(tokenizer, user, n_visual, NO_LIMIT, answer=answer, image_codes=image_codes,
                          generation=generation)


def _codes(seed: int, side: int, n_codes: int) -> torch.Tensor:
    return torch.randint(0, n_codes, (side, side), generator=torch.Generator().manual_seed(seed))  # (h, w)


def example_cases() -> list[Case]:
    n_codes = image_token_ids(project_tokenizer()).n_codes
    specs = [  # (description, user, n_visual, answer, codes seed, generation)
        ("a closed question about an image, 4 visual tokens", "<image>\nIs there a lesion in the liver?", 4, "No.",
         None, False),
        ("a report, 64 visual tokens (the tiny preset)", "<image>\nDescribe the findings of this CT image.", 64,
         "Coronal CT of the chest and upper abdomen. One lesion: a small 12 mm lesion in the liver.", None, False),
        ("a question in Chinese", "<image>\n这张图像有病灶吗？", 8, "有。", None, False),
        ("text before and after <image>", "Look at this scan: <image> which organ holds the lesion?", 4, "the liver",
         None, False),
        ("a text-only turn (no <image>), with n_visual=4 that must not be used", "What does MRI stand for?", 4,
         "Magnetic resonance imaging.", None, False),
        ("CT -> MRI: an image in, 4x4 image codes out", "<image>\nConvert this CT image into an MRI image.", 4, None,
         1, True),
        ("report -> image: no image in, 8x8 codes out", "Generate a coronal MRI image: two lesions in the left lung.",
         4, None, 2, True),
        ("an inference prompt for a question (no answer yet)", "<image>\nHow many lesions are there?", 4, None, None,
         False),
        ("an inference prompt for generation (no codes yet)", "<image>\nReconstruct this image.", 4, None, None, True),
    ]

    def make(user, n_visual, answer, seed, generation):
        codes = None if seed is None else _codes(seed, 4 if seed == 1 else 8, n_codes)
        return project_tokenizer(), user, n_visual, answer, codes, generation

    return [Case(what, lambda u=u, n=n, a=a, s=s, g=g: make(u, n, a, s, g)) for what, u, n, a, s, g in specs]


def observe_with_inputs(args: tuple, returned):
    return returned, args


def _tokens(tokenizer, ids) -> list[str]:
    return tokenizer.convert_ids_to_tokens([int(i) for i in ids])


def compare_example(expected: tuple, got: tuple) -> str | None:
    (want, (tok, user, n_visual, answer, codes, generation)), (have, _) = expected, got
    if not isinstance(have, dict) or not {"input_ids", "labels"} <= set(have):
        return 'return a dict with "input_ids" and "labels"'
    for key in ("input_ids", "labels"):
        t = have[key]
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.ndim != 1:
            return f'{key}: return a 1-D torch.long tensor (T,), got {type(t).__name__} {getattr(t, "dtype", "")}'
    ids, labels = have["input_ids"], have["labels"]
    if (problem := _ids_problem(want["input_ids"], ids, tok, user, n_visual, codes, generation)):
        return problem
    return _labels_problem(want["labels"], labels, ids, tok, generation)


def _ids_problem(want: torch.Tensor, ids: torch.Tensor, tok, user: str, n_visual: int, codes, generation: bool):
    if torch.equal(ids, want):
        return None
    layout, block = SequenceLayout.from_tokenizer(tok), image_token_ids(tok)
    expected_slots = n_visual if "<image>" in user else 0
    slots = int((ids == layout.image).sum())
    if slots != expected_slots:
        return (f"the sequence holds {slots} <image> ids, expected {expected_slots}: the text's one <image> becomes "
                "n_visual slots, one per visual token (and none without an image)")
    if len(want) and int(want[-1]) == layout.end_turn and (not len(ids) or int(ids[-1]) != layout.end_turn):
        return "the response must end with <|end|>: that is how the model learns to stop"
    if codes is not None:
        flat = codes.reshape(-1)
        if len(ids) >= len(flat) and any(torch.equal(ids[i:i + len(flat)], flat) for i in range(len(ids) - len(flat) + 1)):
            return "the image codes are in the sequence as raw VQ indices: code k is the token <idx_k> (first_idx + k)"
        if layout.end_image not in ids.tolist():
            return "the image codes must be closed with <end_index> (then <|end|>)"
    if generation and layout.start not in ids.tolist():
        return "a generation prompt ends with <start_index>: the image tokens follow it"
    first = next((i for i, (a, b) in enumerate(zip(want.tolist(), ids.tolist())) if a != b), min(len(want), len(ids)))
    return (f"input_ids differ from position {first} on: expected {_tokens(tok, want[first:first + 4])}, got "
            f"{_tokens(tok, ids[first:first + 4])} (lengths {len(want)} and {len(ids)})")


def _labels_problem(want: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor, tok, generation: bool):
    if torch.equal(labels, want):
        return None
    if labels.shape != want.shape:
        return f"labels have {len(labels)} positions, input_ids {len(ids)}: one label per input position"
    layout = SequenceLayout.from_tokenizer(tok)
    prompt = want == IGNORE_INDEX  # (T,)
    if torch.equal(labels, ids):
        return "every position is labelled, the prompt too: only the response counts in the loss (-100 elsewhere)"
    if torch.equal(labels[:-1], want[1:]) or torch.equal(labels[1:], want[:-1]):
        return "your labels are shifted by one position: do not shift, the model shifts labels by itself"
    if torch.equal(labels[~prompt], want[~prompt]) and not (labels[prompt] == IGNORE_INDEX).all():
        masked = sorted({int(v) for v in labels[prompt].tolist()})
        if masked == [0] or masked == [int(tok.pad_token_id)]:
            return f"the prompt is masked with {masked[0]}, a real token id: cross-entropy only ignores -100"
        where = int(torch.nonzero((labels != IGNORE_INDEX) & prompt)[0])
        token = _tokens(tok, ids[where:where + 1])[0]
        if generation and int(ids[where]) == layout.start:
            return ("<start_index> is labelled, but it is part of the prompt: at inference the prompt ends with it, "
                    "so the model never has to predict it")
        return f"position {where} ({token!r}) belongs to the prompt and is labelled; the prompt's labels are -100"
    if (labels[~prompt] == IGNORE_INDEX).all():
        return "the response is masked: its tokens are exactly what the model must learn to predict"
    if int(want[-1]) == layout.end_turn and int(labels[-1]) == IGNORE_INDEX:
        return "the final <|end|> is not labelled: without it the model never learns to stop"
    where = int(torch.nonzero(labels != want)[0])
    return f"the label at position {where} ({_tokens(tok, ids[where:where + 1])[0]!r}) is not what it should be"


# ----------------------------------------------------------------------------- q2
def reference_splice_visual_tokens(inputs_embeds: torch.Tensor, input_ids: torch.Tensor, visual: torch.Tensor | None,
                                   image_token_id: int) -> torch.Tensor:
    return splice_visual_tokens(inputs_embeds, input_ids, visual, image_token_id)


IMAGE_ID, PAD_ID = 7, 0


def _batch(rows: list[list[int]], n_visual: int, d: int, seed: int, dtype=torch.float32, visual_rows: int | None = None):
    """inputs_embeds (B, T, d) and visual (M, N, d), both requiring grad, for right-padded ``rows``."""
    g = torch.Generator().manual_seed(seed)
    longest = max(len(r) for r in rows)
    ids = torch.tensor([r + [PAD_ID] * (longest - len(r)) for r in rows])  # (B, T)
    embeds = torch.randn(len(rows), longest, d, generator=g).to(dtype).requires_grad_()  # (B, T, d)
    m = sum(IMAGE_ID in r for r in rows) if visual_rows is None else visual_rows
    visual = torch.randn(m, n_visual, d, generator=g).requires_grad_() if m else None  # (M, N, d) float32
    return embeds, ids, visual, IMAGE_ID


def splice_cases() -> list[Case]:
    img = lambda n: [IMAGE_ID] * n  # noqa: E731
    return [
        Case("two examples with an image each, 3 visual tokens of width 5",
             lambda: _batch([[1, 2, *img(3), 3, 4], [1, *img(3), 5, 6, 4]], 3, 5, 0)),
        Case("three examples, the middle one without an image (visual holds 2 entries), right-padded",
             lambda: _batch([[1, *img(4), 3, 4], [1, 2, 3], [1, 2, 2, *img(4), 9, 4]], 4, 6, 1)),
        Case("bfloat16 embeddings (as in an M3 run) and float32 visual tokens",
             lambda: _batch([[1, *img(2), 3], [2, *img(2), 4]], 2, 4, 2, torch.bfloat16)),
        Case("a text-only batch: no <image> ids and visual=None", lambda: _batch([[1, 2, 3], [4, 5]], 2, 4, 3)),
        Case("2 <image> slots per example but visual tokens for only one example (must be refused)",
             lambda: _batch([[1, *img(2), 3], [2, *img(2), 4]], 2, 4, 4, visual_rows=1)),
    ]


def observe_splice(args: tuple, returned) -> dict:
    embeds, ids, visual, _ = args
    out = {"args": args, "value": returned, "embeds_unchanged": True}
    if not isinstance(returned, torch.Tensor):
        return out
    fresh = _batch_like(args)
    out["embeds_unchanged"] = torch.equal(embeds.detach(), fresh)
    out["value"] = returned.detach().clone()
    if returned.requires_grad:
        weight = torch.randn(returned.shape, generator=torch.Generator().manual_seed(9)).to(returned.dtype)
        (returned * weight).float().sum().backward()
    out["grad_embeds"] = None if embeds.grad is None else embeds.grad.clone()
    out["grad_visual"] = None if visual is None or visual.grad is None else visual.grad.clone()
    return out


def _batch_like(args: tuple) -> torch.Tensor:
    """The embeddings the case started with (to see whether the answer wrote into them)."""
    return args[0].original if hasattr(args[0], "original") else args[0].detach()


def compare_splice(expected: dict, got: dict) -> str | None:
    want, have = expected["value"], got["value"]
    embeds, ids, visual, image_id = got["args"]
    if not isinstance(have, torch.Tensor):
        return f"return a torch.Tensor, got {type(have).__name__}"
    if have.shape != want.shape:
        return f"shape {tuple(have.shape)} but expected (B, T, d) = {tuple(want.shape)}, the embeddings' shape"
    if have.dtype != want.dtype:
        return f"dtype {have.dtype}: the result keeps the embeddings' dtype ({want.dtype}); cast the visual tokens"
    if not got["embeds_unchanged"]:
        return ("it wrote into inputs_embeds in place: return a new tensor and leave the caller's embeddings "
                "(and autograd's record of them) alone")
    if not torch.allclose(have.float(), want.float(), atol=1e-2 if want.dtype == torch.bfloat16 else 1e-6):
        slots = ids == image_id  # (B, T)
        if not torch.allclose(have[~slots].float(), want[~slots].float(), atol=1e-2):
            return "a text position (not an <image> slot) was changed: only the <image> slots get visual tokens"
        return "the visual tokens are not at the <image> slots in order (the n-th slot of an example gets its n-th token)"
    if visual is not None:
        if got["grad_visual"] is None or not got["grad_visual"].any():
            return ("no gradient reaches the visual tokens: the adapter that made them could never learn (was the "
                    "copy detached, or done under no_grad?)")
        if not torch.allclose(got["grad_visual"], expected["grad_visual"], atol=1e-2):
            return "the gradient reaching the visual tokens is not the gradient at their slots"
    if got["grad_embeds"] is None or not torch.allclose(got["grad_embeds"].float(), expected["grad_embeds"].float(),
                                                        atol=1e-2):
        return ("the text embeddings do not get their gradient (and the replaced slots none): the word embeddings "
                "learn through the text positions in stage 2")
    return None


def make_splice_case_args(case: Case) -> tuple:
    """``case.make_args()`` with the starting embeddings remembered (for observe_splice)."""
    args = case.make_args()
    args[0].original = args[0].detach().clone()
    return args


def _remembering(cases):
    return lambda: [Case(c.description, lambda c=c: make_splice_case_args(c)) for c in cases()]


# ----------------------------------------------------------------------------- the questions
_MULTIMODAL = ("healthgpt_lite.model.multimodal.encode_example", "healthgpt_lite.model.multimodal._response_ids",
               "healthgpt_lite.model.multimodal.splice_visual_tokens", "healthgpt_lite.model.healthgpt_model.HealthGPTModel.embed")
q1 = Question(EXERCISE, "q1", "encode_example", reference_encode_example, example_cases, compare_example,
              observe=observe_with_inputs, placeholder=None, forbidden=_MULTIMODAL,
              hints=("Write the sequence out for one example as the model will see it at inference, then say which "
                     "of its tokens the model must learn to produce. Everything it is given is prompt. What is it "
                     "given before the first image code?",
                     "Build the prompt (template head, the user text with <image> replaced by n_visual image ids, the "
                     "template tail, and for generation <start_index>) and the response (the answer's tokens or the "
                     "codes as <idx_k> ids then <end_index>, and <|end|> either way); the labels are -100 for every "
                     "prompt position and the ids themselves for the response. Tokenise the pieces without special "
                     "tokens."))
q2 = Question(EXERCISE, "q2", "splice_visual_tokens", reference_splice_visual_tokens,
              _remembering(splice_cases), compare_splice, observe=observe_splice, placeholder=None,
              forbidden=_MULTIMODAL,
              hints=("Which positions of the batch receive a visual token, in which order, and which of the M entries "
                     "of visual belongs to which example? What must still be true after the splice for the adapter "
                     "to learn?",
                     "A boolean mask of the <image> positions, filled in row-major order with the visual tokens cast "
                     "to the embeddings' dtype, written into a *new* tensor by an operation autograd can follow. "
                     "Count the slots and the tokens first and refuse a mismatch with an error."))
QUESTIONS = (q1, q2)
