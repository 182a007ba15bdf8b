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
# # Exercise 01 · Hierarchical visual perception: let the probes choose a layer per task
#
# **Learning objectives.** After this exercise you can
# 1. say what each of the `L + 1` hidden states of a Hugging Face ViT is, and avoid the
#    off-by-one that `hidden_states[0]` (the embedding, not a block) invites;
# 2. turn linear-probe results into a choice of layer per task, measuring meaning against the
#    majority baseline the right way, and compare that choice with the paper's fixed one;
# 3. prepare pixels for CLIP (its per-channel mean and standard deviation) and broadcast them
#    over the right dimension, even where a wrong broadcast raises no error;
# 4. rebuild the project's `HVPEncoder` from the chosen layer and your normalisation.
#
# The project's versions are in `healthgpt_lite/vision/` (notebook 02 explains them). Write the
# code where a cell says `return None  # your code here`, run the `check()` cell below it, and
# use `q1.hint()` (then `q1.hint(2)`) / `q1.solution()` when stuck. A blank answer does not stop
# the notebook: later cells then use the reference (set `STRICT = True` to make them fail
# instead). Calling the package's own function is not an answer: the check notices.

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
# Here is the tiny preset's CLIP-lite encoder (pretrained on VL-Health-lite by notebook 02;
# load-or-train) on three sample scans.

# %%
import torch

from healthgpt_lite.data import ensure_dataset, load_image
from healthgpt_lite.vision import ensure_clip_lite, load_vision_encoder

v = run.cfg.vision
data_dir = ensure_dataset(run.data_dir, run.cfg.data, progress=run.progress)
ensure_clip_lite(run.cfg, run.artifacts_dir, data_dir=data_dir, progress=run.progress)
encoder = load_vision_encoder(run.cfg, run.artifacts_dir)  # frozen, eval mode
pixels = torch.stack([load_image(data_dir / "images" / f"p00001_{m}.png", size=v.image_size) for m in ("ct", "mri", "xray")])  # (3, 3, 64, 64)
hidden = encoder.hidden_states(pixels)
print(f"{v.num_layers} blocks -> {len(hidden)} hidden states, each {tuple(hidden[0].shape)} = (B, 1 + N, D)")

# %% [markdown]
# ## Q1 · Let the probes choose the layers
#
# HVP (paper, "Hierarchical Visual Perception") gives each task **one** hidden state, with no fusion: generation wants
# *concrete* features (detail, to redraw the image), comprehension *abstract* ones (meaning, to
# answer about it). The paper fixes the two layers by that argument. Here you let measurements
# decide. A **linear probe** fits a ridge regression on one hidden state's frozen tokens and
# scores it on test images (notebook 02); `run_probes` gives one row per hidden state:
#
# * `"layer"`: which hidden state the row is about;
# * `"pixel R2"`: how well each token's own 8×8 patch of pixels is rebuilt from it (detail);
# * one accuracy per *meaning* attribute in `MEANING` (modality, any lesion, lesion count, a
#   lesion in each organ), each next to `"<attribute> majority"`: the accuracy of always
#   guessing the most common class.
#
# Write `choose_hvp_layers(rows)` returning `{"generation": layer, "comprehension": layer}`:
#
# * **generation** reads the block output that keeps the most detail;
# * **comprehension** reads the block output whose tokens carry the most meaning. Raw accuracy
#   misleads: a probe that always says "no lesion in the liver" already scores 0.9 there. Score
#   each attribute by its **skill**, the fraction of the majority baseline's mistakes that the
#   probe avoids, and average the skills. An attribute whose baseline makes no mistakes at all
#   has nothing to avoid: leave it out.
#
# Only **block outputs** compete: hidden state 0 is the patch embedding, a linear map of the
# pixels that no block has processed. If two layers score the same, take the **shallower** one
# (the same information for fewer blocks). The rows may come in any order, and `run_probes`
# can be asked for some layers only.

# %%
from healthgpt_lite.vision.probes import MEANING


def choose_hvp_layers(rows: list[dict]) -> dict[str, int]:
    """{"generation": hidden state, "comprehension": hidden state} from linear-probe rows."""
    ### BEGIN SOLUTION stub: return None  # your code here
    def skill(row: dict) -> float:  # mean fraction of the majority baseline's mistakes avoided
        scores = [(row[a] - row[f"{a} majority"]) / (1 - row[f"{a} majority"]) for a in MEANING
                  if row[f"{a} majority"] < 1]  # majority 1: no mistakes to avoid
        return sum(scores) / len(scores) if scores else 0.0

    blocks = sorted((r for r in rows if r["layer"] >= 1), key=lambda r: r["layer"])  # shallow first
    return {"generation": max(blocks, key=lambda r: r["pixel R2"])["layer"],  # max keeps the first of equals
            "comprehension": max(blocks, key=skill)["layer"]}
    ### END SOLUTION


# %%
q1.check()

# %%
# q1.hint()
# q1.hint(2)
# q1.solution()

# %% [markdown]
# Your rule on this run's probes: the tiny CLIP-lite encoder, fitted on the training images and
# scored on the test images (in `smoke` only a handful of images and a barely trained encoder:
# run the `cpu` profile to read the numbers), beside the paper's fixed choice (`gen_layer`,
# `comp_layer` in the config).

# %%
import pandas as pd

from healthgpt_lite.exercises.ex01_hvp import ladder_figure
from healthgpt_lite.vision.clip_data import load_captioned_images
from healthgpt_lite.vision.probes import meaning_skill, run_probes

