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
# # Exercise 03 · The H-LoRA forward pass: k experts in two matrix products
#
# **Learning objectives.** After this exercise you can
# 1. expand per-expert router weights onto the rank columns each expert owns, and spot the
#    bug that gives each column the weight of the wrong expert;
# 2. write the fused H-LoRA update `B(w_exp ⊙ A x) · α / r` with the router's softmax over the
#    experts and the right scale;
# 3. write the same update as MoELoRA's loop over experts and show, numerically and with block
#    matrices, that the two are one function;
# 4. say what the fused form saves.
#
# The project's versions are `healthgpt_lite/lora/hlora.py` (`HLoRAPlugin`) and
# `lora/moelora.py` (`MoELoRAPlugin`); notebook 05 explains them. Write the code where a cell
# says `return None  # your code here`, run the `check()` cell below it, and use `q1.hint()`
# (then `q1.hint(2)`) / `q1.solution()` when stuck. A blank answer does not stop the notebook:
# later cells then use the reference (set `STRICT = True` to make them fail instead). Calling
# the package's own plugins is not an answer: the check notices.

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
q1, q2, q3 = load_questions("03_hlora_forward", globals(), strict=STRICT)

# %% [markdown]
# ## The layout (docs/PAPERS.md §2; HealthGPT paper, "Heterogeneous Knowledge Adaptation")
#
# One H-LoRA plugin on a linear layer `d_in → d_out` has k experts of rank r, stored **fused**,
# with the shapes `nn.Linear` gives its weights:
#
# | matrix | shape | holds |
# |---|---|---|
# | `A` | `(r·k, d_in)` | the experts' down-projections stacked: expert i owns **rows** `[i·r, (i+1)·r)` |
# | `B` | `(d_out, r·k)` | the up-projections side by side: expert i owns **columns** `[i·r, (i+1)·r)` |
# | `router` | `(k, d_in)` | one logit per expert and token |
#
# Per token: `w = softmax(router x)` (k weights summing to 1), and the update is
# `scale · Σ_i w_i B_i A_i x` with `scale = α / r` (α over the rank of **one** expert; the
# released sizes use α = 2·r·k). Dropout on `A x` during training is left out here: the checks
# compare functions, in eval mode.
#
# ## Q1 · Expanding the router weights
#
# To do the whole sum in two matrix products, every rank column of `A x` must be multiplied by
# the weight of the expert that owns it. Write `expand_router_weights(w, rank_per_expert)`:
# `w` is `(..., k)`, return `(..., r·k)` with expert i's weight on columns `[i·r, (i+1)·r)`.

# %%
import torch


def expand_router_weights(w: torch.Tensor, rank_per_expert: int) -> torch.Tensor:
    """(..., k) -> (..., r*k): expert i's weight on rank columns [i*r, (i+1)*r)."""
    ### BEGIN SOLUTION stub: return None  # your code here
    return w.repeat_interleave(rank_per_expert, dim=-1)  # (w1, w1, ..., w2, w2, ...)
    ### END SOLUTION


# %%
q1.check()

# %%
# q1.hint()
# q1.hint(2)
# q1.solution()

# %% [markdown]
# Your expansion for one token with k = 4 experts of rank r = 3: the top row says which expert
# owns each rank column, the bottom row whose weight your function put there.

# %%
from healthgpt_lite.exercises.ex03_hlora_forward import expansion_figure

w = torch.tensor([0.1, 0.2, 0.3, 0.4])  # (k,) one token's router weights
expansion_figure(w, 3, expand_router_weights(w, 3))

# %% [markdown]
# ## Q2 · The fused forward
#
# Write `hlora_forward(x, A, B, router, experts, alpha)` for `x` of shape `(..., d_in)` (any
# number of leading dimensions: batch, tokens): the plugin's update `(..., d_out)`, without the
# frozen `W0 x`. With `r = A.shape[0] // experts`:
#
# $$w = \operatorname{softmax}(x R^\top), \qquad \Delta = \big((w_{\text{exp}} \odot x A^\top)\, B^\top\big)\cdot \frac{\alpha}{r}.$$
#
# The check builds the project's `HLoRAPlugin` with your weights (float64) and compares.

# %%
import torch.nn.functional as F


def hlora_forward(x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, router: torch.Tensor, experts: int,
                  alpha: float) -> torch.Tensor:
    """The fused H-LoRA update (..., d_out) of x (..., d_in)."""
    ### BEGIN SOLUTION stub: return None  # your code here
    r = A.shape[0] // experts  # rank per expert
    w = F.softmax(x @ router.T, dim=-1)  # (..., k): sums to 1 over the experts
    w_exp = expand_router_weights(w, r)  # (..., r*k)
    return ((w_exp * (x @ A.T)) @ B.T) * (alpha / r)  # (..., d_out)
    ### END SOLUTION


# %%
q2.check()

# %%
# q2.hint()
# q2.hint(2)
# q2.solution()

# %% [markdown]
# ## Q3 · The same update as a loop over experts (MoELoRA)
#
# Write `moelora_forward(x, A, B, router, experts, alpha)`, the paper's baseline: cut the fused
# matrices into expert blocks, `A_i = A[i·r:(i+1)·r]` (rows), `B_i = B[:, i·r:(i+1)·r]`
# (columns), and add `w_i · B_i A_i x` expert by expert, times `α / r`. The check compares with
# the project's `MoELoRAPlugin` holding the same weights (`copy_from_fused`).

