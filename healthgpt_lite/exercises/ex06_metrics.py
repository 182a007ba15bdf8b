"""Checkers of exercise 06 (evaluation metrics, docs/PAPERS.md section 4).

q1 ``psnr(pred, target, data_range=1.0) -> (B,)`` and q2 ``ssim(pred, target, data_range=1.0)
-> (B,)`` on (B, 1, H, W) images in [0, 1], checked against torchmetrics (the project's
``eval/metrics.py:image_scores`` uses it); q3 ``normalize_answer(text) -> str``, checked
against ``eval/metrics.py:normalize_answer`` on every answer of the committed sample data set
and decorated variants of them.
"""
from __future__ import annotations

import json
import math

import torch
import torch.nn.functional as F

from ..artifacts import REPO_ROOT
from ..eval.metrics import normalize_answer
from .checking import Case, Question

EXERCISE = "06_metrics"
SAMPLE = REPO_ROOT / "data_samples" / "vl_health_lite"


# ----------------------------------------------------------------------------- given helpers
def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """(size, size) Gaussian weights summing to 1 (SSIM's window: Wang et al. 2004)."""
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2  # (size,)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size)


def local_mean(x: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Gaussian-weighted mean around every pixel of (B, 1, H, W) images, same shape; the borders
    are mirrored (reflect padding), as torchmetrics does."""
    pad = size // 2
    window = gaussian_window(size, sigma).to(x)[None, None]  # (1, 1, size, size)
    return F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="reflect"), window)  # (B, 1, H, W)


# ----------------------------------------------------------------------------- references
def reference_psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(pred, target, data_range=data_range, reduction="none", dim=(1, 2, 3))


def reference_ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(pred, target, data_range=data_range, reduction="none")


def reference_normalize_answer(text: str) -> str:
    return normalize_answer(text)


# ----------------------------------------------------------------------------- image cases
def sample_pairs() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(what, pred, target) pairs: phantoms against noisy, blurred and upsampled versions."""
    from ..data import load_image
    from ..eval.metrics import bicubic_upsample

    target = torch.stack([load_image(SAMPLE / "images" / f"p0000{i}_{m}.png", size=64)[:1]
                          for i in range(3) for m in ("ct", "mri")])  # (6, 1, 64, 64)
    low = torch.stack([load_image(SAMPLE / "images" / f"p0000{i}_{m}_lr.png", size=16)[:1]
                       for i in range(3) for m in ("ct", "mri")])  # (6, 1, 16, 16)
    gen = torch.Generator().manual_seed(0)
    noisy = (target + 0.05 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    blurred = local_mean(target, 5, 1.0)
    return [("six phantoms with Gaussian noise (sigma 0.05)", noisy, target),
            ("six phantoms, blurred", blurred, target),
            ("six phantoms, bicubic 4x upsampling of the 16 px versions", bicubic_upsample(low, 64), target),
            ("two 24x40 random images", torch.rand(2, 1, 24, 40, generator=gen), torch.rand(2, 1, 24, 40, generator=gen))]


def image_cases() -> list[Case]:
    """Every pair at the default data_range, then two of them on other scales: 8-bit values
    (0..255, data_range=255) and the VQGAN's [-1, 1] (data_range=2)."""
    pairs = sample_pairs()
    out = [Case(what, lambda p=pred, t=target: (p.clone(), t.clone())) for what, pred, target in pairs]
    (what, pred, target), (what2, pred2, target2) = pairs[0], pairs[2]
    out.append(Case(f"{what}, as 8-bit values 0..255 with data_range=255",
                    lambda p=pred, t=target: (p * 255, t * 255, 255.0)))
    out.append(Case(f"{what2}, scaled to [-1, 1] (the VQGAN's range) with data_range=2",
                    lambda p=pred2, t=target2: (2 * p - 1, 2 * t - 1, 2.0)))
    return out


def _data_range(args: tuple) -> float:
    return args[2] if len(args) > 2 else 1.0


def _shape_problem(expected: torch.Tensor, got) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"return a torch.Tensor, got {type(got).__name__}"
    if got.shape != expected.shape:
        return f"shape {tuple(got.shape)} but expected one value per image, {tuple(expected.shape)}"
    if torch.isnan(got).any():
        return "the result holds NaN (a 0/0 somewhere: flat image regions have zero variance)"
    return None


def compare_psnr(expected: tuple, got: tuple) -> str | None:
    (want, args), (have, _) = expected, got
    if (problem := _shape_problem(want, have)):
        return problem
    if torch.allclose(have.float(), want, rtol=1e-4, atol=1e-3):
        return None
    data_range = _data_range(args)
    if data_range != 1:
        mse = ((args[0] - args[1]) ** 2).mean(dim=(1, 2, 3))  # (B,)
        if torch.allclose(have.float(), 10 * torch.log10(1 / mse), rtol=1e-4, atol=1e-3):
            return f"your values ignore data_range={data_range:g}: the peak is the largest possible value, not 1"
        if torch.allclose(have.float(), 10 * torch.log10(data_range / mse), rtol=1e-4, atol=1e-3):
            return "the peak enters squared: the signal power is data_range**2, as the error is a squared one"
    ratio = float((have.float() / want).median())
    if abs(ratio - 2) < 0.01 or abs(ratio - 0.5) < 0.005:
        return f"your values are {ratio:.1f}x the expected ones: MSE is already a squared error (the factor before log10)"
    if abs(ratio - math.log(10)) < 0.01:
        return "your values are ln(10) x the expected ones: decibels use log10"
    if abs(ratio + 1) < 0.01:
        return "your values have the wrong sign: PSNR grows as the error shrinks"
    return f"off by up to {float((have.float() - want).abs().max()):.2f} dB"


def observe_with_inputs(args: tuple, returned):
    return returned, args


def compare_ssim(expected: tuple, got: tuple) -> str | None:
    (want, args), (have, _) = expected, got
    pred, target, data_range = args[0], args[1], _data_range(args)
    if (problem := _shape_problem(want, have)):
        return problem
    if torch.allclose(have.float(), want, atol=1e-4):
        return None
    if data_range != 1 and torch.allclose(have.float(), reference_ssim(pred, target, 1.0), atol=1e-4):
        return (f"your values ignore data_range={data_range:g}: the constants C1 and C2 scale with it, so a flat "
                "region is judged on the image's own scale")
    if torch.allclose(have.float(), _global_ssim(pred, target, data_range), atol=1e-4):
        return "your values are SSIM over one global window: SSIM compares local statistics (local_mean), then averages"
    return f"off by up to {float((have.float() - want).abs().max()):.3f} from torchmetrics' SSIM"


def _global_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """The SSIM formula with whole-image statistics: the usual mistake, recognised above."""
    mx, my = x.mean((1, 2, 3)), y.mean((1, 2, 3))  # (B,)
    vx, vy = x.var((1, 2, 3), unbiased=False), y.var((1, 2, 3), unbiased=False)  # (B,)
    cov = ((x - mx[:, None, None, None]) * (y - my[:, None, None, None])).mean((1, 2, 3))  # (B,)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return (2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


# ----------------------------------------------------------------------------- answer cases
def _full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def answer_inputs() -> list[str]:
    """Every VQA answer of the sample data set, and decorated variants of each."""
    answers = set()
    for split in ("train", "val", "test"):
        for rec in json.loads((SAMPLE / f"{split}.json").read_text(encoding="utf-8")):
            if rec["task"] in ("vqa_closed", "vqa_open"):
                answers.add(rec["conversations"][1]["value"])
    inputs = []
    for a in sorted(answers):
        inputs += [a, f"{a}.", f"The {a}", f"  {a.upper()}  ", _full_width(a), f"“{a}”。", f"an {a}!"]
    return inputs + ["是的", "不是", "没有", "X-Ray!", "T2-weighted", "- left lung -", "left  lung", "A", "", "Yes, the liver."]


def answer_cases() -> list[Case]:
    return [Case(f"normalize_answer({text!r})", lambda t=text: (t,)) for text in answer_inputs()]


def compare_answers(expected: str, got) -> str | None:
    if not isinstance(got, str):
        return f"return a str, got {type(got).__name__}"
    return None if got == expected else f"gave {got!r}, which does not follow every rule"


_IMAGE_METRICS = ("torchmetrics.functional.image.psnr", "torchmetrics.functional.image.ssim",
                  "torchmetrics.image.psnr", "torchmetrics.image.ssim", "skimage.metrics.simple_metrics",
                  "skimage.metrics._structural_similarity", "healthgpt_lite.eval.metrics.image_scores")
q1 = Question(EXERCISE, "q1", "psnr", reference_psnr, image_cases, compare_psnr, placeholder=None,
              observe=observe_with_inputs, forbidden=_IMAGE_METRICS,
              hints=("PSNR compares the largest possible signal power with the power of the error, in decibels, for "
                     "each image on its own. Over which dimensions do you average, and what is the largest value "
                     "when the images are 8-bit?",
                     "The error power is the mean squared difference over everything but the batch dimension; the "
                     "signal power is the square of data_range; decibels are ten times a base-10 logarithm of "
                     "their ratio."))
q2 = Question(EXERCISE, "q2", "ssim", reference_ssim, image_cases, compare_ssim, placeholder=None,
              observe=observe_with_inputs, forbidden=_IMAGE_METRICS,
              hints=("Everything in the formula is a *local* statistic: a Gaussian-weighted average around each pixel, "
                     "which local_mean computes. How do you get a local variance and covariance from local means "
                     "alone, and where does data_range enter?",
                     "A variance is the mean of the square minus the square of the mean; a covariance likewise with "
                     "the product. Build the SSIM map pixel by pixel, with both constants from data_range, then "
                     "average the map per image."))
q3 = Question(EXERCISE, "q3", "normalize_answer", reference_normalize_answer, answer_cases, compare_answers,
              placeholder=None, forbidden=("healthgpt_lite.eval.metrics.normalize_answer",
                                           "healthgpt_lite.eval.metrics.exact_match", "healthgpt_lite.eval.metrics._is_punctuation",
                                           "healthgpt_lite.eval.metrics.comprehension_scores"),
              hints=("Apply the four rules in the order given and test each on one tricky answer: a full-width one, "
                     "'T2-weighted', 'The left lung.' and '是的'. Which rule must come before which?",
                     "Unicode normalisation must come first (it turns full-width punctuation into the ASCII you then "
                     "remove); articles are dropped word by word, not as substrings; the synonym table is looked up "
                     "with the whole cleaned answer."))
QUESTIONS = (q1, q2, q3)
