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
# # 02 · The vision encoder: ViT patches, CLIP-lite, and hierarchical visual perception
#
# **Learning objectives.** After this notebook you can
# 1. say how a ViT turns an image into a sequence of patch tokens, and how many tokens
#    HealthGPT's CLIP ViT-L/14-336 produces (576) versus our tiny one (64);
# 2. explain why a frozen encoder must first be *pretrained*, and pretrain a tiny CLIP
#    ("CLIP-lite") on image-caption pairs with a contrastive loss;
# 3. measure what it learned with zero-shot retrieval, against chance;
# 4. state what hierarchical visual perception (HVP) is, exactly: generation reads
#    `hidden_states[1]`, comprehension reads `hidden_states[-2]`, one layer each, no fusion;
# 5. test the claim behind it (shallow = detail, deep = meaning) with linear probes, and
#    read the result of a tiny encoder honestly, next to a random-encoder control;
# 6. pass visual tokens through the two task adapters (`mlp2x_gelu`) and a real CT slice
#    through the whole vision path.
#
# docs/PAPERS.md §1; HealthGPT paper, "Hierarchical Visual Perception".

# %% tags=["parameters"]
PROFILE = "cpu"  # cpu: the learning run (reuses `make reproduce` artifacts) | smoke: CI, learns nothing
PRESET = "tiny"
SEED = 0
ARTIFACTS_DIR = None
DATA_DIR = None
OVERRIDES = {}

# %%
from healthgpt_lite.course.notebook import setup

run = setup(PROFILE, PRESET, SEED, ARTIFACTS_DIR, DATA_DIR, OVERRIDES)
run

# %% [markdown]
# ## From an image to tokens
#
# A Vision Transformer cuts the image into `p x p` patches, flattens each patch, maps it with
# one linear layer to a `D`-dimensional token and adds a learned position embedding; a `[CLS]`
# token goes in front. CLIP ViT-L/14-336 cuts 336 px into 24x24 patches of 14 px: 576 tokens of
# width 1024. Our `tiny` preset cuts 64 px into 8x8 patches of 8 px: **64 tokens** of width 128.
# The language model will see these tokens where the prompt says `<image>`.

# %%
from healthgpt_lite.data import ensure_dataset, load_image
from healthgpt_lite.viz.vision import patch_grid_figure

v = run.cfg.vision
data_dir = ensure_dataset(run.data_dir, run.cfg.data, progress=run.progress)
ct = load_image(data_dir / "images/p00003_ct.png", size=v.image_size)  # (3, 64, 64) in [0, 1]
print(f"image {tuple(ct.shape)} -> {v.grid_size}x{v.grid_size} = {v.num_tokens} patch tokens of width {v.hidden_size}")
patch_grid_figure(ct, v.patch_size)

# %% [markdown]
# ## A frozen encoder needs eyes: CLIP-lite
#
# HealthGPT never trains its vision encoder: it uses OpenAI's CLIP, pretrained on 400M
# image-text pairs, frozen. A *randomly initialised* tiny ViT has seen nothing; freezing it
# would make every later stage learn from noise. So the tiny preset first pretrains a small CLIP
# on VL-Health-lite: our ViT plus a tiny text transformer over the project tokenizer, trained so
# that each image's embedding is closest to its own caption's (CLIP's symmetric contrastive loss).
#
# Captions come from the ground truth: the English report, or a short caption (view + lesion
# count), drawn at random per step.

# %%
from healthgpt_lite.vision.clip_data import load_captioned_images

train_images = load_captioned_images(data_dir, "train", v.image_size)
test_images = load_captioned_images(data_dir, "test", v.image_size)
for i in (0, 1, 2):
    print(f"report: {train_images.reports[i]}\nshort : {train_images.shorts[i]}\n")
print(f"{len(train_images)} training images, {len(test_images)} test images (3 modalities per patient)")

# %% [markdown]
# Load-or-train: the artifact is keyed by the `vision` and `data` config sections, so a later
# notebook (or `python -m healthgpt_lite reproduce`) reuses it. The `cpu` profile (the default) trains for a
# couple of minutes, or loads what `make reproduce` trained; `smoke` (CI) only takes a few steps
# and its numbers are near chance.

# %%
from healthgpt_lite.training.trainer import plot_curves, read_metrics
from healthgpt_lite.vision import ensure_clip_lite

clip_dir = ensure_clip_lite(run.cfg, run.artifacts_dir, data_dir=data_dir, progress=run.progress)
metrics = read_metrics(clip_dir / "run")
print(f"{v.clip_steps} steps, batch {v.clip_batch_size}, lr {v.clip_lr}  ->  {clip_dir.name}")
display(plot_curves(metrics, ["train_loss", "val_loss"], title="CLIP-lite contrastive loss"))
plot_curves(metrics, ["train_acc", "val_acc"], title="in-batch top-1: image finds its caption")

