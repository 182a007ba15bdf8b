"""The metrics of docs/PAPERS.md section 4: comprehension accuracy (closed), normalised exact match
(open), BLEU / ROUGE-L (reports); generation SSIM / PSNR / MSE, each per task.

Images are compared as float tensors in [0, 1] (data range 1), single channel: the phantoms are
grayscale and a 3-channel copy would only triple-count the same pixels.
"""
from __future__ import annotations

import string
import unicodedata
from collections import defaultdict
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

ARTICLES = {"a", "an", "the"}
# Answers that mean the same thing in either language (closed questions are graded in their own language,
# but "yes." / "Yes" / "是" / "是的" must all count). The Chinese yes/no forms are those SLAKE's closed
# questions are answered with (是的 / 不是 / 包含 / 不包含 / 有 / 没有 / 存在 / 可以 ...).
SYNONYMS = {"yes": "yes", "是": "yes", "是的": "yes", "都是": "yes", "对": "yes", "有": "yes", "存在": "yes",
            "包含": "yes", "包括": "yes", "可以": "yes",
            "no": "no", "否": "no", "不是": "no", "不对": "no", "没有": "no", "不存在": "no", "不包含": "no",
            "不包括": "no", "不可以": "no",
            "x-ray": "xray", "x光": "xray", "xray": "xray", "none": "none", "无": "none"}
# Number words as digits, as LLaVA-Med's evaluation does (its ``manual_map``; "none" stays a word here:
# VL-Health-lite answers "none" where no lesion has a location).
NUMBER_WORDS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}
YES_NO_TERMS = {t: v for t, v in SYNONYMS.items() if v in ("yes", "no")}


def normalize_answer(text: str) -> str:
    """VQA-style normalisation: Unicode NFKC (full-width -> ASCII), lower case, punctuation
    (ASCII and CJK) and English articles removed, number words as digits, whitespace collapsed,
    synonyms mapped."""
    text = unicodedata.normalize("NFKC", text).lower().strip()
    text = "".join(" " if _is_punctuation(ch) else ch for ch in text)
    words = [NUMBER_WORDS.get(w, w) for w in text.split() if w not in ARTICLES]
    text = " ".join(words).strip(" -")
    return SYNONYMS.get(text, text)


def _is_punctuation(ch: str) -> bool:
    return ch != "-" and (ch in string.punctuation or unicodedata.category(ch).startswith("P"))


def yes_no(text: str) -> str | None:
    """The closed-answer normalisation: "yes" / "no" for an answer that gives one, else ``None``.

    "Yes, it is." -> yes, "No." -> no, "是的，包含肝脏" -> yes, "图中不包含" -> no. The first yes/no word
    decides (English: whole words; Chinese: the earliest term, the longer one where two start together,
    so 不包含 is read before 包含). This is LLaVA-Med's closed-question rule (``llava/eval/run_eval.py``:
    right when the prediction mentions yes/no and contains the reference), at the word level, without
    its two flaws: the substring match ("no" in "nodule") and wrong yes/no answers left out of the count.
    """
    norm = normalize_answer(text)
    if norm in ("yes", "no"):
        return norm
    words, best = norm.split(), None  # (position, -length, meaning)
    for term, meaning in YES_NO_TERMS.items():
        if term.isascii():
            pos = next((sum(len(w) + 1 for w in words[:i]) for i, w in enumerate(words) if w == term), -1)
        else:
            pos = norm.find(term)
        if pos >= 0 and (best is None or (pos, -len(term)) < best[:2]):
            best = (pos, -len(term), meaning)
    return best[2] if best else None


def exact_match(prediction: str, reference: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(reference)


def comprehension_scores(rows: Iterable[dict]) -> dict:
    """``rows``: dicts with ``question_type``, ``modality``, ``lang``, ``prediction``, ``answer``.

    Returns accuracy on closed questions (yes/no, choice), exact match on open ones, and the
    same broken down by question type, modality and language."""
    buckets: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        if r["question_type"] == "report":
            continue
        ok = exact_match(r["prediction"], r["answer"])
        kind = "closed" if r["question_type"] in ("yes_no", "choice") else "open"
        for key in (kind, f"{kind}/{r['question_type']}", f"{kind}/modality={r['modality']}", f"{kind}/lang={r['lang']}"):
            buckets[key].append(ok)
    return {k: sum(v) / len(v) for k, v in sorted(buckets.items())} | {f"n/{k}": len(v) for k, v in sorted(buckets.items()) if "/" not in k}


def _text_units(text: str, lang: str) -> str:
    """BLEU/ROUGE work on words; Chinese has no spaces, so it is scored per character."""
    return " ".join(ch for ch in text if not ch.isspace()) if lang == "zh" else text


def report_scores(predictions: Sequence[str], references: Sequence[str], langs: Sequence[str]) -> dict:
    """Corpus BLEU-4 and mean ROUGE-L F1 of generated reports (torchmetrics)."""
    from torchmetrics.text import BLEUScore
    from torchmetrics.text.rouge import ROUGEScore

    if not predictions:
        return {}
    preds = [_text_units(p, l) for p, l in zip(predictions, langs)]
    refs = [_text_units(r, l) for r, l in zip(references, langs)]
    bleu = BLEUScore(n_gram=4, smooth=True)(preds, [[r] for r in refs])
    rouge = ROUGEScore(rouge_keys="rougeL", tokenizer=str.split, normalizer=lambda s: s.lower())(preds, refs)
    return {"bleu4": float(bleu), "rougeL_f1": float(rouge["rougeL_fmeasure"])}


# ----------------------------------------------------------------------------- images
def _as_batch(x: torch.Tensor) -> torch.Tensor:
    """(H, W) | (C, H, W) | (B, C, H, W) -> (B, 1, H, W) gray, float."""
    x = x.float()
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[None]
    return x.mean(1, keepdim=True) if x.shape[1] != 1 else x


def psnr_and_ssim(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The one home of the generation metrics (docs/PAPERS.md section 4): per-image PSNR (dB) and
    SSIM of ``(B, C, H, W)`` images on the [0, 1] scale (``data_range=1``) -> ``(B,)``, ``(B,)``."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    psnr = peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(pred, target, data_range=1.0, reduction="none")
    return psnr, ssim


def image_scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image SSIM, PSNR (dB) and MSE between images in [0, 1], compared in grey; each a (B,) tensor."""
    p, t = _as_batch(pred).clamp(0, 1), _as_batch(target).clamp(0, 1)
    if p.shape != t.shape:
        raise ValueError(f"prediction {tuple(p.shape)} and target {tuple(t.shape)} differ in shape")
    psnr, ssim = psnr_and_ssim(p, t)
    mse = ((p - t) ** 2).mean(dim=(1, 2, 3))
    return {"ssim": ssim, "psnr": psnr, "mse": mse}


def bicubic_upsample(low_res: torch.Tensor, size: int) -> torch.Tensor:
    """The super-resolution baseline: bicubic interpolation of the low-resolution input."""
    return F.interpolate(_as_batch(low_res), size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def mean_scores(scores: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v.mean()) for k, v in scores.items()}


