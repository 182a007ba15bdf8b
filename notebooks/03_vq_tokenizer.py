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
# # 03 · The VQ tokenizer: images become words
#
# **Learning objectives.** After this notebook you can
# 1. explain why an LLM that *writes* images needs a discrete image vocabulary, and how many
#    "words" one image costs (tiny: 16×16 = 256 of 512 codes; HealthGPT-M3: 32×32 = 1024 of 8192);
# 2. describe vector quantization: nearest code, straight-through gradient, commitment loss,
#    and why a codebook needs care (k-means init, EMA, dead-code restart) to stay alive;
# 3. train a taming-style VQGAN with Lightning and read its curves (loss, PSNR, SSIM, codebook use);
# 4. look at an image as its token grid, judge reconstructions of CT, MRI and X-ray by PSNR/SSIM,
#    and see what the tokenizer does to a real CT slice it never saw;
# 5. load the *real* HealthGPT tokenizer (taming f8-8192, Gumbel) from a local checkpoint.
#
# docs/PAPERS.md §1: HealthGPT generates an image as `<start_index>` + 1024 `<idx_*>` tokens +
# `<end_index>`; a frozen VQGAN (Esser et al. 2021) turns those indices back into pixels.

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
# ## Why HealthGPT needs a tokenizer for images
#
# An autoregressive LLM does one thing: given tokens, predict the next token from a finite
# vocabulary. To *read* an image, continuous features are enough (notebook 02 splices CLIP
# features into the prompt). To *write* one, the image must be made of vocabulary entries. A
# VQ tokenizer cuts the image into a grid of cells and names each cell by the closest entry of a
# learned **codebook**: the image becomes a sentence of `h×w` code indices, in raster order, and a
# decoder turns any such sentence back into pixels. The numbers for our presets:

# %%
import pandas as pd

from healthgpt_lite.config import build_config

rows = []
for preset in ("tiny", "small", "m3"):
    q = build_config(preset, "smoke").vq
    rows.append({"preset": preset, "image (px)": q.resolution, "downsampling f": q.downsample,
                 "token grid": f"{q.grid_size}x{q.grid_size}", "tokens per image": q.num_tokens,
                 "codebook size": q.n_embed, "quantizer": q.quantizer})
pd.DataFrame(rows).set_index("preset")

# %% [markdown]
# ## Vector quantization in two dimensions
#
# The encoder outputs one vector per grid cell; the quantizer replaces it by its **nearest
# code** (squared L2). `argmin` has no gradient, so training copies the decoder's gradient
# straight through to the encoder (`z_q = z + (e - z).detach()`), and adds a **commitment
# loss** `β‖z − sg[e]‖²` that keeps encoder outputs close to their codes (van den Oord et al.
# 2017). A codebook started at random far from the data leaves most codes unused ("dead");
# ours starts as **k-means centroids of the first batch**, follows the data with **EMA
# averages** and **restarts** codes nobody uses on a random encoder output. Here are 16 codes
# fitted to 2-D points by exactly that k-means init:

# %%
import torch

from healthgpt_lite.viz.vq import quantization_figure
from healthgpt_lite.vq.quantizer import VectorQuantizer

torch.manual_seed(run.cfg.seed)
points = torch.cat([torch.randn(300, 2) * 0.4 + c for c in torch.tensor([[0.0, 0], [3, 1], [1, 3]])])  # (900, 2)
toy = VectorQuantizer(n_embed=16, embed_dim=2, ema=True, dead_threshold=0)
out = toy.train()(points.T[None, :, None, :])  # the quantizer takes (B, D, h, w): here 1 x 2 x 1 x 900
quantization_figure(points, toy.embedding.weight.detach(), out.indices.flatten(),
                    "each point takes the colour of its nearest code")

# %% [markdown]
# ## Train the tokenizer (load if present, else train)
#
# A taming-style VQGAN (residual blocks of GroupNorm + swish + conv, self-attention at 16×16,
# `vq/vqgan.py`) learns on every CT, MRI and X-ray image of the training split; the loss is
# L1 + squared-error reconstruction + the quantizer's commitment term (taming's perceptual and
# adversarial losses are left out: our phantoms are smooth and the CPU budget is small). The
# result is saved in `ARTIFACTS_DIR` keyed by the config, so later notebooks reuse it.

# %%
import json
import time

