"""LLM-lite: give the tiny preset's random LLM a language before HealthGPT's stages begin.

HealthGPT starts from Phi-3, which already reads and writes English. The ``tiny`` and ``small``
presets build their LLM from a config, so it knows nothing; HealthGPT's recipe would then ask
frozen random weights to carry stage 1. The honest analogue of "start from a pretrained LLM"
is a short causal-LM pretraining on text alone: the train split's questions, answers and
reports (English and Chinese) in the Phi-3 chat format, no images. It learns the language and
the answer formats (and the majority answers, the text-only prior of notebook 01), never an
image. The real presets skip this: they load Phi-3 / phi-4 from ``llm.pretrained_path``.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from ..artifacts import load_or_make, read_meta
from ..config import Config
from ..data.generate import ensure_dataset
from ..data.records import IMAGE_TOKEN, load_records
from ..data.text_tokenizer import image_token_ids, tokenizer_for
from ..model.llm import build_llm
from ..model.multimodal import PROMPT_HEAD, PROMPT_TAIL, collate
from .schedule import warmup_times_cosine, with_schedule
from .trainer import last_checkpoint, make_trainer

MAKE_HINT = "run notebooks/04_unified_llm.ipynb or `python -m healthgpt_lite reproduce`"


def chat_texts(records: list[dict]) -> list[str]:
    """Comprehension records as chat text without the image (the LM never sees pixels)."""
    out = []
    for r in records:
        if r["task_type"] != "comprehension":
            continue
        question = r["conversations"][0]["value"].replace(IMAGE_TOKEN, "").strip()
        out.append(f"{PROMPT_HEAD}{question}{PROMPT_TAIL}{r['conversations'][1]['value']}<|end|>")
    return out


class TextDataset(Dataset):
    def __init__(self, texts: list[str], tokenizer, max_length: int):
        self.items = [torch.tensor(tokenizer(t, add_special_tokens=False)["input_ids"][:max_length]) for t in texts]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        ids = self.items[i]
        return {"input_ids": ids, "labels": ids.clone()}  # plain language modelling: every token


class LMPretrainModule(L.LightningModule):
    def __init__(self, llm, lr: float, total_steps: int, pad_id: int):
        super().__init__()
        self.llm, self.lr, self.total_steps, self.pad_id = llm, lr, total_steps, pad_id

    def training_step(self, batch, _):
        labels = batch["labels"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = self.llm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels).loss
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        labels = batch["labels"].masked_fill(batch["attention_mask"] == 0, -100)
        self.log("val/loss", self.llm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                      labels=labels).loss, prog_bar=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.llm.parameters(), lr=self.lr, weight_decay=0.0)
        return with_schedule(opt, warmup_times_cosine(self.total_steps, self.total_steps // 20))


def ensure_llm_lite(cfg: Config, artifacts_dir=None, data_dir=None, progress: bool = False) -> Path | None:
    """Load-or-train the tiny LLM's language pretraining; None when a real LLM is configured."""
    if cfg.llm.pretrained_path:
        return None
    from ..artifacts import data_dir_for

    data_dir = ensure_dataset(data_dir or data_dir_for(cfg, artifacts_dir), cfg.data)

    def make(path: Path) -> dict:
        tok = tokenizer_for(cfg)
        text_vocab = image_token_ids(tok).start  # the LLM starts with text tokens only
        torch.manual_seed(cfg.seed)
        llm = build_llm(cfg.llm, text_vocab, pad_token_id=tok.pad_token_id)
        train = TextDataset(chat_texts(load_records(data_dir / "train.json")), tok, cfg.llm.max_position_embeddings)
        val = TextDataset(chat_texts(load_records(data_dir / "val.json"))[:256], tok, cfg.llm.max_position_embeddings)
        loader = lambda ds, shuffle: DataLoader(ds, batch_size=cfg.llm.pretrain_batch_size, shuffle=shuffle,  # noqa: E731
                                                collate_fn=lambda b: collate(b, tok.pad_token_id),
                                                num_workers=cfg.train.num_workers)
        steps = cfg.llm.pretrain_steps
        module = LMPretrainModule(llm, cfg.llm.pretrain_lr, steps, tok.pad_token_id)
        trainer = make_trainer(path, steps, cfg.train, progress, val_check_interval=max(1, steps // 4))
        trainer.fit(module, loader(train, True), loader(val, False), ckpt_path=last_checkpoint(path))
        llm.save_pretrained(path / "llm", safe_serialization=True)
        return {"text_vocab": text_vocab, "final_val_loss": float(trainer.callback_metrics.get("val/loss", float("nan")))}

    return load_or_make(cfg, "llm_lite", ("llm", "data"), make, artifacts_dir)


def load_base_llm(cfg: Config, artifacts_dir=None):
    """The text-only base LLM of this preset: the real one from ``llm.pretrained_path``, or the
    LLM-lite artifact (refused when missing or made for another preset)."""
    from ..artifacts import artifact_dir
    from transformers import Phi3ForCausalLM

    if cfg.llm.pretrained_path:
        return build_llm(cfg.llm, vocab_size=0)
    path = artifact_dir(cfg, "llm_lite", ("llm", "data"), artifacts_dir)
    read_meta(path, "llm_lite", cfg.preset, MAKE_HINT)
    return Phi3ForCausalLM.from_pretrained(str(path / "llm"), local_files_only=True)
