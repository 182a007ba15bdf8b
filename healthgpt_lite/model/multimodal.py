"""Multimodal sequences: the Phi-3 chat template, ``<image>`` replaced by visual tokens,
response-only labels, generation targets as image tokens (docs/PAPERS.md section 1).

A training example, as token ids (N = visual tokens, here shown for a CT->MRI record)::

    <|system|>\\n You are a helpful AI assistant. <|end|>\\n <|user|>\\n  <image>*N \\n Convert ... <|end|>\\n
    <|assistant|>\\n <start_index> | <idx_17> <idx_3> ... (h*w) <end_index> <|end|>
    labels: -100 ...................................................... | the same ids (response only)

``<image>`` is expanded here into N copies of its id; at forward time those N positions get the
projected visual tokens (:func:`splice_visual_tokens`), so sequence length, attention mask and
labels are known before the vision encoder runs. Generation prompts end with ``<start_index>``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.text_tokenizer import IMAGE_TOKEN, START_INDEX, SYSTEM_PROMPT
from ..errors import InputError

IGNORE_INDEX = -100  # positions that do not count in the loss
PROMPT_HEAD = f"<|system|>\n{SYSTEM_PROMPT}<|end|>\n<|user|>\n"
PROMPT_TAIL = "<|end|>\n<|assistant|>\n"


@dataclass(frozen=True)
class SequenceLayout:
    """Token ids the assembly needs, read once from the tokenizer."""

    image: int  # <image>
    start: int  # <start_index>
    end_image: int  # <end_index>
    end_turn: int  # <|end|>
    pad: int

    @staticmethod
    def from_tokenizer(tokenizer) -> "SequenceLayout":
        ids = tokenizer.convert_tokens_to_ids
        return SequenceLayout(ids(IMAGE_TOKEN), ids(START_INDEX), ids("<end_index>"), ids("<|end|>"), tokenizer.pad_token_id)


def user_text(question: str, with_image: bool) -> str:
    """The user turn: ``<image>\\n`` first when there is an image (LLaVA's convention)."""
    if not isinstance(question, str) or not question.replace(IMAGE_TOKEN, "").strip():
        raise InputError(f"the question is empty ({question!r}); ask something about the image")
    question = question.replace(IMAGE_TOKEN, "").strip()
    return f"{IMAGE_TOKEN}\n{question}" if with_image else question


def encode_example(tokenizer, user: str, n_visual: int, max_length: int, answer: str | None = None,
                   image_codes: torch.Tensor | None = None, generation: bool = False) -> dict[str, torch.Tensor]:
    """Token ids and labels of one example.

    ``user`` is the user turn (with ``<image>`` where the image goes, or none). The response is
    ``answer`` (text, comprehension) or ``image_codes`` (VQ indices, generation); both None
    gives a prompt for inference. Text that does not fit ``max_length`` is cut from the end of
    the user text; the image and the response are never cut (an InputError if they cannot fit).
    """
    layout = SequenceLayout.from_tokenizer(tokenizer)
    tok = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    if user.count(IMAGE_TOKEN) > 1:
        raise InputError(f"the user text has {user.count(IMAGE_TOKEN)} {IMAGE_TOKEN} tokens; one image per example")
    before, _, after = user.partition(IMAGE_TOKEN)
    has_image = IMAGE_TOKEN in user
    head, tail = tok(PROMPT_HEAD), tok(PROMPT_TAIL) + ([layout.start] if generation else [])
    text_before, text_after = tok(before), tok(after)
    visual = [layout.image] * n_visual if has_image else []
    response = _response_ids(tokenizer, layout, answer, image_codes)
    fixed = len(head) + len(visual) + len(tail) + len(response)
    budget = max_length - fixed
    if budget < 1:
        raise InputError(f"the example cannot fit max_length={max_length}: the template, {len(visual)} visual tokens "
                         f"and a {len(response)}-token response alone take {fixed}; raise llm.max_position_embeddings")
    if len(text_before) + len(text_after) > budget:  # cut the text, never the image or the response
        text_after = text_after[:max(0, budget - len(text_before))]
        text_before = text_before[:budget - len(text_after)]
    prompt = head + text_before + visual + text_after + tail
    ids = torch.tensor(prompt + response, dtype=torch.long)  # (T,)
    labels = torch.tensor([IGNORE_INDEX] * len(prompt) + response, dtype=torch.long)  # (T,)
    return {"input_ids": ids, "labels": labels}


def add_turns(tokenizer, example: dict[str, torch.Tensor], turns: list[tuple[str, str]],
              max_length: int) -> dict[str, torch.Tensor]:
    """Append more (question, answer) turns about the same image to an encoded example: one
    multi-turn conversation, as LLaVA's instruction records are. Every answer is labelled, every
    question is not; the image is spliced once, so each extra answer costs only its own tokens.
    Turns that would pass ``max_length`` are left out (the first turn always stays)::

        ... <|assistant|>\n A1 <|end|> \n<|user|>\n Q2 <|end|>\n<|assistant|>\n A2 <|end|> ...
    """
    ids, labels = example["input_ids"].tolist(), example["labels"].tolist()
    for question, answer in turns:
        prompt = tokenizer(f"\n<|user|>\n{question.strip()}{PROMPT_TAIL}", add_special_tokens=False)["input_ids"]
        response = _response_ids(tokenizer, SequenceLayout.from_tokenizer(tokenizer), answer, None)
        if len(ids) + len(prompt) + len(response) > max_length:
            break
        ids += prompt + response
        labels += [IGNORE_INDEX] * len(prompt) + response
    return {"input_ids": torch.tensor(ids, dtype=torch.long), "labels": torch.tensor(labels, dtype=torch.long)}


def _response_ids(tokenizer, layout: SequenceLayout, answer, image_codes) -> list[int]:
    if image_codes is not None:  # generation target: h*w indices, then <end_index>, then <|end|>
        from ..data.text_tokenizer import image_token_ids

        block = image_token_ids(tokenizer)
        codes = image_codes.reshape(-1)
        if codes.numel() and (codes.min() < 0 or codes.max() >= block.n_codes):
            raise InputError(f"image codes must lie in 0..{block.n_codes - 1}")
        return (codes + block.first_idx).tolist() + [layout.end_image, layout.end_turn]
    if answer is not None:
        if not answer.strip():
            raise InputError("the answer is empty")
        return tokenizer(answer, add_special_tokens=False)["input_ids"] + [layout.end_turn]
    return []


def collate(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of encoded examples into a batch (labels padded with -100)."""
    longest = max(len(e["input_ids"]) for e in examples)
    batch = {"input_ids": torch.full((len(examples), longest), pad_id, dtype=torch.long),  # (B, T)
             "labels": torch.full((len(examples), longest), IGNORE_INDEX, dtype=torch.long),  # (B, T)
             "attention_mask": torch.zeros((len(examples), longest), dtype=torch.long)}  # (B, T)
    for i, e in enumerate(examples):
        n = len(e["input_ids"])
        batch["input_ids"][i, :n], batch["labels"][i, :n], batch["attention_mask"][i, :n] = e["input_ids"], e["labels"], 1
    return batch


def splice_visual_tokens(inputs_embeds: torch.Tensor, input_ids: torch.Tensor, visual: torch.Tensor | None,
                         image_token_id: int) -> torch.Tensor:
    """Put the projected visual tokens where ``<image>`` ids are (LLaVA's splice).

    inputs_embeds (B, T, d); input_ids (B, T); visual (M, N, d) for the M examples that have an
    image, in batch order (each has exactly N ``<image>`` positions)."""
    mask = input_ids == image_token_id  # (B, T)
    n_slots, n_visual = int(mask.sum()), 0 if visual is None else visual.shape[0] * visual.shape[1]
    if n_slots != n_visual:
        raise InputError(f"{n_slots} <image> positions in the batch but {n_visual} visual tokens to put there")
    if visual is None:
        return inputs_embeds
    return inputs_embeds.masked_scatter(mask.unsqueeze(-1), visual.to(inputs_embeds.dtype))  # row-major fill
