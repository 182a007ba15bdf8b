"""The images a VQ tokenizer learns from: every full-resolution image of one split.

The tokenizer must turn every image the LLM will *read or write* into tokens: inputs of the
comprehension tasks and targets of the generation tasks (CT, MRI, X-ray). The 4x low-resolution
``*_lr.png`` inputs of super-resolution are left out: they reach the model through the vision
encoder, never as VQ tokens.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..data.io import load_image
from ..data.phantoms import MODALITIES
from ..data.records import load_records
from ..errors import InputError


def split_image_paths(data_dir: str | Path, split: str) -> list[str]:
    """Relative paths of the split's full-resolution images, in a stable order."""
    path = Path(data_dir) / f"{split}.json"
    if not path.is_file():
        raise InputError(f"{path}: no such split file; is {data_dir} a VL-Health-lite folder (ensure_dataset)?")
    paths = set()
    for record in load_records(path):
        for key in ("image", "target_image"):
            rel = record.get(key)
            if rel and not Path(rel).stem.endswith("_lr"):
                paths.add(rel)
    if not paths:
        raise InputError(f"{path}: the split has no images")
    return sorted(paths)


def modality_of(rel_path: str) -> str:
    """``images/p00003_mri.png`` -> ``"mri"`` (``"other"`` for images not named by modality)."""
    suffix = Path(rel_path).stem.rsplit("_", 1)[-1]
    return suffix if suffix in MODALITIES else "other"


def load_split_images(data_dir: str | Path, split: str, resolution: int) -> tuple[torch.Tensor, list[str]]:
    """All the split's images as one gray tensor ``(N, 1, R, R)`` in [0, 1] (kept small in
    memory: the model replicates the channel to RGB), and the modality of each."""
    paths = split_image_paths(data_dir, split)
    images = torch.stack([load_image(Path(data_dir) / p, size=resolution, channels=1) for p in paths])  # (N, 1, R, R)
    return images, [modality_of(p) for p in paths]
