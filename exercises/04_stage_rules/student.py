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
# # Exercise 04 · Stage rules: what trains in each stage, for each task
#
# **Learning objectives.** After this exercise you can
# 1. say, for each of HealthGPT's three training stages and each task, which parameter groups
#    learn and which stay frozen, and why;
# 2. explain the pitfall of the new image-token rows and how this project avoids it;
# 3. freeze a model for a stage with `requires_grad`, including the case where one tensor
#    belongs to two groups;
# 4. read off what fraction of HealthGPT-M3's 4 billion parameters each stage trains.
#
# Write the code where a cell says `raise NotImplementedError  # your code here`, run the
# `check()` cell below it, and use `q1.hint()` / `q1.solution()` when stuck. Blank answers do
# not stop the notebook: later cells then use the reference (set `STRICT = True` to make them
# fail instead).

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
q1, q2 = load_questions("04_stage_rules", globals(), strict=STRICT)

# %% [markdown]
# ## The three stages (REFERENCE §3, paper §3.4)
#
# HealthGPT never trains the frozen CLIP ViT or the LLM's base weights. What it trains is a
# handful of small **parameter groups**:
#
# | group | what it is |
# |---|---|
# | `abstract_adapter` | the comprehension `mlp2x_gelu` projector (reads ViT layer −2) |
# | `concrete_adapter` | the generation `mlp2x_gelu` projector (reads ViT layer 1) |
# | `comp_plugin` | the comprehension H-LoRA plugin (A, B and router of every layer) |
# | `gen_plugin` | the generation H-LoRA plugin |
# | `embeddings` | every row of the input word embeddings |
# | `head` | every row of the output head (`lm_head`) |
# | `image_rows` | only the new `<start_index>`, `<idx_*>`, `<end_index>` rows of both |
#
# and the paper's three stages decide which:
#
# * **Stage 1, multimodal alignment.** Each task first learns to *connect* the image to the
#   frozen LLM. Comprehension trains only its adapter, on reports. Generation trains its adapter
#   and its H-LoRA plugin on *reconstruction* (image → its own VQ indices).
# * **Stage 2, heterogeneous plugin adaptation.** One joint stage for both tasks on a small mix
#   of stage-1 data: only the word embeddings and the output head train, every H-LoRA plugin is
#   frozen, so the shared vocabulary fits both plugins.
# * **Stage 3, visual instruction fine-tuning.** Each task tunes its own plugin and adapter on its
#   task data (VQA and reports; CT↔MRI, super-resolution, reconstruction, report→image).
#
# **The pitfall.** The 8195 new image-token rows all start as the *mean* of the text rows, so
# they are identical: in stage 1 every `<idx_k>` would get the same logit, and generation could
# not learn which code comes next until stage 2. This project therefore also trains
# `image_rows` (only the new rows; the text rows stay frozen) in **stage-1 generation**.
#
# ## Q1 · Which groups train?
#
# Write `trainable_groups(stage, task)`: for `stage` in `"stage1"`, `"stage2"`, `"stage3"` and
# `task` in `"comprehension"`, `"generation"`, return the *set* of group names that train.

# %%
def trainable_groups(stage: str, task: str) -> set[str]:
    """The parameter groups that train in ``stage`` for ``task``."""
    return None  # your code here


# %%
q1.check()

# %%
# q1.hint()
# q1.solution()

# %% [markdown]
# Your table, drawn on the model (orange: trains). The two stages below are the instructive
# ones: stage-1 generation touches three places at once, stage 2 only the vocabulary.

# %%
from healthgpt_lite.viz.diagrams import architecture_figure

BOX = {"image_rows": "embeddings", "head": "embeddings"}  # both live in the embeddings box of the figure
for stage, task in [("stage1", "generation"), ("stage2", "comprehension")]:
    trained = {BOX.get(g, g) for g in trainable_groups(stage, task)}
    display(architecture_figure(trained, title=f"{stage}, {task}: trains {sorted(trainable_groups(stage, task))}"))

