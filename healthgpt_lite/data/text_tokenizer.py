"""The text tokenizer, with the Phi-3 chat tokens and HealthGPT's image-token block.

* ``tiny`` / ``small`` presets: a byte-level BPE trained offline with ``tokenizers`` on the
  VL-Health-lite corpus (English + Chinese; byte-level, so any text round-trips), wrapped as a
  transformers ``PreTrainedTokenizerFast`` and shipped in ``data_samples/tokenizer``.
* ``m3`` / ``l14``: Phi-3's (or phi-4's) own tokenizer from a local path, to which
  :func:`add_healthgpt_tokens` adds exactly the same special tokens.

The image-token block (docs/PAPERS.md section 1) is ``<start_index>``, ``<idx_0>`` ...
``<idx_{N-1}>``, ``<end_index>`` and an unused ``<pixel_newline>``: N + 3 tokens, N = the VQ
codebook size. ``<idx_k>`` ids are contiguous, so code k <-> token id ``first_idx + k``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..artifacts import REPO_ROOT
from ..errors import ConfigError, InputError

DEFAULT_TOKENIZER_DIR = REPO_ROOT / "data_samples" / "tokenizer"

EOS = "<|endoftext|>"
CHAT_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]  # Phi-3's chat markers
IMAGE_TOKEN = "<image>"  # where the projected visual tokens go in a prompt
START_INDEX, END_INDEX, PIXEL_NEWLINE = "<start_index>", "<end_index>", "<pixel_newline>"
SYSTEM_PROMPT = "You are a helpful AI assistant."
# The Phi-3 chat template (docs/PAPERS.md section 1), as a Jinja template for apply_chat_template.
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def image_token_names(n_codes: int) -> list[str]:
    return [START_INDEX] + [f"<idx_{i}>" for i in range(n_codes)] + [END_INDEX, PIXEL_NEWLINE]


@dataclass(frozen=True)
class ImageTokenIds:
    """Token ids of the image block: ``<idx_k>`` is ``first_idx + k`` for k < n_codes."""

    start: int
    end: int
    first_idx: int
    n_codes: int

    def code_to_token(self, codes):
        return codes + self.first_idx


def train_tokenizer(corpus: Iterable[str], vocab_size: int = 1024, n_codes: int = 512):
    """Train a byte-level BPE on ``corpus`` and add the special and image tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=[EOS, *CHAT_TOKENS, IMAGE_TOKEN],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS,
                                   additional_special_tokens=[*CHAT_TOKENS, IMAGE_TOKEN])
    fast.chat_template = CHAT_TEMPLATE
    return add_healthgpt_tokens(fast, n_codes)


def add_healthgpt_tokens(tokenizer, n_codes: int):
    """Add ``<image>`` and the image-token block to any HF tokenizer (Phi-3's included), in place."""
    names = image_token_names(n_codes)
    existing = [t for t in tokenizer.get_vocab() if t.startswith("<idx_")]
    if existing and len(existing) != n_codes:
        raise ConfigError(f"the tokenizer already has {len(existing)} <idx_*> tokens but the VQ codebook has "
                          f"{n_codes} codes (vq.n_embed); rebuild it with "
                          f"`python -m healthgpt_lite data tokenizer --codes {n_codes}`")
    missing = [t for t in [*CHAT_TOKENS, IMAGE_TOKEN] if t not in tokenizer.get_vocab()]
    tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    if not existing:
        tokenizer.add_tokens(names, special_tokens=True)
    image_token_ids(tokenizer)  # checks contiguity
    return tokenizer


def image_token_ids(tokenizer) -> ImageTokenIds:
    vocab = tokenizer.get_vocab()
    n = sum(1 for t in vocab if t.startswith("<idx_"))
    if n == 0 or START_INDEX not in vocab or END_INDEX not in vocab:
        raise ConfigError("the tokenizer has no image-token block; call add_healthgpt_tokens(tokenizer, n_codes)")
    first = vocab["<idx_0>"]
    if any(vocab.get(f"<idx_{k}>") != first + k for k in range(n)):
        raise ConfigError("the tokenizer's <idx_*> tokens are not contiguous ids")
    return ImageTokenIds(start=vocab[START_INDEX], end=vocab[END_INDEX], first_idx=first, n_codes=n)


def without_image_block(tokenizer):
    """The same tokenizer without its image-token block (the block is appended last, so every
    text id is unchanged); :func:`add_healthgpt_tokens` then adds a block of any size."""
    import json

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    block = set(image_token_names(0))
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"]
                            if not (t["content"].startswith("<idx_") or t["content"] in block)]
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), eos_token=EOS,
                                   pad_token=EOS, additional_special_tokens=[*CHAT_TOKENS, IMAGE_TOKEN])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def load_tokenizer(path: str | Path | None = None, n_codes: int | None = None):
    """Load a tokenizer saved with ``save_pretrained`` (ours, or Phi-3's from a local folder).

    ``n_codes`` (the VQ codebook size) is checked against the saved image block, or the block
    is added when the tokenizer has none (a plain Phi-3 tokenizer).
    """
    from transformers import AutoTokenizer

    path = Path(path) if path is not None else DEFAULT_TOKENIZER_DIR
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer.model").is_file():
        raise InputError(f"{path}: no tokenizer here (expected tokenizer.json); make it with `make data-samples`")
    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if n_codes is not None and path == DEFAULT_TOKENIZER_DIR and n_codes != image_token_ids(tok).n_codes:
        tok = without_image_block(tok)  # the shipped BPE serves every codebook size (small: 1024 codes)
    if n_codes is not None:
        add_healthgpt_tokens(tok, n_codes)
    if tok.chat_template is None:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def corpus_from_records(records: Iterable[dict]) -> Iterable[str]:
    """The text a tokenizer is trained on: every turn, without the image placeholders."""
    from .records import TARGET_PLACEHOLDER

    for rec in records:
        for turn in rec["conversations"]:
            text = turn["value"].replace(IMAGE_TOKEN, "").replace(TARGET_PLACEHOLDER, "").strip()
            if text:
                yield text
    yield SYSTEM_PROMPT


def tokenizer_for(cfg):
    """The tokenizer a config asks for: ``cfg.llm.tokenizer_path`` (or the shipped one), with
    exactly ``cfg.vq.n_embed`` image tokens."""
    return load_tokenizer(cfg.llm.tokenizer_path, n_codes=cfg.vq.n_embed)
