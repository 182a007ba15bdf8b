"""The real-size model on the ``meta`` device: every shape, no weights, no memory.

``torch.device("meta")`` makes tensors that have a shape and a dtype but no storage, so
HealthGPT-M3 (4.8B parameters) or -L14 (15B) "instantiates" here in a fraction of a second
and can be counted, planned and wrapped exactly as on a cluster; nothing is downloaded.

The model is built by the same ``training.pipeline.build_model`` the real runs use, with two
stand-ins for what only lives in the downloaded folders:

* the base LLM: a random ``Phi3ForCausalLM`` from ``cfg.llm`` with the *real* embedding rows
  (Phi-3-mini: 32064; phi-4: 100352), built on meta;
* the tokenizer: :class:`PlannedVocabulary`, which has exactly the size and the token ids the
  real tokenizer gets after ``data.tokenizer.add_healthgpt_tokens`` (docs/PAPERS.md section 1).

Vocabulary facts (our assumptions, stated where they are made):

* Phi-3-mini-4k-instruct: 32011 tokenizer entries (32000 SentencePiece + 11 chat/special
  tokens, the chat markers ``<|system|> <|user|> <|assistant|> <|end|>`` among them), 32064
  embedding rows. HealthGPT adds 8195 image tokens: 32011 + 8195 = 40206 rows. This project
  also adds ``<image>`` as a real token (HealthGPT keeps it out of the vocabulary as the id
  -200), so our M3 vocabulary is **40207** rows: one row more than the released model.
* phi-4: 100352 tokenizer entries (= its ``config.vocab_size``: cl100k's 100256 tokens plus
  specials and ``<|dummy_*|>`` fillers). It has none of Phi-3's four chat markers (phi-4 uses
  ``<|im_start|>``), so ``add_healthgpt_tokens`` adds them, ``<image>`` and the 8195 image
  tokens: 100352 + 4 + 1 + 8195 = **108552** rows.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from ..config import Config
from ..data.text_tokenizer import CHAT_TOKENS, EOS, IMAGE_TOKEN, image_token_names


@dataclass(frozen=True)
class BaseVocabulary:
    """What a real base tokenizer / checkpoint brings before HealthGPT adds its tokens."""

    name: str
    tokenizer_size: int  # len(tokenizer) of the downloaded tokenizer
    embedding_rows: int  # rows of the downloaded embedding matrix (may be padded past the tokenizer)
    has_chat_markers: bool  # does it already have Phi-3's <|system|> <|user|> <|assistant|> <|end|>?


BASE_VOCABULARIES = {
    "m3": BaseVocabulary("Phi-3-mini-4k-instruct", 32011, 32064, has_chat_markers=True),
    "l14": BaseVocabulary("phi-4", 100352, 100352, has_chat_markers=False),
}


class PlannedVocabulary:
    """A tokenizer stand-in with the real size and ids (no text in it): enough for
    ``build_model`` (``len``, ``get_vocab``, ``convert_tokens_to_ids``, ``pad_token_id``).

    Ids: the base tokens ``0..n-1`` (Phi-3's markers at their real ids when it has them), then,
    in the order ``add_healthgpt_tokens`` adds them, the missing chat markers, ``<image>`` and
    ``<start_index> <idx_0>.. <end_index> <pixel_newline>``."""

    # Phi-3-mini's own ids of the tokens the template uses
    PHI3_IDS = {EOS: 32000, "<|assistant|>": 32001, "<|system|>": 32006, "<|end|>": 32007, "<|user|>": 32010}

    def __init__(self, base: BaseVocabulary, n_codes: int):
        vocab = dict(self.PHI3_IDS) if base.has_chat_markers else {EOS: 100257}  # phi-4's <|endoftext|>
        size = base.tokenizer_size
        added = [] if base.has_chat_markers else list(CHAT_TOKENS)
        for token in [*added, IMAGE_TOKEN, *image_token_names(n_codes)]:
            vocab[token], size = size, size + 1
        self._vocab, self._size, self.base = vocab, size, base
        self.pad_token_id = vocab[EOS]

    def __len__(self) -> int:
        return self._size

    def get_vocab(self) -> dict[str, int]:  # the named tokens only (the base text tokens stay unnamed)
        return dict(self._vocab)

    def convert_tokens_to_ids(self, token: str) -> int:
        return self._vocab[token]


@dataclass
class MetaBuild:
    """The whole HealthGPT of a preset on the meta device, plus its frozen VQGAN."""

    model: nn.Module  # HealthGPTModel: ViT (HVP) + two adapters + Phi3 with both H-LoRA plugins
    vq: nn.Module  # the taming VQGAN (encoder, quantizer, decoder)
    vocabulary: PlannedVocabulary


def build_meta_model(cfg: Config, plugins: bool = True, device: str | torch.device = "meta") -> MetaBuild:
    """Instantiate the preset's full model on ``meta``: the same ``build_model`` as a real run.
    ``plugins=False``: Qilin-Med-VL's LLaVA-style model (no plugins, no image vocabulary, no VQGAN).
    ``device="cuda"``: the same model with random weights on a GPU (``gpu-check --mode m3-step``)."""
    from ..model.llm import build_llm
    from ..training.pipeline import build_model
    from ..vision import HVPEncoder
    from ..vq.vqgan import VQGAN

    if cfg.preset in BASE_VOCABULARIES:
        vocab = PlannedVocabulary(BASE_VOCABULARIES[cfg.preset], cfg.vq.n_embed)
        text_rows = vocab.base.embedding_rows
    else:  # tiny / small: the shipped tokenizer, the LLM-lite starting from its text tokens
        from ..data.text_tokenizer import image_token_ids, tokenizer_for

        vocab = tokenizer_for(cfg)
        text_rows = image_token_ids(vocab).start
    with torch.device(device):
        shapes_only = dataclasses.replace(cfg.llm, pretrained_path=None)  # the shapes, never the download
        base = build_llm(shapes_only, text_rows, pad_token_id=vocab.pad_token_id)
        model = build_model(cfg, tokenizer=vocab, base_llm=base, plugins=plugins)  # vocabulary + plugins + adapters
        model.vision = HVPEncoder.from_config(cfg.vision)  # CLIP ViT-L/14-336, frozen
        vq = VQGAN(cfg.vq).requires_grad_(False) if plugins else nn.Identity()  # frozen, as VQTokenizer keeps it
    return MetaBuild(model, vq, vocab)


def count(module: nn.Module) -> int:
    """Parameters of a module (shared tensors once); works on meta."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())
