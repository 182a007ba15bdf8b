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
# # 07 · Stage 2: heterogeneous plugin adaptation
#
# **Learning objectives.** After this notebook you can
# 1. say what stage 2 trains (the word embeddings and the output head, every H-LoRA frozen) and
#    why it trains them on a *mix* of both tasks;
# 2. explain how a batch of each task flows through the model in one step (the task picks the
#    plugin, adapter and ViT layer; the embeddings and head are shared);
# 3. look inside the learned image vocabulary: do the `<idx_k>` embeddings mirror the VQ codebook?
#
# HealthGPT paper, "Three-stage Learning Strategy"; docs/PAPERS.md §3.

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
cfg = run.cfg
run

# %% [markdown]
# ## Why a stage for embeddings and head
#
# After stage 1 the two tasks own their own adapters and plugins, but they *share* the LLM's
# word embeddings and output head, the one place where both kinds of knowledge meet: the head
# must score text words for comprehension and image words for generation. The paper therefore
# tunes exactly those, on a small sample mixing stage-1 data of both tasks (47k samples for M3;
# here `train.stage2_samples` per task), with every plugin frozen so that neither task's plugin
# drifts towards the other. The schedule is constant.

# %%
from healthgpt_lite.training.stages import STAGES
from healthgpt_lite.viz.diagrams import stage_figure

spec = STAGES["stage2"]
print(spec.note)
stage_figure(spec)

# %% [markdown]
# Each training step draws one batch of each task (Lightning's `CombinedLoader`); the model
# switches task between them, so each batch goes through its own plugin, adapter and ViT layer,
# and the two losses are averaged.

# %%
from healthgpt_lite.training.pipeline import ensure_stages
from healthgpt_lite.training.trainer import plot_curves, read_metrics

paths = ensure_stages(cfg, ["stage2"], run.artifacts_dir, run.data_dir, run.progress)
metrics = read_metrics(paths["stage2"])
plot_curves(metrics, ["train/loss_comprehension", "train/loss_generation", "val/loss_comprehension",
                      "val/loss_generation"], title="stage 2: embeddings + head on a mix of both tasks")

# %% [markdown]
# ## What changed, in numbers
#
# Stage 2 only moved two matrices. How far, relative to their size, and which rows moved most:
# text rows or image rows?

# %%
import pandas as pd
import torch

from healthgpt_lite.training.pipeline import model_after

after1 = model_after(cfg, ["stage1_comprehension", "stage1_generation"], run.artifacts_dir)
after2 = model_after(cfg, ["stage1_comprehension", "stage1_generation", "stage2"], run.artifacts_dir)
block = after2.block
rows = []
for name, get in [("embeddings", lambda m: m.llm.get_input_embeddings().weight),
                  ("head", lambda m: m.llm.get_output_embeddings().weight)]:
    w1, w2 = get(after1).detach(), get(after2).detach()
    delta = (w2 - w1).norm(dim=1) / w1.norm(dim=1).clamp_min(1e-8)  # relative change per row
    rows.append({"matrix": name, "text rows: mean relative change": float(delta[:block.start].mean()),
                 "image rows: mean relative change": float(delta[block.first_idx:block.first_idx + block.n_codes].mean())})
pd.DataFrame(rows).set_index("matrix")

# %% [markdown]
# ## Does the image vocabulary mirror the codebook?
#
# Each `<idx_k>` embedding row was learned from how code k is *used*; the VQ codebook vector of
# code k is what it *looks like*. If the LLM has learned something about images, codes that look
# alike should have embeddings that are alike. We compare the two similarity structures over
# the codes the data actually uses (Spearman correlation of pairwise cosine similarities).

# %%
import numpy as np
from matplotlib.figure import Figure

from healthgpt_lite.training.features import FeatureStore, ensure_features
from healthgpt_lite.vq import load_vq_tokenizer

store = FeatureStore.load(ensure_features(cfg, run.artifacts_dir, run.data_dir))
counts = torch.bincount(store.codes.long().flatten(), minlength=block.n_codes)
used = torch.argsort(counts, descending=True)[:64]  # the 64 most used codes
codebook = load_vq_tokenizer(cfg, run.artifacts_dir).codebook()[used]  # (64, embed_dim)
token_rows = after2.llm.get_input_embeddings().weight.detach()[block.first_idx + used]  # (64, d)