from healthgpt_lite.vq import ensure_vq

start = time.time()
vq_dir = ensure_vq(run.cfg, run.artifacts_dir, run.data_dir, progress=run.progress)
meta = json.loads((vq_dir / "meta.json").read_text())
print(f"{run.cfg.vq.train_steps} steps of {run.cfg.vq.batch_size} images; training took {meta['train_seconds']} s "
      f"(this call: {time.time() - start:.1f} s); last validation: {meta['val']}")

# %% [markdown]
# The curves from `metrics.csv`: the reconstruction loss falls, validation PSNR/SSIM rise, and the
# number of codes in use (perplexity = the effective number of codes) should grow, not collapse.

# %%
from healthgpt_lite.training.trainer import plot_curves, read_metrics

curves = read_metrics(vq_dir)
display(plot_curves(curves, ["train/rec_loss", "train/q_loss"], "training loss", logy=True))
display(plot_curves(curves, ["val/psnr"], "validation PSNR (dB)"))
display(plot_curves(curves, ["val/ssim", "val/usage"], "validation SSIM and fraction of codes used"))
plot_curves(curves, ["train/perplexity", "val/perplexity"], "codebook perplexity (effective codes in use)")

# %% [markdown]
# ## The frozen tokenizer
#
# `load_vq_tokenizer` returns a `VQTokenizer`: no Lightning, no gradients. `encode` takes images
# in [0, 1] (gray or RGB) and returns a `(B, h, w)` grid of indices; `decode` takes such a grid
# (or the flat raster sequence an LLM writes) and returns images.

# %%
from healthgpt_lite.data import ensure_dataset, load_image
from healthgpt_lite.vq import load_vq_tokenizer
from healthgpt_lite.vq.data import load_split_images

data_dir = ensure_dataset(run.data_dir, run.cfg.data)
tok = load_vq_tokenizer(run.cfg, run.artifacts_dir)
test_images, test_modalities = load_split_images(data_dir, "test", tok.resolution)  # (N, 1, R, R)
indices = tok.encode(test_images)
print(tok)
print("images", tuple(test_images.shape), "-> indices", tuple(indices.shape), indices.dtype)

# %% [markdown]
# ## An image as a sentence of tokens
#
# Left: a test CT. Middle: its grid of code indices, one colour per code, one cell per token.
# Right: what the decoder paints from those indices alone. Below, the first tokens as the LLM
# reads and writes them, with the project's text tokenizer (`<idx_k>` is one vocabulary entry).

# %%
from healthgpt_lite.data import image_token_ids, load_tokenizer
from healthgpt_lite.viz.vq import token_grid_figure

i = test_modalities.index("ct")
recon = tok.decode(indices[i:i + 1])[0]
display(token_grid_figure(test_images[i], indices[i], recon, tok.n_codes, "one CT slice, tokenized"))

text_tok = load_tokenizer(n_codes=tok.n_codes)
ids = image_token_ids(text_tok)
sentence = [ids.start, *ids.code_to_token(indices[i].flatten()).tolist(), ids.end]
print(f"{len(sentence)} tokens:", "".join(text_tok.convert_ids_to_tokens(sentence[:6])), "...",
      "".join(text_tok.convert_ids_to_tokens(sentence[-2:])))

# %% [markdown]
# ## Reconstructions of every modality, with their scores
#
# PSNR (dB, higher is better; +6 dB halves the error) and SSIM (structural similarity, 1 =
# identical) are HealthGPT's generation metrics (docs/PAPERS.md §4). A tokenizer caps what the whole
# model can reach: an LLM that predicts every token perfectly still only produces the
# tokenizer's reconstruction.

# %%
from healthgpt_lite.viz.vq import reconstruction_figure
from healthgpt_lite.vq.metrics import image_metrics

picks = [test_modalities.index(m) for m in ("ct", "mri", "xray")] + [test_modalities.index(m, test_modalities.index(m) + 1)
                                                                      for m in ("ct", "mri", "xray")]
originals = test_images[picks].expand(-1, 3, -1, -1)
recons = tok.decode(indices[picks])
psnr, ssim = image_metrics(recons, originals)
reconstruction_figure(originals, recons, [test_modalities[p].upper() for p in picks],
                      [f"{p:.1f} dB, SSIM {s:.3f}" for p, s in zip(psnr, ssim)])

