# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 06 · Evaluation metrics: PSNR, SSIM and VQA answer normalisation
#
# **Learning objectives.** After this exercise you can
# 1. compute PSNR per image and say what a difference of 3 dB means;
# 2. compute SSIM from local means, variances and covariance, exactly as torchmetrics does;
# 3. normalise free-text VQA answers so that "Yes." and "是" count as the same answer, and see
#    how much an unnormalised exact match under-counts.
#
# HealthGPT reports SSIM / PSNR / MSE for generation and accuracy for comprehension (docs/PAPERS.md
# §4); the project's versions are in `healthgpt_lite/eval/metrics.py`. Write the code where a
# cell says `return None  # your code here`, run the `check()` cell below it, and use
# `q1.hint()` (then `q1.hint(2)`) / `q1.solution()` when stuck. A blank answer does not stop the
# notebook: later cells then use the reference (set `STRICT = True` to make them fail instead).
# Calling the package's own implementation is not an answer: the check notices.

# %% tags=["parameters"]
PROFILE = "cpu"  # cpu: the learning run (reuses `make reproduce` artifacts) | smoke: CI, learns nothing
PRESET = "tiny"
SEED = 0
ARTIFACTS_DIR = None
DATA_DIR = None
OVERRIDES = {}
STRICT = False  # True: a blank or wrong answer stops the notebook

# %%
from healthgpt_lite.exercises import load_questions
from healthgpt_lite.course.notebook import setup

run = setup(PROFILE, PRESET, SEED, ARTIFACTS_DIR, DATA_DIR, OVERRIDES)
q1, q2, q3 = load_questions("06_metrics", globals(), strict=STRICT)

# %% [markdown]
# ## Q1 · PSNR
#
# For images whose values can span `data_range` (1 for [0, 1], 255 for 8-bit values, 2 for the
# VQGAN's [-1, 1]), the peak signal-to-noise ratio is
#
# $$\mathrm{PSNR} = 10 \log_{10} \frac{\text{data\_range}^2}{\mathrm{MSE}}\ \text{dB},$$
#
# with MSE the mean squared error **of each image** (not of the whole batch). Write
# `psnr(pred, target, data_range=1.0)` for `(B, 1, H, W)` tensors, returning a `(B,)` tensor.

# %%
import torch


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(B,) PSNR in dB of each image of ``pred`` against ``target`` (B, 1, H, W)."""
    ### BEGIN SOLUTION stub: return None  # your code here
    mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))  # (B,)
    return 10 * torch.log10(data_range**2 / mse)
    ### END SOLUTION


# %%
q1.check()

# %%
# q1.hint()
# q1.hint(2)
# q1.solution()

# %% [markdown]
# ## Q2 · SSIM
#
# PSNR only sees pixel errors. SSIM (Wang et al. 2004) compares *structure*: around every pixel
# it takes Gaussian-weighted local statistics of both images (`local_mean` below: an 11×11
# window, σ = 1.5, borders mirrored), combines them into a similarity map, and averages the
# map over the image. With μ the local means, σ² the local variances
# (σ²ₓ = m(x²) − μₓ²), σₓᵧ the local covariance (m(xy) − μₓμᵧ), L = data_range,
# C₁ = (0.01 L)², C₂ = (0.03 L)²:
#
# $$\mathrm{SSIM} = \operatorname{mean}\ \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}{(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}.$$
#
# The constants keep the fraction defined where an image is flat (the phantoms' black
# background). Write `ssim(pred, target, data_range=1.0)` returning a `(B,)` tensor.

# %%
from healthgpt_lite.exercises.ex06_metrics import local_mean  # (B, 1, H, W) -> (B, 1, H, W)


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(B,) mean SSIM of each image of ``pred`` against ``target`` (B, 1, H, W)."""
    ### BEGIN SOLUTION stub: return None  # your code here
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = local_mean(pred), local_mean(target)  # (B, 1, H, W)
    var_x = local_mean(pred * pred) - mu_x**2
    var_y = local_mean(target * target) - mu_y**2
    cov = local_mean(pred * target) - mu_x * mu_y
    ssim_map = (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))  # (B,)
    ### END SOLUTION


# %%
q2.check()

# %%
# q2.hint()
# q2.hint(2)
# q2.solution()

# %% [markdown]
# ### Your metrics on super-resolution
#
# The 4× super-resolution task of VL-Health-lite gives a 16 px image and asks for the 64 px
# one. Two baselines any model must beat: nearest-neighbour and bicubic upsampling. Your
# functions score them next to the project's `image_scores` (torchmetrics); the columns agree
# when your code is right.

# %%
import pandas as pd
import torch.nn.functional as F

from healthgpt_lite.data import load_image, load_records
from healthgpt_lite.data.text_tokenizer import REPO_ROOT
from healthgpt_lite.eval.metrics import bicubic_upsample, image_scores
from healthgpt_lite.viz.plots import show_scans