# %% [markdown]
# ## Q2 · Freeze the model for a stage
#
# A PyTorch optimiser only updates tensors with `requires_grad=True`, and a freshly built model
# has it on **everywhere**. Write `set_trainable(model, groups, stage, task)`: afterwards exactly
# the parameters of the stage's groups (from your `trainable_groups`) have `requires_grad=True`,
# and everything else in `model`, the ViT and the LLM base weights included, is frozen.
# `groups` maps each group name to its list of parameters, as `model.parameter_groups()`
# returns it. Careful: `image_rows` holds the *same two tensors* as `embeddings` and `head`
# (its row mask is applied to the gradient during training, `training/lit_module.py`).

# %%
def set_trainable(model, groups: dict, stage: str, task: str) -> None:
    """requires_grad=True on exactly the parameters of the groups that train in this stage."""
    raise NotImplementedError  # your code here


# %%
q2.check()

# %%
# q2.hint()
# q2.solution()

# %% [markdown]
# ## What each stage costs at the real size
#
# `ShapedHealthGPT` builds HealthGPT-M3's parameters (CLIP ViT-L/14-336, Phi-3-mini with the
# image vocabulary, both adapters, both H-LoRA plugins) on PyTorch's `meta` device: shapes
# without memory. Your `set_trainable` picks what trains; we count it. For `image_rows` only the
# 8195 new rows of the two matrices really learn (the gradient mask), so we count those.

# %%
import pandas as pd

from healthgpt_lite.config import build_config
from healthgpt_lite.exercises.ex04_stage_rules import ShapedHealthGPT
from healthgpt_lite.training.stages import ORDER, STAGES

m3 = build_config("m3", PROFILE)
model = ShapedHealthGPT(m3)
total = sum(p.numel() for p in model.parameters())
rows = []
for name in ORDER:
    spec = STAGES[name]
    set_trainable(model, model.parameter_groups(), spec.stage, spec.tasks[0])
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if "image_rows" in spec.trains:  # only the new rows of the embeddings and the head learn
        trained -= 2 * (model.llm.config.vocab_size - (m3.vq.n_embed + 3)) * m3.llm.hidden_size
    rows.append({"stage": name, "trains": ", ".join(sorted(spec.trains)), "trained (M)": round(trained / 1e6, 1),
                 "% of model": round(100 * trained / total, 2)})
print(f"HealthGPT-M3 here has {total / 1e9:.2f} B parameters")
pd.DataFrame(rows)

# %% [markdown]
# No stage trains more than a tenth of the model. Stage-1 comprehension trains a quarter of a
# percent (one small adapter); the generation plugin, rank r·k = 256 on every linear layer of
# all 32 decoder layers, is the largest trained part (about 9 %); stage 2's embeddings and head
# are about 5 % because those two matrices are large (40206 × 3072 each).
#
# ## Summary
#
# * Stage 1 aligns: the comprehension adapter alone; the generation adapter and plugin (and here
#   the new image-token rows, the pitfall fix).
# * Stage 2 is one joint stage: word embeddings and output head only, all plugins frozen.
# * Stage 3 tunes each task's own plugin and adapter.
# * Freezing is two passes: everything off, then the stage's groups on; one tensor can be in two
#   groups, so a one-pass "on or off per group" loop gets it wrong.
#
# ## Check your understanding
#
# 1. Why would stage-1 generation fail to learn *which* `<idx_k>` comes next if the new rows
#    stayed frozen? *(They start identical, so every image token gets the same logit: the pitfall.)*
# 2. Why are all H-LoRA plugins frozen in stage 2? *(Only the shared vocabulary adapts to both
#    plugins; the plugins keep what they learnt, Stage 2 above.)*
# 3. A one-pass loop `for g, ps in groups.items(): ... requires_grad_(g in trains)` fails in
#    which stage, and why? *(Stage 2: `image_rows` comes after `embeddings` and switches the
#    shared tensors off again.)*
#
# The stage table lives in `healthgpt_lite/training/stages.py`; the notebooks on training use
# it. All exercises: [exercises/README.md](../README.md).