# %% [markdown]
# ## Did it learn to see? Zero-shot retrieval
#
# *Zero-shot classification*: compare a test image with the 12 short captions "view of
# modality m. k lesions." and read the modality and lesion count off the best match.
# *In-batch retrieval*: among 32 test images and their reports, does each image find its own
# report (and each report its image)? Identical reports count as correct; the chance level
# accounts for them.

# %%
import json

import pandas as pd

from healthgpt_lite.vision.retrieval import retrieval_rows

scores = json.loads((clip_dir / "meta.json").read_text())["retrieval"]
pd.DataFrame(retrieval_rows(scores)).round(3)

# %% [markdown]
# ## Hierarchical visual perception: one layer per task
#
# HuggingFace's CLIP returns `L + 1` hidden states: `hidden_states[0]` is the patch embedding
# (after CLIP's `pre_layrnorm`), `hidden_states[i]` the output of block `i`. HVP picks
#
# | task | reads | why (paper, HVP) |
# |---|---|---|
# | generation | `hidden_states[1]` ("concrete") | close to the pixels: what redrawing an image needs |
# | comprehension | `hidden_states[-2]` ("abstract") | LLaVA's choice: semantic, before CLIP's last, loss-specific block |
#
# exactly one each, no fusion; the CLS token is dropped. The encoder is frozen and stays in eval
# mode whatever its parent does.

# %%
import torch

from healthgpt_lite.vision import load_vision_encoder

encoder = load_vision_encoder(run.cfg, run.artifacts_dir)
pixels = test_images.pixels(slice(0, 3))  # (3, 3, 64, 64): CT, MRI, X-ray of one test patient
hidden = encoder.hidden_states(pixels)
for task, layer in encoder.layers.items():
    tokens = encoder(pixels, task)
    assert torch.equal(tokens, hidden[layer][:, 1:])
    print(f"{task:>13}: hidden_states[{layer:>2}] of {len(hidden)} -> {tuple(tokens.shape)}  (B, N, D)")
print("trainable parameters in the encoder:", sum(p.numel() for p in encoder.parameters() if p.requires_grad))

# %% [markdown]
# What do the two layers look like? Each patch token, projected on the first three principal
# components of its image's tokens, becomes an RGB pixel: patches with similar colours have
# similar tokens. At 8x8 tokens the maps are coarse: the background patches share one colour at
# every depth (air is air), inside the body each patch is its own colour, and the eye finds no
# clear difference between the layers. The second figure measures it instead: linear CKA
# between every two hidden states over all test tokens (1 = the same geometry).

# %%
from healthgpt_lite.vision.probes import layer_features, layer_similarity
from healthgpt_lite.viz.vision import layer_maps_figure, similarity_matrix_figure

hvp_layers = {"generation: hs[1]": v.gen_layer, "comprehension: hs[-2]": v.comp_layer}
display(layer_maps_figure([pixels[i] for i in range(3)], [encoder.hidden_states(pixels[i:i + 1]) for i in range(3)],
                          {"embedding: hs[0]": 0, **hvp_layers}, ["CT", "MRI", "X-ray"]))
similarity_matrix_figure(layer_similarity(layer_features(encoder, test_images)), hvp_layers,
                         "linear CKA between hidden states")

# %% [markdown]
# ## Is shallow "detail" and deep "meaning"? Linear probes
#
# A *linear probe* asks what a frozen representation makes linearly readable. Fit on the
# training images, scored on the test images, for every hidden state:
#
# * **detail**: ridge regression from each patch token to its own 8x8 pixels (R² and PSNR);
# * **meaning**: from the mean patch token, a linear classifier for the modality, any lesion,
#   the lesion count, and a lesion in each organ (accuracy; majority-class baseline beside it).
#
# The control is the same ViT with random weights: what the architecture alone keeps.

# %%
from healthgpt_lite.vision import HVPEncoder
from healthgpt_lite.vision.probes import MEANING, hvp_probe_table, run_probes

results = {"CLIP-lite": run_probes(encoder, train_images, test_images),
           "random ViT": run_probes(HVPEncoder.from_config(v, seed=run.cfg.seed), train_images, test_images)}
pd.DataFrame(hvp_probe_table(results, hvp_layers)).round(3)

# %%
from healthgpt_lite.viz.vision import probe_bars_figure, probe_curves_figure

display(probe_bars_figure(results, hvp_layers, ["pixel R2", *MEANING]))
probe_curves_figure(results, ["pixel PSNR (dB)", "any lesion", "lesion count"], hvp_layers)