sample = REPO_ROOT / "data_samples" / "vl_health_lite"
sr = [r for r in load_records(sample / "train.json") if r["task"] == "super_resolution"]
low = torch.stack([load_image(sample / r["image"], size=16)[:1] for r in sr])  # (B, 1, 16, 16)
high = torch.stack([load_image(sample / r["target_image"], size=64)[:1] for r in sr])  # (B, 1, 64, 64)
methods = {"nearest": F.interpolate(low, size=64, mode="nearest"), "bicubic": bicubic_upsample(low, 64)}
rows = []
for name, up in methods.items():
    project = image_scores(up, high)
    rows.append({"method": name, "your PSNR (dB)": float(psnr(up, high).mean()), "project PSNR": float(project["psnr"].mean()),
                 "your SSIM": float(ssim(up, high).mean()), "project SSIM": float(project["ssim"].mean())})
display(pd.DataFrame(rows).round(3))
show_scans([low[0], methods["nearest"][0], methods["bicubic"][0], high[0]],
           ["16 px input", "nearest", "bicubic", "64 px target"])

# %% [markdown]
# ## Q3 · VQA answer normalisation
#
# Open questions are scored by exact match, and "The left lung." should match "left lung",
# "Ｙｅｓ" should match "Yes", "是的" should match "是". Write `normalize_answer(text)` that
# applies these rules, in this order:
#
# 1. Unicode NFKC (`unicodedata.normalize("NFKC", text)`: full-width "Ｙｅｓ！" → "Yes!"),
#    lower case, strip;
# 2. every punctuation character becomes a space, **except** the hyphen `-` (so "T2-weighted"
#    survives): a character is punctuation if it is in `string.punctuation` or its Unicode
#    category starts with "P" (`unicodedata.category(ch)`, this catches "。" and "“");
# 3. split into words and drop the English articles in `ARTICLES`; join with single spaces;
#    strip spaces and hyphens from both ends (`.strip(" -")`);
# 4. map the whole result through `SYNONYMS` (e.g. "是的" → "yes", "x-ray" → "xray") when it is a key.

# %%
import string
import unicodedata

from healthgpt_lite.eval.metrics import ARTICLES, SYNONYMS


def normalize_answer(text: str) -> str:
    """The canonical form of a VQA answer (two answers match when their forms are equal)."""
    ### BEGIN SOLUTION stub: return None  # your code here
    text = unicodedata.normalize("NFKC", text).lower().strip()
    is_punct = lambda ch: ch != "-" and (ch in string.punctuation or unicodedata.category(ch).startswith("P"))  # noqa: E731
    text = "".join(" " if is_punct(ch) else ch for ch in text)
    text = " ".join(w for w in text.split() if w not in ARTICLES).strip(" -")
    return SYNONYMS.get(text, text)
    ### END SOLUTION


# %%
q3.check()

# %%
# q3.hint()
# q3.hint(2)
# q3.solution()

# %% [markdown]
# ### How much normalisation matters
#
# A model that knows the answers but formats them freely ("The liver.", "YES", "是的"): plain
# string equality calls most of it wrong; your normalisation gives it the credit it earned.

# %%
import random

tests = [r for r in load_records(sample / "test.json") if r["task"] in ("vqa_closed", "vqa_open")]
styles = [lambda a: a, lambda a: f"{a}.", lambda a: f"The {a}", lambda a: a.upper(), lambda a: f"“{a}”。"]
rng = random.Random(SEED)
answers = [r["conversations"][1]["value"] for r in tests]
predictions = [rng.choice(styles)(a) for a in answers]
plain = sum(p == a for p, a in zip(predictions, answers)) / len(answers)
normalised = sum(normalize_answer(p) == normalize_answer(a) for p, a in zip(predictions, answers)) / len(answers)
print(f"{len(answers)} test answers; exact match without normalisation {plain:.0%}, with it {normalised:.0%}")
print("e.g.", [(p, normalize_answer(p)) for p in predictions[:4]])

# %% [markdown]
# ## Summary
#
# * PSNR = 10·log10(L²/MSE) per image; SSIM compares local means, variances and covariance
#   (Gaussian window 11, σ 1.5, mirrored borders) and averages the map; both match torchmetrics.
# * Bicubic beats nearest-neighbour on both; a super-resolution model must beat bicubic.
# * Exact match needs normalisation (NFKC, case, punctuation, articles, synonyms), or formatting
#   is scored as ignorance.
#
# ## Check your understanding
#
# <details><summary>1. A model improves PSNR from 30 to 33 dB: by what factor did its MSE
# shrink?</summary>
#
# 10^0.3 ≈ 2.
# </details>
#
# <details><summary>2. Why does SSIM need C₁ and C₂ on the phantoms in particular?</summary>
#
# Their background is flat: zero mean and variance, so 0/0 without them.
# </details>
#
# <details><summary>3. Why map "是的" and "yes" to the same form instead of grading each language
# separately?</summary>
#
# A bilingual model may answer a Chinese question in either; see `SYNONYMS`.
# </details>
#
# The metrics are used by the evaluation of every trained model (`healthgpt_lite/eval/`). All
# exercises: [exercises/README.md](../README.md).
