"""What the pixels allow: a small CNN that answers the comprehension questions from the image.

HealthGPT answers through a frozen vision encoder, an adapter and an LLM. To tell "the model
did not learn" from "the image does not show it", this reference is trained directly, with
supervision, on the same training images: a :class:`~healthgpt_lite.eval.small_cnn.SmallCNN`
reads the facts every question is about (modality, lesion count, organs with a lesion, organ
and size of the largest) and :func:`~healthgpt_lite.data.facts.answer_from_facts` turns them
into answers, in the same words as the reference answers. It is not a baseline to beat (it is
given the answer's structure); it is the yardstick for how much the pixels hold at this size.

Given the vision encoder, the same reference reads the **frozen ViT tokens** the language model
reads (``hidden_states[comp_layer]``, CLS dropped) with a
:class:`~healthgpt_lite.eval.small_cnn.TokenGridCNN` ("features CNN"): what the frozen features
allow. Between the two it tells where a comprehension shortfall is: pixels high and features low,
the encoder lost it; both high and the model low, the adapter, plugin and LLM did not learn to
read it.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.facts import ImageFacts, answer_from_facts, facts_of
from ..data.io import load_image
from ..data.phantoms import LESION_ORGANS, MODALITIES, SIZE_CLASSES, Patient
from ..data.records import load_records
from .small_cnn import SmallCNN, TokenGridCNN

ORGANS, SIZES = ("none", *LESION_ORGANS), ("none", *SIZE_CLASSES)
HEADS = {"modality": len(MODALITIES), "count": 4, "organs": len(LESION_ORGANS), "largest_organ": len(ORGANS),
         "largest_size": len(SIZES)}


def _targets(facts: list[ImageFacts]) -> dict[str, torch.Tensor]:
    return {"modality": torch.tensor([MODALITIES.index(f.modality) for f in facts]),
            "count": torch.tensor([f.count for f in facts]),
            "organs": torch.tensor([[float(o in f.organs) for o in LESION_ORGANS] for f in facts]),
            "largest_organ": torch.tensor([ORGANS.index(f.largest[0]) if f.largest else 0 for f in facts]),
            "largest_size": torch.tensor([SIZES.index(f.largest[1]) if f.largest else 0 for f in facts])}


def split_images(data_dir: Path, split: str, size: int) -> tuple[torch.Tensor, list[str], list[ImageFacts]]:
    """Every input image of a split's comprehension records: (M, 3, size, size), paths, facts."""
    patients = {p["pid"]: Patient.from_dict(p) for p in json.loads((Path(data_dir) / "patients.json").read_text())}
    seen = {}
    for r in load_records(Path(data_dir) / f"{split}.json"):
        if r["task_type"] == "comprehension" and r["image"] not in seen:
            seen[r["image"]] = facts_of(patients[r["patient"]], r["modality"])
    paths = sorted(seen)
    return torch.stack([load_image(Path(data_dir) / p, size=size) for p in paths]), paths, [seen[p] for p in paths]


class PixelReference:
    """``fit`` on the train images, then ``answers(records)`` in the records' own words.
    ``encoder``: read its comprehension tokens instead of the pixels (the "features CNN")."""

    def __init__(self, net: SmallCNN | TokenGridCNN, size: int, encoder=None):
        self.net, self.size, self.encoder = net.eval(), size, encoder

    @torch.no_grad()
    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """What the CNN reads: the images, or the encoder's (B, N, D) comprehension tokens."""
        if self.encoder is None:
            return images
        return torch.cat([self.encoder(images[i:i + 256], "comprehension").float() for i in range(0, len(images), 256)])

    @staticmethod
    def fit(data_dir: Path, size: int, steps: int = 800, width: int = 16, seed: int = 0,
            progress: bool = False, encoder=None) -> "PixelReference":
        torch.manual_seed(seed)
        images, _, facts = split_images(data_dir, "train", size)
        targets = _targets(facts)
        net = SmallCNN(HEADS, width) if encoder is None else TokenGridCNN(HEADS, encoder.hidden_size, width)
        reference = PixelReference(net, size, encoder)
        images = reference.inputs(images)  # (M, 3, S, S) or (M, N, D), computed once: the encoder is frozen
        net.train()
        opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-2)
        steps_iter = range(steps)
        if progress:
            from tqdm.auto import tqdm
            steps_iter = tqdm(steps_iter, desc="pixel reference CNN" if encoder is None else "features CNN")
        for _ in steps_iter:
            idx = torch.randint(0, len(images), (32,))
            out = net(images[idx])
            loss = sum(F.cross_entropy(out[k], targets[k][idx]) for k in HEADS if k != "organs") + \
                F.binary_cross_entropy_with_logits(out["organs"], targets["organs"][idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        return reference

    @torch.no_grad()
    def read(self, images: torch.Tensor) -> list[ImageFacts]:
        """(B, C, H, W) -> the facts the CNN reads off each image."""
        out = self.net(self.inputs(images))
        facts = []
        for i in range(len(images)):
            organ, size = ORGANS[int(out["largest_organ"][i].argmax())], SIZES[int(out["largest_size"][i].argmax())]
            facts.append(ImageFacts(MODALITIES[int(out["modality"][i].argmax())], int(out["count"][i].argmax()),
                                    frozenset(o for o, v in zip(LESION_ORGANS, out["organs"][i]) if v > 0),
                                    None if "none" in (organ, size) else (organ, size)))
        return facts

    def answers(self, records: list[dict], data_dir: Path) -> list[str]:
        """The CNN's answer to each comprehension record (reports get no answer: '')."""
        paths = sorted({r["image"] for r in records})
        read = {}
        for i in range(0, len(paths), 256):
            chunk = paths[i:i + 256]
            images = torch.stack([load_image(Path(data_dir) / p, size=self.size) for p in chunk])
            read.update(zip(chunk, self.read(images)))
        return ["" if r["question_type"] == "report" else
                answer_from_facts(read[r["image"]], r["question_type"], r["conversations"][0]["value"], r["lang"])
                for r in records]
