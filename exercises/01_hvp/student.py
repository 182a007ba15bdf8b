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
# # Exercise 01 · Hierarchical visual perception: one hidden state per task, CLS dropped
#
# **Learning objectives.** After this exercise you can
# 1. say what each of the `L + 1` hidden states of a Hugging Face ViT is, and avoid the
#    off-by-one that `hidden_states[0]` (the embedding, not a block) invites;
# 2. pick HealthGPT's layer for each task, for a ViT of any depth, and drop the CLS token;
# 3. prepare pixels for CLIP (its per-channel mean and standard deviation) and broadcast them
#    over the right dimension;
# 4. rebuild the project's `HVPEncoder` from these two pieces, exactly.
#
# The project's version is `healthgpt_lite/vision/encoder.py` (notebook 02 explains it). Write
# the code where a cell says `return None  # your code here`, run the `check()` cell below it,
# and use `q1.hint()` / `q1.solution()` when stuck. A blank answer does not stop the notebook:
# later cells then use the reference (set `STRICT = True` to make them fail instead).

# %% tags=["parameters"]
PROFILE = "smoke"
PRESET = "tiny"
SEED = 0
ARTIFACTS_DIR = None
DATA_DIR = None
OVERRIDES = {}
STRICT = False  # True: a blank or wrong answer stops the notebook

# %%
from healthgpt_lite.exercises import load_questions
from healthgpt_lite.notebook import setup

run = setup(PROFILE, PRESET, SEED, ARTIFACTS_DIR, DATA_DIR, OVERRIDES)
q1, q2 = load_questions("01_hvp", globals(), strict=STRICT)

# %% [markdown]
# ## What a ViT hands back
#
# CLIP's ViT cuts the image into N patches, embeds each as a token, puts a CLS token **in
# front** and runs L transformer blocks. Asked for `output_hidden_states=True`, Hugging Face
# returns a tuple of **L + 1** tensors, each `(B, 1 + N, D)`:
#
# * `hidden_states[0]`: the embedded patches (after CLIP's `pre_layrnorm`), before any block;
# * `hidden_states[i]`: the output of block `i`, for `i = 1 … L`.
#
# Here is the tiny preset's ViT (random weights: this exercise is about *which* tensor, not
# what is in it) on three sample scans.

# %%
import torch

from healthgpt_lite.data import load_image
from healthgpt_lite.data.tokenizer import REPO_ROOT
from healthgpt_lite.vision import HVPEncoder

v = run.cfg.vision
encoder = HVPEncoder.from_config(v, seed=SEED)  # frozen, eval mode
images = REPO_ROOT / "data_samples" / "vl_health_lite" / "images"
pixels = torch.stack([load_image(images / f"p00001_{m}.png", size=v.image_size) for m in ("ct", "mri", "xray")])  # (3, 3, 64, 64)
hidden = encoder.hidden_states(pixels)
print(f"{v.num_layers} blocks -> {len(hidden)} hidden states, each {tuple(hidden[0].shape)} = (B, 1 + N, D)")

# %% [markdown]
# ## Q1 · Pick the task's hidden state
#
# HVP (paper §3.1) gives each task **one** of these, with no fusion:
#
# * **generation** reads the output of the **first transformer block** ("concrete" features,
#   close to the pixels: what redrawing an image needs);
# * **comprehension** reads the **second-to-last hidden state** ("abstract" features, as LLaVA
#   does: semantic, but before the last block, which CLIP's own training objective shapes).
#
# Either way the CLS token is dropped: the language model gets the N patch tokens. Write
# `hvp_tokens(hidden_states, task)` returning a `(B, N, D)` tensor, for a ViT of **any** depth.

# %%
import torch


def hvp_tokens(hidden_states: tuple[torch.Tensor, ...], task: str) -> torch.Tensor:
    """(B, N, D) patch tokens of the task's layer ("generation" or "comprehension")."""
    return None  # your code here


# %%
q1.check()

# %%
# q1.hint()
# q1.solution()

# %% [markdown]
# Which states did your function pick? We feed it *labelled* hidden states, where every patch
# token of `hidden_states[i]` holds the number `i` (and CLS holds −1), read the label off its
# output, and colour the ladder: first for the tiny ViT, then at HealthGPT-M3's size (CLIP
# ViT-L/14-336: 24 blocks, 336 / 14 = 24 × 24 = 576 patches of width 1024).

