"""Batches for the stages: records -> token ids, labels and cached visual features.

Every batch holds one task type (comprehension or generation), because the task decides the
active H-LoRA plugin, the adapter and the ViT layer (a hard, non-learned switch,
docs/PAPERS.md section 2). Stage 2 trains on both: it draws one batch of each per step
(Lightning's ``CombinedLoader``).
"""
from __future__ import annotations

import random

import lightning as L
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset

from ..config import Config
from ..data.records import IMAGE_TOKEN, load_records
from ..model.multimodal import add_turns, collate, encode_example
from .features import FeatureStore
from .sampling import StepBatchSampler
from .stages import StageSpec


def task_records(records: list[dict], task: str, record_tasks: tuple[str, ...], lang: str | None = None) -> list[dict]:
    """The records a stage learns from: its task type and record tasks (and language, if it has one)."""
    return [r for r in records if r["task_type"] == task and r["task"] in record_tasks and (lang is None or r["lang"] == lang)]


def group_by_image(records: list[dict], turns: int, seed: int) -> list[list[dict]]:
    """Comprehension records in conversations of up to ``turns`` questions about one image each
    (seeded order within an image); ``turns = 1``: every record alone."""
    if turns <= 1:
        return [[r] for r in records]
    by_image: dict[str, list[dict]] = {}
    for r in records:
        by_image.setdefault(r.get("image"), []).append(r)
    rng, groups = random.Random(seed), []
    for recs in by_image.values():
        recs = recs[:]
        rng.shuffle(recs)
        groups += [recs[i:i + turns] for i in range(0, len(recs), turns)]
    return groups


def balance_tasks(records: list[dict]) -> list[dict]:
    """Repeat each record task's records (cyclically) up to the count of the largest task, so a
    batch draws every task equally often instead of in proportion to its record count."""
    by_task: dict[str, list[dict]] = {}
    for r in records:
        by_task.setdefault(r["task"], []).append(r)
    most = max(len(v) for v in by_task.values())
    return [recs[i % len(recs)] for recs in by_task.values() for i in range(most)]


class TaskDataset(Dataset):
    """Encoded examples of one task type (token ids, labels, the path of the input image).

    Comprehension records of one image become one conversation of up to ``train.comp_turns``
    turns; generation records can be balanced across their tasks (``train.balance_generation_tasks``)."""

    def __init__(self, records: list[dict], store: FeatureStore, tokenizer, cfg: Config, task: str,
                 training: bool = False):
        self.task, self.examples = task, []
        max_len, n_vis = cfg.llm.max_position_embeddings, cfg.vision.num_tokens
        if task == "generation":
            for r in balance_tasks(records) if training and cfg.train.balance_generation_tasks else records:
                enc = encode_example(tokenizer, r["conversations"][0]["value"], n_vis, max_len,
                                     image_codes=store.image_codes(r["target_image"]), generation=True)
                self.examples.append({**enc, "image": r.get("image")})
            return
        for group in group_by_image(records, cfg.train.comp_turns if training else 1, cfg.seed):
            first = group[0]["conversations"]
            enc = encode_example(tokenizer, first[0]["value"], n_vis, max_len, answer=first[1]["value"])
            more = [(r["conversations"][0]["value"].replace(IMAGE_TOKEN, "").strip(), r["conversations"][1]["value"])
                    for r in group[1:]]
            self.examples.append({**(add_turns(tokenizer, enc, more, max_len) if more else enc),
                                  "image": group[0].get("image")})

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return self.examples[i]


class BatchCollator:
    """Pads token ids and gathers the task's cached features for the examples with an image."""

    def __init__(self, store: FeatureStore, pad_id: int, task: str):
        self.store, self.pad_id, self.task = store, pad_id, task

    def __call__(self, examples: list[dict]) -> dict:
        batch = collate(examples, self.pad_id)
        paths = [e["image"] for e in examples if e["image"]]
        batch["features"] = self.store.features(paths, self.task) if paths else None  # (M, N, D)
        batch["task"] = self.task
        return batch


class StageDataModule(L.LightningDataModule):
    """A stage's batches. ``batch_sizes``: ``{task: per-device batch}`` over ``cfg.train``'s
    (``comp_batch_size``, ``gen_batch_size``); a stage marked ``sample`` (stage 2) learns from
    ``train.stage2_samples`` records per task; ``val_per_task``: validation records per task."""

    def __init__(self, cfg: Config, spec: StageSpec, store: FeatureStore, tokenizer, data_dir,
                 batch_sizes: dict[str, int] | None = None, val_per_task: int = 64):
        super().__init__()
        t = cfg.train
        self.cfg, self.spec, self.store, self.tok, self.data_dir = cfg, spec, store, tokenizer, data_dir
        self.batch_sizes = {"comprehension": t.comp_batch_size, "generation": t.gen_batch_size} | dict(batch_sizes or {})
        self.sample = t.stage2_samples if spec.sample else None  # stage 2: "a small mixed sample"
        self.val_per_task = val_per_task

    def setup(self, stage: str | None = None) -> None:
        rng = random.Random(self.cfg.seed)
        self.train_sets, self.val_sets = {}, {}
        for split, target, limit in (("train", self.train_sets, self.sample), ("val", self.val_sets, self.val_per_task)):
            records = load_records(self.data_dir / f"{split}.json")
            for task in self.spec.tasks:
                recs = task_records(records, task, self.spec.record_tasks, self.spec.lang)
                if limit is not None and len(recs) > limit:  # stage 2: "a small mixed sample"
                    recs = rng.sample(recs, limit)
                target[task] = TaskDataset(recs, self.store, self.tok, self.cfg, task, training=split == "train")

    def collator(self, task: str):
        """Turns a list of examples into a batch (real-data modules carry pixels instead)."""
        return BatchCollator(self.store, self.tok.pad_token_id, task)

    def train_dataloader(self):
        """Infinite, step-indexed batches (see sampling.py): a resumed run continues exactly
        where the interrupted one stopped. One batch per task per step; under DDP / FSDP each
        rank takes its own slots of the step's global batch (per-device batch x ranks x accumulate)."""
        tr = self.trainer
        start, rank, world, accumulate = ((tr.global_step, tr.global_rank, tr.world_size, tr.accumulate_grad_batches)
                                          if tr is not None else (0, 0, 1, 1))
        loaders = {t: DataLoader(ds, batch_sampler=StepBatchSampler(len(ds), self.batch_sizes[t], self.cfg.seed + i,
                                                                    start, rank, world, accumulate),
                                 collate_fn=self.collator(t), num_workers=self.cfg.train.num_workers)
                   for i, (t, ds) in enumerate(self.train_sets.items())}
        return CombinedLoader(loaders, mode="min_size")

    def val_dataloader(self):
        """Every rank validates on the whole (small) validation set, so the logged loss is the
        single-process value without a reduction across ranks (``use_distributed_sampler=False``)."""
        loaders = {t: DataLoader(ds, batch_size=self.batch_sizes[t], shuffle=False,
                                 collate_fn=self.collator(t), num_workers=self.cfg.train.num_workers)
                   for t, ds in self.val_sets.items()}
        return CombinedLoader(loaders, mode="sequential")