# %% [markdown]
# **This run's probes**, read from the numbers above (a difference counts only if it exceeds
# twice the standard error of one accuracy on this many test images):

# %%
from healthgpt_lite.vision.probes import meaning_skill

n_test = min(len(test_images), 3000)  # run_probes uses at most 3000 images per split
margin = 2 * (0.25 / n_test) ** 0.5  # 2 standard errors of an accuracy near 0.5
clip_rows, random_rows = results["CLIP-lite"], results["random ViT"]
shallow, deep = clip_rows[v.gen_layer], clip_rows[v.comp_layer]
print(f"{n_test} test images: differences under {margin:.2f} are noise")
for name in MEANING:
    a, b, majority = shallow[name], deep[name], shallow[f"{name} majority"]
    trend = "grows with depth" if b - a > margin else "falls with depth" if a - b > margin else "level (within noise)"
    print(f"  {name:>19}: hs[{v.gen_layer}] {a:.2f} -> hs[{v.comp_layer}] {b:.2f} (majority {majority:.2f}): {trend}; "
          f"random ViT at most {max(r[name] for r in random_rows):.2f}")
print(f"  detail: pixel R2 {shallow['pixel R2']:.3f} -> {deep['pixel R2']:.3f}, "
      f"PSNR {shallow['pixel PSNR (dB)']:.1f} -> {deep['pixel PSNR (dB)']:.1f} dB")
print(f"  meaning skill (share of the majority's mistakes avoided): {meaning_skill(shallow):.2f} -> {meaning_skill(deep):.2f}; "
      f"random ViT {meaning_skill(random_rows[v.gen_layer]):.2f} -> {meaning_skill(random_rows[v.comp_layer]):.2f}")

# %% [markdown]
# **Reading the probes in a reference run** (the `cpu` profile, seed 0; not necessarily this
# run: the cell above is this run's reading, and `smoke` has too few images to read). The paper's
# claim is about a 24-layer CLIP-L; ours has 4 layers. With 72 test images one accuracy has a
# standard error of about ±0.05, so read only differences of ~0.1 or more.
#
# * *Meaning* mostly grows with depth in the pretrained encoder: the lesion count goes from
#   0.47 at `hs[1]` (below the 0.50 majority baseline) to 0.60 at `hs[-2]`, a right-lung lesion
#   from 0.65 to 0.82. "Any lesion" and the liver stay level, and the left lung even goes the
#   other way (0.79 → 0.72): a tendency, not a law. The random ViT stays near or below the
#   baselines at every depth. Modality is trivial at every depth (CT, MRI and X-ray differ in grey levels).
# * *Detail* fades only a little: every layer rebuilds its 8x8 patch with R² ≈ 0.97; the
#   reconstruction is 29.3 dB from `hs[1]` and 28.5 dB from `hs[-2]`. A 128-wide token has room
#   for a 64-pixel patch *and* more, and four residual blocks cannot wash the pixels out. The
#   CKA matrix says the same: `hs[1]` is still close to the embedding (≈ 0.9), `hs[-2]` has
#   moved further (≈ 0.65). CLIP-L's deep layers sit much further from the pixels than ours.
# * CLIP-lite's zero-shot lesion count (≈ 0.8) reads the last layer's *CLS* token; a linear
#   probe on the *mean patch token* of that same layer gets ≈ 0.6 (the curve above). HVP drops
#   CLS, and the language model will attend over all 64 tokens rather than their mean, so these
#   probes are a floor for what it can read, not a ceiling.
#
# So the tiny encoder shows the *direction* of HVP's claim, weakly; it does not prove it.

# %% [markdown]
# ## Two adapters into the language model
#
# Each task owns an adapter: LLaVA's `mlp2x_gelu` = Linear(D_vision → D_llm), GELU,
# Linear(D_llm → D_llm). The task picks the HVP layer *and* the adapter. For HealthGPT-M3 that is
# 1024 → 3072 (Phi-3-mini), about 12.6M parameters per adapter.

# %%
from healthgpt_lite.vision import MLP2xGELU, make_adapters

adapters = make_adapters(run.cfg, encoder.hidden_size)
for task, adapter in adapters.items():
    out = adapter(encoder(pixels, task))
    print(f"{task:>13}: {tuple(encoder(pixels, task).shape)} -> {tuple(out.shape)}  "
          f"({sum(p.numel() for p in adapter.parameters()):,} parameters)")
print(adapters["generation"])
print(f"HealthGPT-M3 adapter: {sum(p.numel() for p in MLP2xGELU(1024, 3072).parameters()):,} parameters")

