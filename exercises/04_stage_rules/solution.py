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
# # Exercise 04 · What trains in each stage: frozen tensors, and frozen rows of one tensor
#
# **Learning objectives.** After this exercise you can
# 1. freeze a model for a training stage with `requires_grad`, including the case where one
#    tensor belongs to two parameter groups;
# 2. let only some *rows* of a matrix learn, which `requires_grad` cannot do, with a gradient
#    hook, and say why the stage-1 generation run needs it (the new image-token rows);
# 3. verify with one optimiser step that the text rows did not move, and see that weight decay
#    would move them anyway;
# 4. read off what fraction of HealthGPT-M3's billions of parameters each stage trains.
#
# Write the code where a cell says `raise NotImplementedError  # your code here`, run the
# `check()` cell below it, and use `q1.hint()` (then `q1.hint(2)`) / `q1.solution()` when stuck.
# Blank answers do not stop the notebook: later cells then use the reference (set `STRICT =
# True` to make them fail instead). Calling the package's own function is not an answer: the
# check notices.

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
q1, q2 = load_questions("04_stage_rules", globals(), strict=STRICT)

# %% [markdown]
# ## The stage table (docs/PAPERS.md §3; HealthGPT paper, "Three-stage Learning Strategy")
#
# HealthGPT never trains the frozen CLIP ViT or the LLM's base weights. Each of its three
# stages trains a few small **parameter groups**, and the project keeps that decision as data,
# one row per stage and task (`training/stages.py`):

# %%
import pandas as pd

from healthgpt_lite.training.stages import ORDER, STAGES

pd.DataFrame([{"stage": name, "trains": ", ".join(STAGES[name].trains), "what it does": STAGES[name].note}
              for name in ORDER]).set_index("stage")

# %% [markdown]
# `image_rows` is not a tensor of its own: it is the word embedding and the output head again,
# of which only the new rows (`<start_index>`, every `<idx_k>`, `<end_index>`) may learn. Why the
# project adds it to stage-1 generation is the subject of Q2.
#
# ## Q1 · Freeze the model for a stage
#
# A PyTorch optimiser updates the tensors with `requires_grad=True`, and a freshly built model
# has it on **everywhere**. Write `set_trainable(model, groups, trains)`: afterwards exactly the
# parameters of the groups named in `trains` (a row's `.trains`) have `requires_grad=True`, and
# everything else in `model`, the ViT and the LLM base weights included, is frozen. `groups`
# maps each group name to its list of parameters, as `model.parameter_groups()` returns it.
# Run your function on every row of the table above in your head first: which row is the
# dangerous one?

# %%
def set_trainable(model, groups: dict, trains: tuple[str, ...]) -> None:
    """requires_grad=True on exactly the parameters of the groups in ``trains``."""
    ### BEGIN SOLUTION
    for p in model.parameters():
        p.requires_grad_(False)
    for group in trains:
        for p in groups[group]:
            p.requires_grad_(True)
    ### END SOLUTION


# %%
q1.check()

# %%
# q1.hint()
# q1.hint(2)
# q1.solution()

# %% [markdown]
# Your freeze, drawn on the model for the two instructive rows (orange: trains): stage-1
# generation touches three places at once, stage 2 only the vocabulary.

# %%
from healthgpt_lite.viz.diagrams import architecture_figure

BOX = {"image_rows": "embeddings", "head": "embeddings"}  # both live in the embeddings box of the figure
for name in ("stage1_generation", "stage2"):
    trains = STAGES[name].trains
    display(architecture_figure({BOX.get(g, g) for g in trains}, title=f"{name}: trains {sorted(trains)}"))

# %% [markdown]
# ## Q2 · Let only the new rows learn
#
# **The pitfall.** The new image-token rows of the embedding and of the head all start as the
# *mean* of the text rows, so they are identical: every `<idx_k>` gets the same logit, and
# generation cannot learn which code comes next while those rows stay frozen (the paper trains
# them only in stage 2). This project lets them learn in **stage-1 generation** already, but
# the *text* rows of the same two matrices must stay exactly as the language model learnt
# them. `requires_grad` is one flag per tensor: it cannot freeze half a matrix.
#
# Write `train_only_rows_from(weight, first_row)`: from now on, in every backward pass, only the
# rows `first_row, first_row + 1, ...` of the `(V, d)` parameter `weight` receive a gradient
# (the earlier rows get zero), and the function returns something with a `.remove()` method
# that undoes this, for when the stage ends. Leave the weights themselves alone. The check runs
# backward passes in float32, float64 and bfloat16.

