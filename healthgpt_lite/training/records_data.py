"""Training on real data in LLaVA JSON: VL-Health's own files, or VQA-RAD / SLAKE / PathVQA
converted by ``python -m healthgpt_lite data convert``.

The synthetic set caches every image's ViT features and VQ codes once (``features.py``); a
real corpus (1.5M images at 336 px) cannot, so here each batch carries **pixels** and the
model's frozen parts run inline on the GPU: the CLIP ViT gives the HVP features and the
VQGAN encodes generation targets. The numbers are the same as the cache would give.

One file per task type and split (``data.train_records: {comprehension: ..., generation: ...}``):

* comprehension: ``{"image": "rel/path.png", "conversations": [{"from": "human", "value":
  "<image>\\n..."}, {"from": "gpt", "value": "..."}]}``; the first human/gpt pair is the example
  (later turns of a multi-turn record are not used);
* generation: the same plus ``"target_image": "rel/path.png"``; its gpt turn is ignored, the
  target becomes ``<start_index> <idx_..>*h*w <end_index>`` (docs/PAPERS.md section 1).

Image paths are relative to ``image_root``. Text is tokenised lazily, per item (DataLoader
workers), so a 766k-record file starts training at once.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..config import Config
from ..data.io import load_image
from ..data.records import load_records
from ..errors import InputError
from ..model.multimodal import IGNORE_INDEX, collate, encode_example


def load_task_records(path: str | Path, task: str, image_root: Path) -> list[dict]:
    """Records of one task type, checked: LLaVA shape, and generation records name a target
    image; the first record's images must exist (a wrong ``image_root`` fails here, not at step 1000)."""
    records = load_records(path)
    if not records:
        raise InputError(f"{path}: no records")
    if task == "generation":
        bad = next((i for i, r in enumerate(records) if not r.get("target_image")), None)
        if bad is not None:
            raise InputError(f"{path} record {bad}: a generation record needs 'target_image' (the image to produce)")
    first = records[0]
    for key in ("image", "target_image"):
        if first.get(key) and not (image_root / first[key]).is_file():
            raise InputError(f"{path} record 0: {key} {first[key]!r} not found under image_root={image_root}")
    return records


class RecordsDataset(Dataset):
    """Token ids, labels and pixels of one task type's records, encoded when an item is read."""

    def __init__(self, records: list[dict], tokenizer, cfg: Config, task: str, image_root: Path):
        self.records, self.tok, self.cfg, self.task, self.root = records, tokenizer, cfg, task, image_root

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        r, cfg = self.records[i], self.cfg
        user = r["conversations"][0]["value"]
        n_vis, max_len = cfg.vision.num_tokens, cfg.llm.max_position_embeddings
        item = {"pixels": load_image(self.root / r["image"], size=cfg.vision.image_size) if r.get("image") else None}
        if self.task == "generation":
            grid = torch.zeros(cfg.vq.grid_size, cfg.vq.grid_size, dtype=torch.long)  # codes filled on the GPU
            item.update(encode_example(self.tok, user, n_vis, max_len, image_codes=grid, generation=True))
            item["target_pixels"] = load_image(self.root / r["target_image"], size=cfg.vq.resolution)
        else:
            item.update(encode_example(self.tok, user, n_vis, max_len, answer=r["conversations"][1]["value"]))
        return item


class PixelCollator:
    """Pads token ids and stacks the pixels of the examples that have an input image."""

    def __init__(self, pad_id: int, task: str):
        self.pad_id, self.task = pad_id, task

    def __call__(self, examples: list[dict]) -> dict:
        batch = collate(examples, self.pad_id)
        with_image = [e["pixels"] for e in examples if e["pixels"] is not None]
        batch["pixels"] = torch.stack(with_image) if with_image else None  # (M, 3, S, S)
        if self.task == "generation":
            batch["target_pixels"] = torch.stack([e["target_pixels"] for e in examples])  # (B, 3, R, R)
        batch["task"] = self.task
        return batch


def fill_target_codes(batch: dict, codes: torch.Tensor, first_idx: int) -> None:
    """Write the VQ codes of the target images into ``input_ids`` and ``labels``, in place.

    codes (B, h, w): each row's target starts at its first labelled position (the response
    begins right after the prompt's ``<start_index>``) and takes h*w tokens, raster order."""
    flat = codes.reshape(codes.shape[0], -1) + first_idx  # (B, h*w) token ids
    n = flat.shape[1]
    for b in range(flat.shape[0]):
        start = int((batch["labels"][b] != IGNORE_INDEX).nonzero()[0])
        batch["input_ids"][b, start:start + n] = flat[b]
        batch["labels"][b, start:start + n] = flat[b]