train_images = load_captioned_images(data_dir, "train", v.image_size)
test_images = load_captioned_images(data_dir, "test", v.image_size)
rows = run_probes(encoder, train_images, test_images, max_images=600)
print(f"probes fitted on {min(len(train_images), 600)} training images, scored on {min(len(test_images), 600)} test images")
display(pd.DataFrame([{"hidden state": r["layer"], "pixel R2": r["pixel R2"], "meaning skill": meaning_skill(r),
                       **{a: r[a] for a in MEANING}} for r in rows]).round(3))
chosen = choose_hvp_layers(rows)
paper = {"generation": v.gen_layer % len(hidden), "comprehension": v.comp_layer % len(hidden)}
display(ladder_figure(v.num_layers, chosen, f"the probes choose {chosen}", paper))
for task in chosen:
    verdict = "the same layer as the paper" if chosen[task] == paper[task] else f"the paper reads hidden_states[{paper[task]}]"
    print(f"{task:>13}: the probes choose hidden_states[{chosen[task]}]: {verdict}")

# %% [markdown]
# ## Q2 · Pixels as CLIP expects them
#
# `load_image` gives pixels in [0, 1]. CLIP was trained on pixels standardised **per colour
# channel** with fixed statistics (`CLIP_MEAN`, `CLIP_STD`, three numbers each, in RGB order):
# `(pixel − mean[c]) / std[c]` for channel `c`. Write `normalize_pixels(pixels)` for a
# `(B, 3, H, W)` batch, for images of any size.

# %%
import torch

from healthgpt_lite.vision.encoder import CLIP_MEAN, CLIP_STD


def normalize_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> CLIP's input statistics, channel by channel."""
    ### BEGIN SOLUTION stub: return None  # your code here
    mean = pixels.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = pixels.new_tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std  # (B, 3, H, W)
    ### END SOLUTION


# %%
q2.check()

# %%
# q2.hint()
# q2.hint(2)
# q2.solution()

# %% [markdown]
# ## Your HVP encoder
#
# Your normalisation, the frozen ViT and one hidden state per task, CLS dropped (token 0 of
# every hidden state), are the whole encoder. With the paper's layers it must give exactly what
# the project's `HVPEncoder` gives; with the layers your rule chose it may differ:

# %%
with torch.no_grad():
    yours_hidden = encoder.clip(pixel_values=normalize_pixels(pixels), output_hidden_states=True).hidden_states
for task in ("generation", "comprehension"):
    yours = yours_hidden[paper[task]][:, 1:]  # (B, N, D): CLS dropped
    same = torch.equal(yours, encoder(pixels, task))
    print(f"{task:>13}: hidden_states[{paper[task]}] -> {tuple(yours.shape)}, identical to HVPEncoder: {same}; "
          f"your rule's hidden_states[{chosen[task]}] differs from it by "
          f"{(yours_hidden[chosen[task]][:, 1:] - yours).abs().max():.3f} at most")

# %% [markdown]
# Each task's tokens then go through that task's adapter (LLaVA's `mlp2x_gelu`) into the
# language model's embedding space, one embedding per `<image>` slot of the prompt (exercise 07
# splices them in): keeping CLS would break the model (N + 1 vectors for N slots).
#
# ## Summary
#
# * A Hugging Face ViT returns L + 1 hidden states: index 0 is the patch embedding, index `i`
#   the output of block `i`.
# * A layer choice from probes ranks detail by pixel R² and meaning by the *skill* over the
#   majority baseline, `(accuracy − majority) / (1 − majority)`, never by raw accuracy; it reads
#   each row's `layer`, lets only block outputs compete and breaks ties towards fewer blocks.
# * The paper's fixed choice is `hidden_states[1]` (generation) and `hidden_states[-2]`
#   (comprehension); a negative index keeps it right for every depth.
# * CLIP's inputs are standardised per channel with `CLIP_MEAN` / `CLIP_STD`, shaped
#   `(1, 3, 1, 1)` to broadcast over the channels.
#
# ## Check your understanding
#
# <details><summary>1. A probe scores 0.93 on "lesion in liver" (majority 0.90) and 0.70 on
# "any lesion" (majority 0.60). Which result is the stronger one?</summary>
#
# The liver one avoids 0.03 / 0.10 = 30 % of the baseline's mistakes, the other 0.10 / 0.40 =
# 25 %: by skill, the liver probe, although its gain in accuracy is smaller.
# </details>
#
# <details><summary>2. Why store the comprehension layer as <code>-2</code> in the config rather
# than as the number your rule printed?</summary>
#
# A negative index counts from the end, so the same config fits a ViT of any depth (M3's
# 24-block ViT reads `hidden_states[23]` of 25); a fixed number fits one depth only.
# </details>
#
# <details><summary>3. Why does subtracting a <code>(3,)</code> tensor from a
# <code>(B, 3, 64, 64)</code> batch raise an error, and when does it silently do the wrong
# thing?</summary>
#
# Broadcasting lines the `(3,)` up with the last dimension, W = 64, and fails; with images 3
# pixels wide it succeeds and normalises columns instead of channels (the last test case).
# </details>
#
# <details><summary>4. The probes are linear. What could a layer know that a linear probe
# misses, and why is a linear probe still the right test here?</summary>
#
# Non-linearly encoded information; but the adapter that reads the layer is a small MLP fed one
# token at a time, and the LLM sees tokens through a linear map of the adapter: what is
# linearly readable is what the model can use most easily.
# </details>
#
# Notebook 02 (`notebooks/02_vision_encoder_hvp.py`) measures what each layer knows for the
# pretrained and a random encoder. All exercises: [exercises/README.md](../README.md).