# %%
import torch


def train_only_rows_from(weight: torch.nn.Parameter, first_row: int):
    """From now on only rows ``first_row..`` of ``weight`` (V, d) get a gradient; returns a handle."""
    ### BEGIN SOLUTION
    keep = torch.zeros(weight.shape[0], 1, dtype=weight.dtype, device=weight.device)  # (V, 1): one factor per row
    keep[first_row:] = 1
    return weight.register_hook(lambda grad: grad * keep.to(grad.dtype))  # (V, d) * (V, 1)
    ### END SOLUTION


# %%
q2.check()

# %%
# q2.hint()
# q2.hint(2)
# q2.solution()

# %% [markdown]
# ## One training step of stage 1 (generation), with your two functions
#
# The tiny HealthGPT with a random language model (this is about *which* weights move, not
# about learning), frozen by your `set_trainable`, with your row mask on the embedding and the
# head. One AdamW step on a reconstruction example (random codes as the target, random visual
# features): which parameters changed, and by how much?

# %%
from healthgpt_lite.data import image_token_ids
from healthgpt_lite.data.text_tokenizer import tokenizer_for
from healthgpt_lite.model.llm import build_llm
from healthgpt_lite.model.multimodal import collate, encode_example, user_text
from healthgpt_lite.training.pipeline import build_model

cfg = run.cfg
tok = tokenizer_for(cfg)
torch.manual_seed(SEED)
model = build_model(cfg, tok, base_llm=build_llm(cfg.llm, image_token_ids(tok).start, pad_token_id=tok.pad_token_id))
spec, first_new = STAGES["stage1_generation"], model.block.start
groups = model.parameter_groups()
set_trainable(model, groups, spec.trains)
handles = [train_only_rows_from(p, first_new) for p in groups["image_rows"]]

codes = torch.randint(0, cfg.vq.n_embed, (cfg.vq.grid_size, cfg.vq.grid_size))  # (h, w) a made-up target image
example = encode_example(tok, user_text("Reconstruct this image.", True), cfg.vision.num_tokens,
                         cfg.llm.max_position_embeddings, image_codes=codes, generation=True)
batch = collate([example], tok.pad_token_id)
features = torch.randn(1, cfg.vision.num_tokens, cfg.vision.hidden_size)  # (1, N, D) stands in for the ViT


