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
# # Exercise 02 · Vector quantization: nearest code, straight-through gradients, commitment loss
#
# **Learning objectives.** After this exercise you can
# 1. find the nearest code of thousands of vectors at once, with one matrix product and no
#    Python loop;
# 2. write the straight-through estimator and say which gradient it sends where;
# 3. write the VQ loss and explain why its value cannot tell you whether it is right;
# 4. put the pieces together in the `(B, D, h, w)` layout of a VQGAN and match the project's
#    quantizer exactly, then watch a toy tokenizer fail without the straight-through estimator.
#
# HealthGPT writes images as VQ codes (docs/PAPERS.md §1; van den Oord et al. 2017, "Neural Discrete
# Representation Learning"); the project's quantizer is `healthgpt_lite/vq/quantizer.py` and
# notebook 03 trains the tokenizer. Write the code where a cell says `return None  # your code
# here`, run the `check()` cell below it, and use `q1.hint()` (then `q1.hint(2)`) /
# `q1.solution()` when stuck. A blank answer does not stop the notebook: later cells then use
# the reference (set `STRICT = True` to make them fail instead). Calling the package's own
# implementation is not an answer: the check notices.

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
q1, q2, q3, q4 = load_questions("02_vq", globals(), strict=STRICT)

# %% [markdown]
# ## Q1 · The nearest code
#
# The encoder gives one vector `z` (dimension D) per grid cell; the codebook holds N code vectors
# `e_0 … e_{N-1}`. Each `z` is replaced by its nearest code in squared L2 distance. For M vectors
# at once (the tiny preset: 16 images × 16 × 16 cells = 4096 rows, 512 codes), expand
#
# $$\lVert z - e \rVert^2 = \lVert z \rVert^2 - 2\, z \cdot e + \lVert e \rVert^2 :$$
#
# a `(M, 1)` column, a `(M, N)` matrix product and a `(N,)` row broadcast into one `(M, N)`
# matrix of distances, without a Python loop (`torch.cdist` does the same; write the expansion,
# it is what the quantizer uses). Write `nearest_code(flat, codebook)`: `flat` is `(M, D)`,
# `codebook` `(N, D)`; return the `(M,)` int64 indices.

# %%
import torch


