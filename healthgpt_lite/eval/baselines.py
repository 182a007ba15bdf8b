"""Honest baselines: what a model must beat before "it learned the task" means anything.

Generation (every image in [0, 1], scored like the model):

* **copy the input**: the identity (CT->MRI, MRI->CT): what a model that learned nothing writes;
* **grey-level table**: 256 numbers fit on the train split, the mean target grey value of each
  input grey value. Where one tissue's CT value fixes its MRI value this is nearly the whole
  task; where it does not (air, lung and bone are all dark on T2 MRI) it fails, and a model
  must use the anatomy around a pixel;
* **bicubic** upsampling of the low-resolution input (super-resolution);
* **lesion-free X-ray** (report->X-ray): a real training X-ray of a patient without lesions for
  every report, i.e. always drawing the most common finding;
* the **VQ ceiling** (``decode(encode(target))``) is not a baseline but the best any image-token
  sequence can do (``evaluate.py``).

Comprehension (answers scored like the model's):

* **majority answer**: the most common train answer of each question type and language;
* **blind text prior**: the most common train answer of each exact question: everything the
  text alone tells, as an LLM that never sees the image could learn it;
* the "what the pixels allow" CNN lives in ``pixel_reference.py``.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import torch

from ..data.io import load_image
from ..data.records import load_records


class GreyLevelTable:
    """A per-pixel lookup: input grey level (0..255) -> the mean target grey level on train."""

    def __init__(self, table: torch.Tensor):
        self.table = table  # (256,) in [0, 1]

    @staticmethod
    def fit(inputs: torch.Tensor, targets: torch.Tensor) -> "GreyLevelTable":
        """inputs, targets (B, C, H, W) in [0, 1]: pixel pairs of the same slice."""
        levels = (inputs[:, 0] * 255).round().long().flatten()  # (B*H*W,)
        sums = torch.zeros(256).index_add_(0, levels, targets[:, 0].flatten().float())
        counts = torch.bincount(levels, minlength=256).float()
        identity = torch.linspace(0, 1, 256)  # a grey level never seen on train maps to itself
        return GreyLevelTable(torch.where(counts > 0, sums / counts.clamp(min=1), identity))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1, H, W)."""
        return self.table[(images[:, 0] * 255).round().long()][:, None]


def task_pairs(data_dir: Path, split: str, task: str, size: int, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of one generation task of a split, both (B, 3, size, size) in [0, 1]."""
    recs = [r for r in load_records(Path(data_dir) / f"{split}.json") if r["task"] == task][:limit]
    inputs = torch.stack([load_image(Path(data_dir) / r["image"], size=size) for r in recs])
    targets = torch.stack([load_image(Path(data_dir) / r["target_image"], size=size) for r in recs])
    return inputs, targets


def fit_grey_level_table(data_dir: Path, task: str, size: int) -> GreyLevelTable:
    return GreyLevelTable.fit(*task_pairs(data_dir, "train", task, size))


def lesion_free_xrays(data_dir: Path, n: int, size: int) -> torch.Tensor:
    """(n, 3, size, size): train X-rays of lesion-free patients, repeated to n images."""
    import json

    healthy = [p["pid"] for p in json.loads((Path(data_dir) / "patients.json").read_text())
               if p["split"] == "train" and not p["lesions"]]
    if not healthy:
        raise ValueError(f"{data_dir}: no lesion-free train patient to draw the baseline X-ray from")
    images = [load_image(Path(data_dir) / f"images/{pid}_xray.png", size=size) for pid in healthy]
    return torch.stack([images[i % len(images)] for i in range(n)])


def _most_common(values: list[str]) -> str:
    counts = Counter(values)
    return max(sorted(counts), key=lambda v: counts[v])  # ties broken alphabetically: deterministic


def text_baselines(data_dir: Path) -> dict[str, dict]:
    """``{"majority": {(type, lang): answer}, "blind": {question: answer}}`` fit on train."""
    by_type, by_question = defaultdict(list), defaultdict(list)
    for r in load_records(Path(data_dir) / "train.json"):
        if r["task_type"] != "comprehension" or r["question_type"] == "report":
            continue
        answer = r["conversations"][1]["value"]
        by_type[(r["question_type"], r["lang"])].append(answer)
        by_question[r["conversations"][0]["value"]].append(answer)
    return {"majority": {k: _most_common(v) for k, v in by_type.items()},
            "blind": {k: _most_common(v) for k, v in by_question.items()}}


def text_baseline_answers(tables: dict[str, dict], records: list[dict]) -> dict[str, list[str]]:
    """Each baseline's answer to every record (a question never seen on train gets the majority)."""
    majority = [tables["majority"].get((r["question_type"], r["lang"]), "") for r in records]
    blind = [tables["blind"].get(r["conversations"][0]["value"], m) for r, m in zip(records, majority)]
    return {"majority answer": majority, "blind text prior": blind}