def one_step(weight_decay: float) -> dict[str, torch.Tensor]:
    """One AdamW step from the same start; returns how far each parameter moved."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=weight_decay)
    model.train().set_task("generation")
    loss = model(batch["input_ids"], batch["attention_mask"], batch["labels"], features=features).loss
    loss.backward()
    opt.step()
    moved = {n: (p.detach() - before[n]).abs() for n, p in model.named_parameters()}
    with torch.no_grad():  # back to the start for the next experiment
        for n, p in model.named_parameters():
            p.copy_(before[n])
            p.grad = None
    return moved


moved = one_step(weight_decay=0.0)
emb_name = next(n for n, p in model.named_parameters() if p is model.llm.get_input_embeddings().weight)
head_name = next(n for n, p in model.named_parameters() if p is model.llm.get_output_embeddings().weight)
rows = []
for label, name in (("embedding", emb_name), ("head", head_name)):
    rows.append({"matrix": label, f"text rows 0..{first_new - 1}: largest change": float(moved[name][:first_new].max()),
                 f"image rows {first_new}..: largest change": float(moved[name][first_new:].max())})
display(pd.DataFrame(rows))
moved_names = [n for n, m in moved.items() if m.any()]
frozen_moved = [n for n, p in model.named_parameters() if not p.requires_grad and moved[n].any()]
print(f"{len(moved_names)} parameter tensors moved, e.g. {moved_names[:3]}; frozen ones that moved: {frozen_moved or 'none'}")
text_still = all(float(moved[n][:first_new].max()) == 0 for n in (emb_name, head_name))
print("the text rows of the embedding and the head are " + ("exactly unchanged" if text_still else "CHANGED (a bug)"))

# %% [markdown]
# A zero gradient is not always enough. AdamW's *decoupled weight decay* shrinks every weight of
# its parameter groups by `lr · weight_decay` each step, whatever the gradient. The same step
# with `weight_decay=0.01`:

# %%
moved_wd = one_step(weight_decay=0.01)
text_moved = max(float(moved_wd[n][:first_new].max()) for n in (emb_name, head_name))
print(f"largest change of a text row with weight decay 0.01: {text_moved:.2e} "
      + ("(they moved: the mask alone does not freeze them)" if text_moved > 0 else "(unchanged)"))
for h in handles:
    h.remove()

# %% [markdown]
# That is why every stage here trains with weight decay 0 (the released recipe's setting,
# `lit_module.py`): with it, a row whose gradient is always zero stays exactly where it is,
# because Adam's moment estimates of that row stay zero too.
#
# ## What each stage costs at the real size
#
# `ShapedHealthGPT` builds HealthGPT-M3's parameters (CLIP ViT-L/14-336, Phi-3-mini with the
# image vocabulary, both adapters, both H-LoRA plugins) on PyTorch's `meta` device: shapes
# without memory. Your `set_trainable` picks what trains; we count it. For `image_rows` only the
# 8195 new rows of the two matrices really learn (your row mask), so we count those.

# %%
from healthgpt_lite.config import build_config
from healthgpt_lite.exercises.ex04_stage_rules import ShapedHealthGPT

m3 = build_config("m3", PROFILE)
shaped = ShapedHealthGPT(m3)
total = sum(p.numel() for p in shaped.parameters())
rows = []
for name in ORDER:
    spec = STAGES[name]
    set_trainable(shaped, shaped.parameter_groups(), spec.trains)
    trained = sum(p.numel() for p in shaped.parameters() if p.requires_grad)
    if "image_rows" in spec.trains and not {"embeddings", "head"} & set(spec.trains):  # only the new rows learn
        trained -= 2 * (shaped.llm.config.vocab_size - (m3.vq.n_embed + 3)) * m3.llm.hidden_size
    rows.append({"stage": name, "trains": ", ".join(sorted(spec.trains)), "trained (M)": round(trained / 1e6, 1),
                 "% of model": round(100 * trained / total, 2)})
print(f"HealthGPT-M3 here has {total / 1e9:.2f} B parameters")
costs = pd.DataFrame(rows)
display(costs)
largest = costs.loc[costs["% of model"].idxmax()]
print(f"the largest stage is {largest['stage']}: {largest['% of model']} % of the model "
      f"({largest['trained (M)']} M parameters); the smallest trains {costs['% of model'].min()} %")

# %% [markdown]
# ## Summary
#
# * The stage table says which groups train: stage 1 aligns (each task's adapter; generation
#   also its plugin and the new image-token rows), stage 2 tunes the vocabulary (embeddings and
#   head, all plugins frozen), stage 3 each task's own plugin and adapter.
# * Freezing is two passes: everything off, then the stage's groups on; one tensor can be in two
#   groups, so deciding on or off group by group gets stage 2 wrong.
# * Rows of one tensor are frozen through their gradient: a hook multiplies it by a per-row
#   `(V, 1)` mask of the gradient's dtype in every backward pass, and its handle removes it.
# * With weight decay 0, a row whose gradient is always zero does not move under AdamW; with
#   weight decay it shrinks anyway.
#
# ## Check your understanding
#
# <details><summary>1. Why would stage-1 generation fail to learn <em>which</em>
# <code>&lt;idx_k&gt;</code> comes next if the new rows stayed frozen?</summary>
#
# They start identical (the mean text row), so the head gives every image token the same logit
# whatever the plugin does: the pitfall.
# </details>
#
# <details><summary>2. A one-pass loop <code>for g, ps in groups.items(): ... requires_grad_(g in
# trains)</code> fails in which stage, and why?</summary>
#
# Stage 2: `image_rows` comes after `embeddings` and `head` and switches the shared tensors off
# again.
# </details>
#
# <details><summary>3. Why must the mask have the gradient's dtype?</summary>
#
# A hook must return a gradient of the same type; a float32 mask times a bfloat16 gradient is a
# float32 tensor, which PyTorch refuses (the bfloat16 test case).
# </details>
#
# <details><summary>4. Stage 2 trains all rows of the same two matrices. What happens to a mask
# left installed from stage 1?</summary>
#
# Stage 2 would silently train only the image rows. The training module removes its hooks when
# a stage ends (`on_train_end`), which is why your function returns a handle.
# </details>
#
# The stage table lives in `healthgpt_lite/training/stages.py`, the freeze and the row mask in
# `training/lit_module.py`; notebooks 06-08 use them. All exercises:
# [exercises/README.md](../README.md).