# %% [markdown]
# ## A real CT slice through the same path
#
# pydicom ships a small real CT slice. `load_image` applies its Hounsfield rescale and display
# window and resizes it; the encoder then treats it like any phantom. But CLIP-lite has only
# ever seen *coronal* phantoms of the chest; this is an *axial* slice through a vertebra. Which
# short caption does it pick? Expect nothing sensible: a tiny CLIP trained on a few hundred
# phantoms knows only its phantoms, and a softmax over 12 captions always names *something*
# (in the `cpu` run its top pick is an X-ray caption). This is why the real presets load a
# real CLIP.

# %%
from pydicom.data import get_testdata_file

from healthgpt_lite.data.phantoms import MODALITIES
from healthgpt_lite.data.text_tokenizer import load_tokenizer
from healthgpt_lite.vision import load_clip_lite
from healthgpt_lite.vision.clip_data import short_caption
from healthgpt_lite.vision.retrieval import embed_images, embed_texts

real = load_image(get_testdata_file("CT_small.dcm"), size=v.image_size)[None]  # (1, 3, 64, 64)
real_hidden = encoder.hidden_states(real)
print("comprehension tokens:", tuple(encoder(real, "comprehension").shape),
      "| generation tokens:", tuple(encoder(real, "generation").shape))
clip = load_clip_lite(run.cfg, run.artifacts_dir)
captions = [short_caption(m, k) for m in MODALITIES for k in range(4)]
text_embeddings = embed_texts(clip, load_tokenizer(), captions, v.clip_text_max_len)  # (12, P)
logits = clip.logit_scale.exp() * embed_images(clip, real) @ text_embeddings.T  # CLIP's own temperature
probs = logits.softmax(-1)[0].detach()
for p, c in sorted(zip(probs.tolist(), captions), reverse=True)[:3]:
    print(f"{p:.2f}  {c}")
layer_maps_figure([real[0]], [real_hidden], {"embedding: hs[0]": 0, **hvp_layers}, ["real CT (pydicom)"])

# %% [markdown]
# Bad pixels get a clear `InputError`, never a deep traceback (or worse, a silent wrong answer:
# pixels normalised twice would still "work"):

# %%
from healthgpt_lite.errors import InputError

for bad in [real[0], real[:, :1], torch.rand(1, 3, 32, 32), (real - 0.5) / 0.25]:
    try:
        encoder(bad, "comprehension")
    except InputError as e:
        print("InputError:", e)

# %% [markdown]
# ## Summary
#
# * A ViT reads an image as a sequence of patch tokens: 64 for `tiny`, 576 for CLIP-L/14-336.
# * The encoder is frozen, so it must already see: CLIP-lite gives the tiny ViT its eyes with an
#   image-caption contrastive loss, and zero-shot retrieval on held-out patients measures it
#   against chance.
# * HVP = one hidden state per task, no fusion: generation `hs[1]`, comprehension `hs[-2]`, CLS
#   dropped; then one `mlp2x_gelu` adapter per task.
# * Linear probes test "shallow = detail, deep = meaning": in the tiny encoder meaning grows with
#   depth while detail stays almost everywhere; a random ViT is the control.
#
# ## Check your understanding
#
# 1. How many visual tokens does HealthGPT-M3 put in the prompt per image, and where does the
#    number come from?
#
#    <details><summary>Answer</summary>
#
#    336 / 14 = 24 per side, CLS dropped: 576.
#
#    </details>
#
# 2. Why is a random frozen encoder a bad idea, and why does a random ViT still score well on
#    the pixel probe?
#
#    <details><summary>Answer</summary>
#
#    It has no learned features; but its residual stream still carries the linearly embedded
#    patch.
#
#    </details>
#
# 3. What does `hidden_states[-2]` mean for a 4-layer ViT, and which block's output is it?
#
#    <details><summary>Answer</summary>
#
#    5 hidden states; index 3 = output of block 3.
#
#    </details>
#
# 4. Why does the zero-shot table show a majority baseline for the lesion count but not for the
#    modality?
#
#    <details><summary>Answer</summary>
#
#    Counts are unbalanced; modalities are exactly one third each.
#
#    </details>
#
# 5. Why must the encoder stay in eval mode even when the model around it trains?
#
#    <details><summary>Answer</summary>
#
#    Train mode turns on dropout (and any other train-only behaviour): the features would be
#    random, differ from the cached ones the stages train on, and differ from what the model
#    sees at inference. A frozen encoder must compute one fixed function.
#
#    </details>
#
# **Exercise:** [`exercises/01_hvp`](../exercises/01_hvp/student.ipynb) asks you to rebuild HVP's
# layer selection (right hidden state per task, CLS dropped) and checks it against this encoder;
# all exercises: [`exercises/README.md`](../exercises/README.md).
