"""The released model's vocabulary, chat templates and prompt token ids.

Vocabulary. The released code adds exactly the 8195 image tokens to the base tokenizer,
``<start_index> <idx_0> ... <idx_8191> <end_index> <pixel_newline>``, so they take the ids
``len(tokenizer) ...`` and the embedding and head are resized to ``len(tokenizer) + 8195`` rows
(Phi-3-mini: 32011 + 8195 = 40206). ``<image>`` is **not** a token: LLaVA writes it into the ids
as :data:`IMAGE_TOKEN_INDEX` = -200, a number outside the vocabulary, and puts the visual tokens
there. (This project's own models add ``<image>`` as a real token first, which is why their
image-token ids and new rows sit one place later: ``data/text_tokenizer.py``.)

Templates (LLaVA's "MPT" separator style: ``system + sep``, then ``role + message + sep`` per
turn, then the assistant's role)::

    phi3:  <|system|>\\n{system}<|end|>\\n<|user|>\\n<image>\\n{question}<|end|>\\n<|assistant|>\\n
    phi4:  <|im_start|>system<|im_sep|>\\n{system}<|im_end|>\\n<|im_start|>user<|im_sep|>\\n<image>\\n{question}<|im_end|>\\n<|im_start|>assistant<|im_sep|>\\n

Generation prompts end with ``<start_index>``. The L14 (phi4) template upstream carries a
role-play system line; it is not copied here: both templates get ``system_prompt``, by default
Phi-3's "You are a helpful AI assistant." (pass another with ``--system-prompt``).

Token ids, as LLaVA's ``tokenizer_image_token`` makes them: the prompt is split at ``<image>``,
each piece tokenised on its own with the tokenizer's own special-token settings, a leading BOS
kept once, and the pieces joined by -200. Here that one -200 is written as ``n_visual`` copies,
the positions the projected visual tokens fill (the same sequence once spliced).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..data.text_tokenizer import END_INDEX, IMAGE_TOKEN, START_INDEX, SYSTEM_PROMPT, image_token_ids, image_token_names
from ..errors import InputError

IMAGE_TOKEN_INDEX = -200  # LLaVA's id for <image>: outside the vocabulary


@dataclass(frozen=True)
class ChatTemplate:
    name: str
    system: str  # opens the system turn
    user: str  # the user's role marker
    assistant: str  # the assistant's role marker
    sep: str  # closes every turn; the end-of-turn token generation stops at
    markers: tuple[str, ...]  # the special tokens the base tokenizer must have

    def prompt(self, question: str, with_image: bool, system_prompt: str = SYSTEM_PROMPT, generation: bool = False) -> str:
        question = question.replace(IMAGE_TOKEN, "").strip()
        if not question:
            raise InputError("the question is empty; ask something about the image")
        user = f"{IMAGE_TOKEN}\n{question}" if with_image else question
        text = self.system + system_prompt + self.sep + self.user + user + self.sep + self.assistant
        return text + START_INDEX if generation else text


TEMPLATES = {
    "phi3": ChatTemplate("phi3", "<|system|>\n", "\n<|user|>\n", "\n<|assistant|>\n", "<|end|>",
                         ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")),
    "phi4": ChatTemplate("phi4", "<|im_start|>system<|im_sep|>\n", "\n<|im_start|>user<|im_sep|>\n",
                         "\n<|im_start|>assistant<|im_sep|>\n", "<|im_end|>", ("<|im_start|>", "<|im_sep|>", "<|im_end|>")),
}


def template_for(tokenizer, name: str = "auto") -> ChatTemplate:
    """The template ``name``, or (``auto``) the one whose markers the tokenizer has: phi-4's
    ``<|im_sep|>`` or Phi-3's ``<|user|>``/``<|end|>``; refuses a tokenizer lacking the markers."""
    vocab = tokenizer.get_vocab()
    if name == "auto":
        name = "phi4" if "<|im_sep|>" in vocab else "phi3"
    if name not in TEMPLATES:
        raise InputError(f"unknown template {name!r}; choose phi3 (HealthGPT-M3), phi4 (HealthGPT-L14) or auto")
    t = TEMPLATES[name]
    absent = [m for m in t.markers if m not in vocab]
    if absent:
        raise InputError(f"the tokenizer has no {', '.join(absent)} token(s) of the {name} template: is the LLM folder "
                         "Phi-3-mini-4k-instruct (template phi3) or phi-4 (template phi4)?")
    return t


def released_tokenizer(path: str | Path, n_codes: int):
    """The base LLM's tokenizer (local folder) + exactly the released image tokens, ids from
    ``len(tokenizer)`` on; nothing else is added (no ``<image>``, no chat markers)."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer.model").is_file():
        raise InputError(f"{path}: no tokenizer here (expected tokenizer.json of Phi-3-mini-4k-instruct or phi-4)")
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    vocab = tok.get_vocab()
    if IMAGE_TOKEN in vocab:
        raise InputError(f"{path}: the tokenizer has an {IMAGE_TOKEN} token; the released model keeps it out of the "
                         f"vocabulary (id {IMAGE_TOKEN_INDEX}); give the base LLM's own folder")
    have = sum(t.startswith("<idx_") for t in vocab)
    if have and have != n_codes:
        raise InputError(f"{path}: the tokenizer already has {have} <idx_*> tokens, not {n_codes} (vq.n_embed)")
    if not have:
        tok.add_tokens(image_token_names(n_codes), special_tokens=True)
    block = image_token_ids(tok)
    if block.first_idx != block.start + 1 or tok.convert_tokens_to_ids(END_INDEX) != block.first_idx + n_codes:
        raise InputError(f"{path}: the image tokens are not one contiguous block after the tokenizer's own entries")
    return tok


def prompt_ids(tokenizer, text: str, n_visual: int) -> torch.Tensor:
    """Token ids of a prompt, ``<image>`` written as ``n_visual`` copies of -200 (see the module docstring)."""
    pieces = [tokenizer(piece)["input_ids"] for piece in text.split(IMAGE_TOKEN)]
    bos = tokenizer.bos_token_id
    keep_bos = bos is not None and bool(pieces[0]) and pieces[0][0] == bos
    ids = [bos] if keep_bos else []
    for i, piece in enumerate(pieces):
        if i:
            ids += [IMAGE_TOKEN_INDEX] * n_visual
        ids += piece[1:] if keep_bos else piece  # every piece was tokenised with its own BOS
    return torch.tensor(ids, dtype=torch.long)  # (T,)
