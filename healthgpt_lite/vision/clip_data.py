"""Image-caption pairs for CLIP-lite, made from VL-Health-lite's ground truth.

Every image of a split (CT, MRI and X-ray of each patient) gets two captions, as COCO gives
an image several:

* the **report**, the same English text as the ``report`` records
  ("Coronal CT of the chest and upper abdomen. Two lesions: a small 28 mm lesion in the liver, ...");
* a **short caption**, its first sentence and the lesion count
  ("Coronal CT of the chest and upper abdomen. Two lesions."), which zero-shot evaluation
  uses as its candidate texts (``retrieval.py``).

A training step draws one of the two at random per image (a choice written down here).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.io import load_image
from ..data.phantoms import MODALITIES, Patient
from ..data.records import COUNT_WORD, VIEW, image_name, report_text
from ..errors import InputError

MAX_LESIONS = 3


def short_caption(modality: str, n_lesions: int) -> str:
    """The view and the lesion count: what zero-shot classification compares an image with."""
    if n_lesions == 0:
        return f"{VIEW['en'][modality]}. No focal lesion."  # = the report of a healthy patient
    noun = "lesion" if n_lesions == 1 else "lesions"
    return f"{VIEW['en'][modality]}. {COUNT_WORD['en'][n_lesions]} {noun}."


@dataclass
class CaptionedImages:
    """One split's images (gray, uint8 to stay small) with their captions and ground truth."""

    images: torch.Tensor  # (M, 1, S, S) uint8
    reports: list[str]
    shorts: list[str]
    modality: torch.Tensor  # (M,) index into MODALITIES
    n_lesions: torch.Tensor  # (M,) 0..3
    lesion_in: dict[str, torch.Tensor]  # organ -> (M,) bool
    patients: list[str]

    def __len__(self) -> int:
        return len(self.reports)

    def head(self, n: int) -> "CaptionedImages":
        """The first ``n`` images (whole patients first: images are stored patient by patient)."""
        return CaptionedImages(self.images[:n], self.reports[:n], self.shorts[:n], self.modality[:n],
                               self.n_lesions[:n], {k: v[:n] for k, v in self.lesion_in.items()}, self.patients[:n])

    def __add__(self, other: "CaptionedImages") -> "CaptionedImages":
        return CaptionedImages(torch.cat([self.images, other.images]), self.reports + other.reports,
                               self.shorts + other.shorts, torch.cat([self.modality, other.modality]),
                               torch.cat([self.n_lesions, other.n_lesions]),
                               {k: torch.cat([v, other.lesion_in[k]]) for k, v in self.lesion_in.items()},
                               self.patients + other.patients)

    def pixels(self, index=slice(None)) -> torch.Tensor:
        """``(M, 3, S, S)`` float in [0, 1], the encoder's input."""
        return (self.images[index].float() / 255).expand(-1, 3, -1, -1)


def load_captioned_images(data_dir: str | Path, split: str, image_size: int) -> CaptionedImages:
    """Every (patient, modality) image of ``split`` with its captions, from ``patients.json``."""
    data_dir = Path(data_dir)
    truth_file = data_dir / "patients.json"
    if not truth_file.is_file():
        raise InputError(f"{data_dir}: no VL-Health-lite ground truth (patients.json); make it with ensure_dataset")
    truth = [d for d in json.loads(truth_file.read_text(encoding="utf-8")) if d.get("split") == split]
    if not truth:
        raise InputError(f"{data_dir}: no patients in split {split!r}")
    return _captioned([Patient.from_dict(d) for d in truth], image_size,
                      lambda p, m: load_image(data_dir / image_name(p, m), size=image_size, channels=1))