# %%
from healthgpt_lite.config import build_config
from healthgpt_lite.exercises.ex01_hvp import labelled_hidden_states, ladder_figure, read_pick

m3 = build_config("m3", PROFILE).vision
for name, vc in [("tiny", v), ("HealthGPT-M3", m3)]:
    labelled = labelled_hidden_states(vc.num_layers, vc.num_tokens, vc.hidden_size)  # each (1, 1 + N, D)
    picks = {task: read_pick(hvp_tokens(labelled, task)) for task in ("generation", "comprehension")}
    n_d = tuple(hvp_tokens(labelled, "generation").shape[1:])
    display(ladder_figure(vc.num_layers, picks, f"{name}: {vc.num_layers} blocks, (N, D) = {n_d} per image"))

# %% [markdown]
# ## Q2 · Pixels as CLIP expects them
#
# `load_image` gives pixels in [0, 1]. CLIP was trained on pixels standardised **per colour
# channel** with fixed statistics (`CLIP_MEAN`, `CLIP_STD`, three numbers each, in RGB order):
# `(pixel − mean[c]) / std[c]` for channel `c`. Write `normalize_pixels(pixels)` for a
# `(B, 3, H, W)` batch. Careful with broadcasting: a tensor of shape `(3,)` lines up with the
# **last** dimension (W), not with the channels.

# %%
from healthgpt_lite.vision.encoder import CLIP_MEAN, CLIP_STD


def normalize_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> CLIP's input statistics, channel by channel."""
    return None  # your code here


# %%
q2.check()

# %%
# q2.hint()
# q2.solution()

# %% [markdown]
# ## Your HVP encoder
#
# Your two functions and the frozen CLIP are the whole encoder: normalise, run the ViT with
# `output_hidden_states=True`, pick. Compared with the project's `HVPEncoder` on the scans:

# %%
with torch.no_grad():
    yours_hidden = encoder.clip(pixel_values=normalize_pixels(pixels), output_hidden_states=True).hidden_states
for task in ("generation", "comprehension"):
    yours = hvp_tokens(yours_hidden, task)
    print(f"{task:>13}: yours {tuple(yours.shape)}, identical to HVPEncoder: {torch.equal(yours, encoder(pixels, task))}")

# %% [markdown]
# Each task's tokens then go through that task's adapter (LLaVA's `mlp2x_gelu`) into the
# language model's embedding space, one embedding per `<image>` slot of the prompt: that is
# why keeping CLS would break the model (N + 1 vectors for N slots).

# %%
from healthgpt_lite.vision import make_adapters

adapters = make_adapters(run.cfg)
for task in ("generation", "comprehension"):
    print(f"{task:>13}: {tuple(hvp_tokens(yours_hidden, task).shape)} -> adapter -> "
          f"{tuple(adapters[task](hvp_tokens(yours_hidden, task)).shape)}  (B, N, d_llm)")

# %% [markdown]
# ## Summary
#
# * A Hugging Face ViT returns L + 1 hidden states: index 0 is the patch embedding, index `i`
#   the output of block `i`.
# * HVP: generation reads `hidden_states[1]` (first block, concrete), comprehension
#   `hidden_states[-2]` (abstract); a negative index makes it right for every depth. CLS is
#   token 0 and is dropped: N tokens per image (64 here, 576 for M3).
# * CLIP's inputs are standardised per channel with `CLIP_MEAN` / `CLIP_STD`, shaped
#   `(1, 3, 1, 1)` to broadcast over the channels.
#
# ## Check your understanding
#
# 1. For M3's 24-block ViT, which block's output does comprehension read? *(Block 23:
#    `hidden_states[-2]` = `hidden_states[23]` of 25.)*
# 2. Why is `hidden_states[2]` for generation a plausible but wrong choice? *(Index 0 is the
#    embedding, so index 2 is the second block's output: an off-by-one.)*
# 3. Why does subtracting a `(3,)` tensor from a `(B, 3, 64, 64)` batch raise an error, and
#    when would it silently do the wrong thing? *(It aligns with the last dimension, W = 64; with
#    images 3 pixels wide it would normalise columns instead of channels.)*
# 4. Why do the two tasks read different layers at all? *(Notebook 02's probes: shallow layers
#    keep pixel detail, deep ones meaning; paper §3.1.)*
#
# Notebook 02 (`notebooks/02_vision_encoder_hvp.py`) measures what each layer knows. All
# exercises: [exercises/README.md](../README.md).