def nearest_code(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(M,) index of the nearest code (squared L2) for each row of ``flat`` (M, D)."""
    return None  # your code here


# %%
q1.check()

# %%
# q1.hint()
# q1.hint(2)
# q1.solution()

# %% [markdown]
# ## Q2 · The straight-through estimator
#
# `argmin` has no gradient: the decoder's gradient stops at the codes and the encoder would
# never learn. The straight-through estimator pretends, in the backward pass only, that the
# quantizer was the identity: the forward value is the code `z_q`, the gradient that reaches `z`
# is the decoder's gradient, unchanged, and the codebook gets **none** through this path (it
# learns from the loss of Q3). Write `straight_through(z, z_q)` (same shapes).

# %%
def straight_through(z: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Value z_q; gradient copied to z unchanged, none to z_q."""
    return None  # your code here


# %%
q2.check()

# %%
# q2.hint()
# q2.hint(2)
# q2.solution()

# %% [markdown]
# Check it yourself: the gradient of `sum(straight_through(z, z_q) * g)` is `g` for `z` and
# nothing for `z_q`.

# %%
z, z_q, g = torch.randn(4, requires_grad=True), torch.randn(4, requires_grad=True), torch.tensor([1.0, 2, 3, 4])
(straight_through(z, z_q) * g).sum().backward()
print("value = z_q (to rounding):", torch.allclose(straight_through(z, z_q), z_q, atol=1e-6), "| grad z:", z.grad.tolist(), "| grad z_q:", z_q.grad)

# %% [markdown]
# ## Q3 · The VQ loss
#
# Two squared errors between `z` and `z_q`, each moving only **one** side (`sg` = stop-gradient,
# `.detach()`; eq. 3 of the VQ-VAE paper):
#
# $$\mathcal{L}_{VQ} = \underbrace{\lVert \mathrm{sg}[z] - z_q \rVert^2}_{\text{codebook: codes move to the encoder}}
#   + \beta\,\underbrace{\lVert z - \mathrm{sg}[z_q] \rVert^2}_{\text{commitment: the encoder stays near its code}}$$
#
# with means over all values (`F.mse_loss`) and β = 0.25 (`cfg.vq.beta`). Write
# `vq_loss(z, z_q, beta)`. Notice that both terms have the same *value*: the check therefore
# also compares the gradients that reach `z` and `z_q`.

# %%
import torch.nn.functional as F


def vq_loss(z: torch.Tensor, z_q: torch.Tensor, beta: float) -> torch.Tensor:
    """Codebook loss + beta * commitment loss (a 0-dim tensor)."""
    return None  # your code here


# %%
q3.check()

# %%
# q3.hint()
# q3.hint(2)
# q3.solution()

# %% [markdown]
# ## Q4 · The whole quantizer, in a VQGAN's layout
#
# The VQGAN's encoder outputs `z` of shape `(B, D, h, w)`: D channels per grid cell. Write
# `quantize(z, codebook, beta)` returning `(quantized, loss, indices)`: `quantized` `(B, D, h, w)`
# (straight-through), `loss` the VQ loss, `indices` `(B, h, w)` int64. Use your three functions.
# The layout is the trap: each row of the flat matrix must be **one cell's** D-vector, so move D
# last before flattening, and move it back at the end. The check runs the project's
# `VectorQuantizer` with your codebook and compares values, indices, loss and gradients.

# %%
def quantize(z: torch.Tensor, codebook: torch.Tensor, beta: float):
    """(B, D, h, w) -> (quantized (B, D, h, w), loss (), indices (B, h, w))."""
    return None  # your code here


# %%
q4.check()

# %%
# q4.hint()
# q4.hint(2)
# q4.solution()

# %% [markdown]
# ## Why the straight-through estimator matters: a toy tokenizer
#
# A 2-D autoencoder: a linear encoder, **your** `quantize` with 16 codes, a linear decoder,
# trained on points in three clusters with reconstruction error + VQ loss. The encoder starts
# as a rank-1 map that lays two of the clusters on top of each other, so the codes cannot tell
# them apart until the encoder learns to separate them, which needs the decoder's gradient.
# The second run replaces the straight-through output by the raw codes `codebook[indices]`:
# the decoder's gradient then goes into the codebook and never reaches the encoder.

# %%
import pandas as pd

from healthgpt_lite.exercises.ex02_vq import toy_points, train_toy_vq
from healthgpt_lite.training.trainer import plot_curves
from healthgpt_lite.viz.vq import quantization_figure


def quantize_without_ste(z, codebook, beta):
    quantized, loss, indices = quantize(z, codebook, beta)
    return codebook[indices].permute(0, 3, 1, 2), loss, indices  # the codes themselves: no path to z


steps = 300  # a toy: the same in every profile
points = toy_points(SEED)  # (600, 2)
runs = {"straight-through": train_toy_vq(quantize, points, steps, seed=SEED),
        "no straight-through": train_toy_vq(quantize_without_ste, points, steps, seed=SEED)}
curves = pd.DataFrame({"step": range(steps), **{k: r["reconstruction"] for k, r in runs.items()}})
for name, r in runs.items():
    print(f"{name:>19}: final reconstruction MSE {r['reconstruction'][-1]:.3f}, codes in use {r['indices'].unique().numel()} of 16")
plot_curves(curves, list(runs), title="toy VQ autoencoder: reconstruction MSE", logy=True)

# %% [markdown]
# Where the encoder put the points at the end (coloured by their code, codes as crosses): with
# the straight-through estimator the encoder has pulled the three clusters apart and the codes
# have spread over them; without it the encoder never learnt from reconstruction: every point
# still sits on one line, two clusters on top of each other, and no decoder can separate them.
# (Its only pull is the commitment term, towards the codes: with luck and many more steps the
# codes the decoder moves can drag it out, indirectly. Seeds 0-3 all stay stuck for 300 steps.)

# %%
for name, r in runs.items():
    display(quantization_figure(r["z"], r["codebook"], r["indices"], f"encoder outputs, {name}"))

# %% [markdown]
# ## Summary
#
# * Nearest code: `‖z‖² − 2 z·e + ‖e‖²` as one `(M, N)` matrix, then `argmin` (never `argmax`, and
#   never the dot product alone: long codes would win).
# * Straight-through: `z + (z_q − z).detach()`: the value is the code, the gradient goes to the
#   encoder unchanged, and none to the codebook.
# * VQ loss: `mse(z_q, sg[z]) + β · mse(z, sg[z_q])`; its two terms have the same value, so only
#   the gradients show where β and the stop-gradients belong.
# * Layout: flatten `(B, D, h, w)` as `permute(0, 2, 3, 1).reshape(-1, D)`, and back.
#
# ## Check your understanding
#
# <details><summary>1. Why is the <code>‖z‖²</code> term not needed to find the argmin, but
# <code>‖e‖²</code> is?</summary>
#
# `‖z‖²` is the same for every code of a row; `‖e‖²` differs per code.
# </details>
#
# <details><summary>2. In the toy, where did the decoder's gradient go without the
# straight-through estimator?</summary>
#
# Into the codebook rows, through `codebook[indices]`; the encoder got only the commitment pull.
# </details>
#
# <details><summary>3. With β on the codebook term instead, what changes during
# training?</summary>
#
# The codes follow the encoder 4× more slowly and the encoder is pulled 4× harder towards its
# code.
# </details>
#
# <details><summary>4. What does the project's EMA quantizer (<code>ema=True</code>) use instead
# of the codebook term?</summary>
#
# Running averages of the vectors assigned to each code; `vq/quantizer.py`.
# </details>
#
# Notebook 03 (`notebooks/03_vq_tokenizer.py`) trains the tokenizer with these pieces. All
# exercises: [exercises/README.md](../README.md).