def captioned_phantoms(n_patients: int, seed: int, image_size: int, data_image_size: int) -> CaptionedImages:
    """``n_patients`` fresh virtual patients, never in VL-Health-lite (another seed), rendered as
    the data set renders them (at ``data_image_size``, stored 8-bit, resized to the encoder's size):
    CLIP-lite's stand-in for the web-scale pretraining data CLIP saw before any medical task."""
    from ..data.phantoms import make_patient, render, to_uint8

    def image(p: Patient, m: str) -> torch.Tensor:
        pixels = torch.from_numpy(to_uint8(render(p, m, data_image_size))).float()[None, None] / 255  # (1, 1, S, S)
        if data_image_size != image_size:
            pixels = torch.nn.functional.interpolate(pixels, size=(image_size, image_size), mode="bicubic",
                                                     align_corners=False, antialias=True).clamp(0, 1)
        return pixels[0]

    return _captioned([make_patient(i, seed) for i in range(n_patients)], image_size, image)


def _captioned(patients: list[Patient], image_size: int, image_of) -> CaptionedImages:
    images, reports, shorts, modality, counts, organs, pids = [], [], [], [], [], [], []
    for p in patients:
        for m_index, m in enumerate(MODALITIES):
            img = image_of(p, m)  # (1, S, S) in [0, 1]
            images.append((img * 255).round().to(torch.uint8))
            reports.append(report_text(p, m, "en"))
            shorts.append(short_caption(m, len(p.lesions)))
            modality.append(m_index), counts.append(len(p.lesions)), pids.append(p.pid)
            organs.append({l.organ for l in p.lesions})
    lesion_in = {o: torch.tensor([o in s for s in organs]) for o in ("right lung", "left lung", "liver")}
    return CaptionedImages(torch.stack(images), reports, shorts, torch.tensor(modality), torch.tensor(counts),
                           lesion_in, pids)


class CaptionPairs(torch.utils.data.Dataset):
    """``(pixels (3, S, S), caption)`` with the caption drawn from (report, short) at random.

    ``augment=True`` (training) shifts the image by a few pixels and jitters its contrast:
    a few hundred images are seen dozens of times, and neither change alters the caption
    (no flips: they would swap the patient's left and right lung)."""

    def __init__(self, data: CaptionedImages, seed: int = 0, short_fraction: float = 0.5, augment: bool = False):
        self.data, self.short_fraction, self.augment = data, short_fraction, augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        text = self.data.shorts[i] if self.rng.random() < self.short_fraction else self.data.reports[i]
        pixels = self.data.pixels(slice(i, i + 1))[0]  # (3, S, S)
        return (self.jitter(pixels) if self.augment else pixels), text

    def jitter(self, x: torch.Tensor, max_shift: int = 3) -> torch.Tensor:
        dy, dx = (int(d) for d in self.rng.integers(-max_shift, max_shift + 1, size=2))
        x = torch.nn.functional.pad(x, (max_shift,) * 4)[:, max_shift + dy:, max_shift + dx:]  # shift, black fill
        x = x[:, : self.data.images.shape[-2], : self.data.images.shape[-1]]  # (3, S, S)
        gain, offset = self.rng.uniform(0.85, 1.15), self.rng.uniform(-0.05, 0.05)
        return (x * gain + offset).clamp(0, 1)


def tokenize_captions(tokenizer, texts: list[str], max_len: int) -> dict[str, torch.Tensor]:
    """Token ids + EOS (CLIP's text tower pools at the first EOS), padded with EOS, cut at ``max_len``."""
    eos = tokenizer.eos_token_id
    rows = [tokenizer(t, add_special_tokens=False)["input_ids"][: max_len - 1] + [eos] for t in texts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), eos, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
    return {"input_ids": ids, "attention_mask": mask}


def collate_pairs(tokenizer, max_len: int):
    """A DataLoader ``collate_fn``: stacks pixels, tokenizes captions."""

    def collate(batch):
        pixels = torch.stack([b[0] for b in batch])  # (B, 3, S, S)
        return {"pixels": pixels, **tokenize_captions(tokenizer, [b[1] for b in batch], max_len)}

    return collate