def cosine_matrix(x: torch.Tensor) -> torch.Tensor:
    x = torch.nn.functional.normalize(x.float(), dim=1)
    return x @ x.T


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    iu = torch.triu_indices(len(a), len(a), 1)
    ra, rb = a[iu[0], iu[1]].argsort().argsort().float(), b[iu[0], iu[1]].argsort().argsort().float()
    return float(np.corrcoef(ra, rb)[0, 1])


sim_code, sim_tok = cosine_matrix(codebook), cosine_matrix(token_rows)
observed = spearman(sim_code, sim_tok)
# the null: the same embedding rows assigned to the codes at random (a shuffled pairing keeps
# both similarity structures but breaks the code <-> row correspondence)
g = torch.Generator().manual_seed(SEED)
null = np.array([spearman(sim_code, cosine_matrix(token_rows[torch.randperm(len(used), generator=g)]))
                 for _ in range(200)])
p_value = (1 + int((null >= observed).sum())) / (1 + len(null))

fig = Figure(figsize=(13, 3.6))
for i, (m, title) in enumerate([(sim_code, "VQ codebook vectors"), (sim_tok, "<idx_k> embedding rows")]):
    ax = fig.add_subplot(1, 3, i + 1)
    im = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_title(title, fontsize=9), ax.set_xlabel("code (rank by frequency)")
    if i == 0:
        ax.set_ylabel("code (rank by frequency)")
fig.colorbar(im, ax=fig.axes[:2], shrink=0.8, label="cosine similarity between two codes")
ax = fig.add_subplot(1, 3, 3)
ax.hist(null, bins=25, color="0.6", label="shuffled pairing (null, 200 draws)")
ax.axvline(observed, color="C3", lw=2, label=f"observed {observed:+.2f}")
ax.set_xlabel("Spearman correlation of the two structures"), ax.set_ylabel("draws")
ax.set_title("is the match better than chance?", fontsize=9), ax.legend(fontsize=7)
print(f"Spearman correlation of the two similarity structures: {observed:+.2f}; shuffled null: "
      f"{null.mean():+.2f} ± {null.std():.2f} (95% of draws below {np.quantile(null, 0.95):+.2f}); "
      f"one-sided p = {p_value:.3f}")
print("finding:", "the rows mirror the codebook beyond chance" if p_value < 0.05 else
      "no evidence that the rows mirror the codebook (the observed value lies inside the null)")
fig

# %% [markdown]
# What the null rules out, and what it does not: shuffling which row belongs to which code
# destroys any real correspondence, so a value far outside the grey histogram is not luck. It
# also destroys the link to *how often* a code is used, though; if frequent codes both look alike
# and moved most in training, frequency alone could produce a match. A stricter null would shuffle
# only among codes of similar frequency.

# %% [markdown]
# ## Summary
#
# * Stage 2 tunes the shared vocabulary (embeddings + head) on a small mix of both tasks, with
#   every plugin frozen, so that neither task's plugin drifts towards the other.
# * One step = one batch per task, each through its own plugin, adapter and ViT layer.
# * The learned image rows can be compared with the VQ codebook: structure there was learned
#   from data, since all rows started equal; a shuffled pairing of rows and codes is the null
#   that says whether this run's match is more than chance (the finding printed above).
#
# ## Check your understanding
#
# 1. Why are the H-LoRA plugins frozen in stage 2?
#
#    <details><summary>Answer</summary>
#
#    So the shared parameters adapt to both tasks without either plugin absorbing the other
#    task's data.
#
#    </details>
#
# 2. What would go wrong if stage 2 used only generation data?
#
#    <details><summary>Answer</summary>
#
#    The shared embeddings and head would be tuned for image codes alone, drifting away from
#    what comprehension needs, and stage 3's comprehension would start from a vocabulary tuned
#    against it: notebook 10's task conflict, in the shared parameters.
#
#    </details>
#
# 3. Why a constant learning rate rather than a decaying one here? (The paper does not say; what
#    would you expect?)
#
#    <details><summary>Answer</summary>
#
#    Stage 2 is short and adjusts rows that both plugins already rely on; a decay would spend
#    most of its few steps at tiny rates. A constant rate after warm-up keeps every step equally
#    useful; at so few steps one would expect little difference either way.
#
#    </details>
#
# **Exercise:** [exercises/04_stage_rules](../exercises/README.md).
