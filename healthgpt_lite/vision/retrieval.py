"""Zero-shot retrieval: does CLIP-lite's image space line up with the words?

Two measurements on held-out (test) images, each next to its chance level:

* **zero-shot classification**: compare an image with the 12 short captions
  "<view of modality m>. <k> lesions." (3 modalities x 0-3 lesions, ``clip_data.short_caption``)
  and read the modality and the lesion count off the best match (CLIP's zero-shot recipe);
* **in-batch retrieval**: among ``B`` test images and their reports, image -> text and
  text -> image top-1. Identical reports (e.g. two healthy CTs) count as correct, and the
  chance level accounts for them.
"""
from __future__ import annotations

import torch
from transformers import CLIPModel

from ..config import Config
from ..data.phantoms import MODALITIES
from .clip_data import MAX_LESIONS, CaptionedImages, short_caption, tokenize_captions
from .encoder import normalize_pixels


@torch.no_grad()
def embed_images(clip: CLIPModel, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """``(M, 3, S, S)`` in [0, 1] -> unit vectors ``(M, projection_dim)``."""
    out = [clip.get_image_features(pixel_values=normalize_pixels(pixels[i:i + batch_size])).pooler_output
           for i in range(0, len(pixels), batch_size)]
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


@torch.no_grad()
def embed_texts(clip: CLIPModel, tokenizer, texts: list[str], max_len: int) -> torch.Tensor:
    """Captions -> unit vectors ``(T, projection_dim)``."""
    feats = clip.get_text_features(**tokenize_captions(tokenizer, texts, max_len)).pooler_output
    return torch.nn.functional.normalize(feats, dim=-1)


def zero_shot(clip: CLIPModel, tokenizer, data: CaptionedImages, max_len: int) -> dict[str, float]:
    """Modality and lesion-count accuracy from the best of the 12 short captions."""
    combos = [(m, k) for m in range(len(MODALITIES)) for k in range(MAX_LESIONS + 1)]
    texts = embed_texts(clip, tokenizer, [short_caption(MODALITIES[m], k) for m, k in combos], max_len)  # (12, P)
    best = (embed_images(clip, data.pixels()) @ texts.T).argmax(-1)  # (M,)
    pred_m = torch.tensor([combos[i][0] for i in best])
    pred_k = torch.tensor([combos[i][1] for i in best])
    majority_k = data.n_lesions.mode().values  # the count a blind guesser would say
    return {"modality_acc": (pred_m == data.modality).float().mean().item(),
            "modality_chance": 1 / len(MODALITIES),
            "count_acc": (pred_k == data.n_lesions).float().mean().item(),
            "count_chance": 1 / (MAX_LESIONS + 1),
            "count_majority": (data.n_lesions == majority_k).float().mean().item(),
            "joint_acc": ((pred_m == data.modality) & (pred_k == data.n_lesions)).float().mean().item(),
            "joint_chance": 1 / len(combos)}


def in_batch_retrieval(clip: CLIPModel, tokenizer, data: CaptionedImages, max_len: int,
                       batch_size: int = 32) -> dict[str, float]:
    """Top-1 image->report and report->image within batches of ``batch_size`` test pairs."""
    img = embed_images(clip, data.pixels())  # (M, P)
    txt = embed_texts(clip, tokenizer, data.reports, max_len)  # (M, P)
    hits_i2t, hits_t2i, chance, n = 0.0, 0.0, 0.0, 0
    for s in range(0, len(data), batch_size):
        idx = list(range(s, min(s + batch_size, len(data))))
        same = torch.tensor([[data.reports[i] == data.reports[j] for j in idx] for i in idx])  # (b, b)
        sim = img[idx] @ txt[idx].T  # (b, b)
        rows = torch.arange(len(idx))
        hits_i2t += same[rows, sim.argmax(1)].float().sum().item()
        hits_t2i += same[sim.argmax(0), rows].float().sum().item()
        chance += (same.float().sum(1) / len(idx)).sum().item()
        n += len(idx)
    return {"i2t_top1": hits_i2t / n, "t2i_top1": hits_t2i / n, "retrieval_chance": chance / n,
            "retrieval_batch": min(batch_size, len(data))}


def evaluate_retrieval(clip: CLIPModel, tokenizer, data: CaptionedImages, cfg: Config) -> dict[str, float]:
    """Both measurements, rounded, for ``meta.json`` and reports."""
    clip = clip.eval()
    scores = {**zero_shot(clip, tokenizer, data, cfg.vision.clip_text_max_len),
              **in_batch_retrieval(clip, tokenizer, data, cfg.vision.clip_text_max_len), "test_images": len(data)}
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in scores.items()}


def retrieval_rows(scores: dict) -> list[dict]:
    """The scores of :func:`evaluate_retrieval` as a table: measure, CLIP-lite, chance (, majority)."""
    b, chance = scores["retrieval_batch"], scores["retrieval_chance"]

    def row(measure: str, key: str, base: float, **extra) -> dict:
        return {"measure": measure, "CLIP-lite": scores[key], "chance": base, **extra}

    return [row("modality (3-way zero-shot)", "modality_acc", scores["modality_chance"]),
            row("lesion count (4-way zero-shot)", "count_acc", scores["count_chance"], majority=scores["count_majority"]),
            row("modality and count (12-way)", "joint_acc", scores["joint_chance"]),
            row(f"image -> report top-1 (batch {b})", "i2t_top1", chance),
            row(f"report -> image top-1 (batch {b})", "t2i_top1", chance)]