# %%
def moelora_forward(x: torch.Tensor, A: torch.Tensor, B: torch.Tensor, router: torch.Tensor, experts: int,
                    alpha: float) -> torch.Tensor:
    """The same update as hlora_forward, as a sum over the k experts."""
    ### BEGIN SOLUTION stub: return None  # your code here
    r = A.shape[0] // experts
    w = F.softmax(x @ router.T, dim=-1)  # (..., k)
    out = 0
    for i in range(experts):
        a_i, b_i = A[i * r:(i + 1) * r], B[:, i * r:(i + 1) * r]  # (r, d_in), (d_out, r)
        out = out + w[..., i:i + 1] * (x @ a_i.T @ b_i.T)  # (..., 1) * (..., d_out)
    return out * (alpha / r)
    ### END SOLUTION


# %%
q3.check()

# %%
# q3.hint()
# q3.hint(2)
# q3.solution()

# %% [markdown]
# ## Why the two are one function
#
# For one token x, both compute `Δ = ΔW(x) x` with a per-token weight update `ΔW(x)`. Fused:
# `ΔW(x) = s · B diag(w_exp) A`. Write `B diag(w_exp) A` as a sum over the rank columns j:
# `Σ_j w_exp[j] B[:, j] A[j, :]`. Group the columns by expert: the r columns of expert i all
# carry the same weight `w_i`, and together they are `B_i A_i`. So
#
# $$B \operatorname{diag}(w_{\text{exp}}) A = \sum_i w_i B_i A_i .$$
#
# Both sides, computed for one token of a random layer (float64), then your two functions on a
# batch:

# %%
torch.manual_seed(SEED)
k, r, d_in, d_out, alpha = 4, 3, 24, 16, 24.0
A, B, router = torch.randn(r * k, d_in, dtype=torch.float64), torch.randn(d_out, r * k, dtype=torch.float64), torch.randn(k, d_in, dtype=torch.float64)
x = torch.randn(2, 10, d_in, dtype=torch.float64)  # (batch, tokens, d_in)

w_tok = F.softmax(router @ x[0, 0], dim=-1)  # (k,) the first token's router weights
fused_matrix = B @ torch.diag(expand_router_weights(w_tok, r)) @ A  # (d_out, d_in)
expert_sum = sum(w_tok[i] * B[:, i * r:(i + 1) * r] @ A[i * r:(i + 1) * r] for i in range(k))  # (d_out, d_in)
print(f"one token:  max |B diag(w_exp) A - sum_i w_i B_i A_i| = {(fused_matrix - expert_sum).abs().max():.1e}"
      f"  (entries up to {fused_matrix.abs().max():.1f}; its rank {torch.linalg.matrix_rank(fused_matrix)} <= r*k = {r * k})")
fused, looped = hlora_forward(x, A, B, router, k, alpha), moelora_forward(x, A, B, router, k, alpha)
print(f"your functions on {tuple(x.shape)}: max |fused - loop| = {(fused - looped).abs().max():.1e}, "
      f"update size {fused.abs().max():.1f}")
wrong = (F.softmax(x @ router.T, -1).repeat(1, 1, r) * (x @ A.T)) @ B.T * (alpha / r)  # `repeat`, not repeat_interleave
print(f"with `repeat` instead: max |wrong - loop| = {(wrong - looped).abs().max():.1f}")

# %% [markdown]
# ## What the fused form saves
#
# Same function, different cost: the loop runs 2k small matrix products and k weighted sums per
# layer, the fused form two larger products and one elementwise product. Your two functions on a
# bigger layer (one CPU thread, median of several runs; forward only — notebook 05 benchmarks
# whole training steps):

# %%
import time

from healthgpt_lite.vision.probes import one_thread


def median_seconds(fn, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


k, r, d = 8, 8, 512
A, B, router = torch.randn(r * k, d) / d**0.5, torch.randn(d, r * k), torch.randn(k, d) / d**0.5
x = torch.randn(4, 256, d)  # (batch, tokens, d)
with one_thread(), torch.no_grad():
    t_fused = median_seconds(lambda: hlora_forward(x, A, B, router, k, 2.0 * r * k))
    t_loop = median_seconds(lambda: moelora_forward(x, A, B, router, k, 2.0 * r * k))
print(f"k={k} experts of rank {r}, d={d}, {x.shape[0] * x.shape[1]} tokens: fused {t_fused * 1e3:.2f} ms, "
      f"loop {t_loop * 1e3:.2f} ms -> the loop takes {t_loop / t_fused:.1f}x as long")

# %% [markdown]
# ## Summary
#
# * Expert i owns rows `[i·r, (i+1)·r)` of A and those columns of B; its router weight is
#   repeated **in place** over them: `repeat_interleave(w, r, dim=-1)`, not `repeat`.
# * Fused update: `B(w_exp ⊙ A x) · α / r`, with `w = softmax` over the k experts of each token.
# * `B diag(w_exp) A = Σ_i w_i B_i A_i` (block matrix multiplication), so H-LoRA *is* MoELoRA,
#   computed in two matrix products instead of 2k.
#
# ## Check your understanding
#
# <details><summary>1. With <code>repeat</code> instead of <code>repeat_interleave</code>, which
# expert's weight does rank column j get?</summary>
#
# Expert j mod k instead of j // r.
# </details>
#
# <details><summary>2. Why must the softmax run over the last dimension of
# <code>router(x)</code>?</summary>
#
# Each token mixes its own k experts; over another dimension tokens would share one
# normalisation.
# </details>
#
# <details><summary>3. If you scaled by α / (r·k), by how much would the update
# shrink?</summary>
#
# k times: the plugin would behave as if α were α / k.
# </details>
#
# <details><summary>4. With one expert (k = 1), what is H-LoRA?</summary>
#
# Plain LoRA: the softmax is 1; notebook 05 checks it against peft.
# </details>
#
# All exercises: [exercises/README.md](../README.md).