# %% [markdown]
# ## Is the codebook alive?
#
# How often each code is used over the whole test split. A collapsed codebook (a few codes doing
# all the work) would make the LLM's job easier but the images worse; a healthy one spreads use
# over many codes.

# %%
from healthgpt_lite.viz.vq import codebook_usage_figure
from healthgpt_lite.vq.metrics import code_counts, codebook_stats

counts = code_counts(indices, tok.n_codes)
stats = codebook_stats(counts)
codebook_usage_figure(counts, f"test split: {stats['usage']:.0%} of {tok.n_codes} codes used, "
                              f"perplexity {stats['perplexity']:.0f}")

# %% [markdown]
# ## A real CT slice it never saw
#
# The tokenizer learned from phantoms. A real CT (pydicom's `CT_small.dcm`, through the same
# `load_image`) has noise, fine texture and anatomy no phantom has: the reconstruction shows what
# the codebook can and cannot express. (Expect a lower score than on phantoms: this is a
# *distribution shift*, the reason real systems train tokenizers on large, varied image sets.)

# %%
from pydicom.data import get_testdata_file

real_ct = load_image(get_testdata_file("CT_small.dcm"), size=tok.resolution)[None]  # (1, 3, R, R)
real_idx = tok.encode(real_ct)
real_rec = tok.decode(real_idx)
p, s = image_metrics(real_rec, real_ct)
print(f"real CT: {p.item():.1f} dB, SSIM {s.item():.3f}; {len(real_idx.unique())} distinct codes in its "
      f"{real_idx.numel()} tokens")
token_grid_figure(real_ct[0], real_idx[0], real_rec[0], tok.n_codes, "real CT (pydicom CT_small.dcm)")

# %% [markdown]
# ## The numbers against the targets
#
# `evaluate_vq` measures the whole test split (the same function as
# `python -m healthgpt_lite vq --profile cpu --split test`). Targets for the `cpu` profile:
# ≤ 256 tokens per image, PSNR ≥ 30 dB, SSIM ≥ 0.90, ≥ 50% of codes used, training ≤ 5 minutes on
# 2 cores. The `smoke` profile (CI) trains for seconds only to prove the pipeline runs: its
# numbers are far from the targets.

# %%
from healthgpt_lite.vq import evaluate_vq

result = evaluate_vq(tok, data_dir, "test")
targets = [("tokens per image", result["tokens_per_image"], "<= 256", result["tokens_per_image"] <= 256),
           ("PSNR (dB)", result["psnr"], ">= 30", result["psnr"] >= 30),
           ("SSIM", result["ssim"], ">= 0.90", result["ssim"] >= 0.90),
           ("codes used (fraction)", result["usage"], ">= 0.50", result["usage"] >= 0.5),
           ("training (s)", meta["train_seconds"], "<= 300", meta["train_seconds"] <= 300)]
table = pd.DataFrame([(name, f"{value:g}", goal, ok) for name, value, goal, ok in targets],
                     columns=["metric", f"measured ({run.cfg.profile})", "target (cpu)", "met"])
display(table.set_index("metric"))
pd.DataFrame([{m: result[f"{k}_{m}"] for m in ("ct", "mri", "xray")} for k in ("psnr", "ssim")], index=["PSNR", "SSIM"])

# %% [markdown]
# ## The real tokenizer: taming's f8-8192 checkpoint
#
# The `m3` preset has the shapes of HealthGPT's tokenizer (256 px, f8, 8192 codes, Gumbel
# quantizer). Nothing is downloaded here; given the checkpoint file, one override loads it
# (`vq/convert.py` checks every key and shape, drops the training-only `loss.*` tensors, and reads
# `.ckpt` files with `torch.load(weights_only=True)`, never running pickled code):
#
# ```python
# cfg = build_config("m3", "gpu", {"vq.pretrained_path": "/models/vqgan_gumbel_f8/last.ckpt"})
# tok = load_vq_tokenizer(cfg)          # 256x256 -> 32x32 = 1024 tokens of 8192 codes
# ```
#
# Our module and parameter names are taming's (`encoder.down.0.block.0.conv1.weight`, …,
# `quantize.proj`, `quantize.embed`), so the same code that trains the tiny model runs the real one.
# Let us run that path for real on a small file: write the tokenizer trained above as taming
# saves a Lightning checkpoint (`{"state_dict": ...}` with taming's training-only LPIPS and
# discriminator tensors `loss.*` beside the model), then load it the way the real one is loaded.

