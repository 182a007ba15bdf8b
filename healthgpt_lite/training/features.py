"""Frozen work done once: HVP features of every image and VQ codes of every target image.

The vision encoder and the VQGAN are frozen in every HealthGPT stage (docs/PAPERS.md section 1), so
their outputs for a given image never change during training. Computing them once per data
set (an artifact keyed by the vision, VQ and data configs) instead of at every step is what
makes the stages affordable on a CPU; the numbers are identical to running them inline.

Stored per image: the generation features (ViT ``hidden_states[gen_layer]``), the
comprehension features (``hidden_states[comp_layer]``), CLS dropped, as float16; and, for every
image that is some record's target, its VQ code grid.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..artifacts import atomic_save_safetensors, atomic_write_json, load_or_make, read_safetensors
from ..config import Config
from ..data.generate import SPLITS, ensure_dataset
from ..data.io import load_image
from ..data.records import load_records

FEATURE_TASKS = {"comprehension": "comp", "generation": "gen"}


@dataclass
class FeatureStore:
    rows: dict[str, int]  # image path (relative to the data dir) -> row in the feature tensors
    comp: torch.Tensor  # (M, N, D) float16, ViT hidden_states[comp_layer], CLS dropped
    gen: torch.Tensor  # (M, N, D) float16, ViT hidden_states[gen_layer]
    code_rows: dict[str, int]  # target image path -> row in ``codes``
    codes: torch.Tensor  # (K, h, w) int16 VQ indices

    def features(self, paths: list[str], task: str) -> torch.Tensor:
        table = self.comp if task == "comprehension" else self.gen
        return table[[self.rows[p] for p in paths]].float()  # (B, N, D)

    def image_codes(self, path: str) -> torch.Tensor:
        return self.codes[self.code_rows[path]].long()  # (h, w)

    @staticmethod
    def load(path: Path) -> "FeatureStore":
        t = read_safetensors(path / "features.safetensors")
        index = json.loads((path / "index.json").read_text())
        return FeatureStore(index["rows"], t["comp"], t["gen"], index["code_rows"], t["codes"])


def _paths(data_dir: Path) -> tuple[list[str], list[str]]:
    inputs, targets = set(), set()
    for split in SPLITS:
        for r in load_records(data_dir / f"{split}.json"):
            if r.get("image"):
                inputs.add(r["image"])
            if r.get("target_image"):
                targets.add(r["target_image"])
    return sorted(inputs), sorted(targets)


@torch.no_grad()
def ensure_features(cfg: Config, artifacts_dir=None, data_dir=None, progress: bool = False) -> Path:
    """Load-or-compute the feature store (needs the CLIP-lite and VQ artifacts, or real weights)."""
    from ..artifacts import data_dir_for
    from ..vision import load_vision_encoder
    from ..vq import load_vq_tokenizer

    data_dir = ensure_dataset(data_dir or data_dir_for(cfg, artifacts_dir), cfg.data)

    def make(path: Path) -> dict:
        encoder, vq = load_vision_encoder(cfg, artifacts_dir), load_vq_tokenizer(cfg, artifacts_dir)
        inputs, targets = _paths(data_dir)
        comp, gen, codes = [], [], []
        batches = range(0, len(inputs), 64)
        if progress:
            from tqdm.auto import tqdm
            batches = tqdm(batches, desc="HVP features")
        for i in batches:
            pixels = torch.stack([load_image(data_dir / p, size=cfg.vision.image_size) for p in inputs[i:i + 64]])
            comp.append(encoder(pixels, "comprehension").half())  # (b, N, D)
            gen.append(encoder(pixels, "generation").half())
        for i in range(0, len(targets), 64):
            images = torch.stack([load_image(data_dir / p, size=cfg.vq.resolution) for p in targets[i:i + 64]])
            codes.append(vq.encode(images).to(torch.int16))  # (b, h, w)
        atomic_save_safetensors({"comp": torch.cat(comp), "gen": torch.cat(gen), "codes": torch.cat(codes)},
                                path / "features.safetensors")
        atomic_write_json(path / "index.json", {"rows": {p: i for i, p in enumerate(inputs)},
                                                "code_rows": {p: i for i, p in enumerate(targets)}})
        return {"n_images": len(inputs), "n_targets": len(targets)}

    return load_or_make(cfg, "features", ("vision", "vq", "data"), make, artifacts_dir)