# %%
import torch

from healthgpt_lite.config import build_config

taming_dir = run.artifacts_dir / "taming_demo"
taming_dir.mkdir(parents=True, exist_ok=True)
ours_only = {f"quantize.{name}" for name in tok.model.quantize.STATISTICS}  # our k-means/EMA counters
model_state = {k: v for k, v in tok.model.state_dict().items() if k not in ours_only}
loss_state = {"loss.logvar": torch.zeros(()), "loss.discriminator.main.0.weight": torch.randn(64, 3, 4, 4),
              "loss.perceptual_loss.net.slice1.0.weight": torch.randn(64, 3, 3, 3)}
ckpt = taming_dir / "last.ckpt"
torch.save({"epoch": 0, "global_step": run.cfg.vq.train_steps, "state_dict": {**model_state, **loss_state}}, ckpt)
print(f"{ckpt.name}: {len(model_state)} model tensors + {len(loss_state)} loss.* tensors, "
      f"{ckpt.stat().st_size / 1e6:.1f} MB")

# %%
real_cfg = build_config(run.cfg.preset, run.cfg.profile, {**OVERRIDES, "vq.pretrained_path": str(ckpt)})
loaded = load_vq_tokenizer(real_cfg)  # the real path: vq/convert.py, strict about keys and shapes
same = torch.equal(loaded.encode(test_images[:8]), tok.encode(test_images[:8]))
print(f"loaded through the converter: {loaded}; same codes as the trained tokenizer on 8 test images: {same}")

# %% [markdown]
# The converter refuses a checkpoint that does not match the config, and says why: here the same
# file under a Gumbel config (HealthGPT's quantizer), as when `vq.quantizer` was forgotten.

# %%
from healthgpt_lite.errors import InputError

try:
    load_vq_tokenizer(build_config(run.cfg.preset, run.cfg.profile,
                                   {**OVERRIDES, "vq.pretrained_path": str(ckpt), "vq.quantizer": "gumbel"}))
except InputError as e:
    print("InputError:", str(e)[:400], "...")

# %% [markdown]
# ## Summary
#
# * A VQ tokenizer turns an image into a grid of codebook indices (tiny: 256 tokens of 512 codes;
#   HealthGPT-M3: 1024 of 8192) and back: images become words an LLM can write.
# * Nearest-code quantization trains through the straight-through estimator plus a commitment
#   loss; k-means init, EMA updates and dead-code restarts keep the codebook in use.
# * The tokenizer's reconstruction quality is the ceiling of every generated image; we measure
#   it with PSNR/SSIM per modality and codebook usage/perplexity, on the test split.
# * Out-of-distribution images (a real CT) reconstruct worse: a tokenizer is only as general as
#   its training images.
#
# ## Check your understanding
#
# 1. Why can an LLM *read* an image through continuous features but needs discrete codes to
#    *write* one?
#
#    <details><summary>Answer</summary>
#
#    Next-token prediction chooses from a finite vocabulary; see the first section.
#
#    </details>
#
# 2. What does `z + (e - z).detach()` compute in the forward pass, and what gradient reaches the
#    encoder?
#
#    <details><summary>Answer</summary>
#
#    The code e; the decoder's gradient, unchanged: the straight-through estimator.
#
#    </details>
#
# 3. What happens to a code that no encoder output is ever closest to, and what do we do about
#    it?
#
#    <details><summary>Answer</summary>
#
#    It never moves and is wasted; it is restarted on a random encoder output.
#
#    </details>
#
# 4. If the tokenizer reconstructs CT at P dB, can the full HealthGPT generate CT at more than P
#    dB?
#
#    <details><summary>Answer</summary>
#
#    No: its best possible output is the tokenizer's reconstruction.
#
#    </details>
#
# 5. How many tokens does a 256×256 image cost with f = 8, and with f = 4?
#
#    <details><summary>Answer</summary>
#
#    1024; 4096.
#
#    </details>
#
# **Exercise:** [`exercises/02_vq`](../exercises/02_vq/student.ipynb) (nearest-code lookup,
# straight-through estimator, commitment loss, checked against this quantizer); all exercises:
# [`exercises/README.md`](../exercises/README.md).
