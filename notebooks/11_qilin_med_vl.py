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
# # 11 · Qilin-Med-VL's two-stage recipe beside HealthGPT
#
# **Learning objectives.** After this notebook you can
# 1. state Qilin-Med-VL's two-stage LLaVA recipe (projector alignment, then a full fine-tune of
#    the LLM) and say, part by part, what it trains where HealthGPT trains an H-LoRA plugin;
# 2. train both recipes at the same step budget on the Chinese side of VL-Health-lite and
#    compare them fairly: accuracy, open exact match, trainable weights, time, memory;
# 3. measure what a full fine-tune does to the rest of the LLM (forgetting) and why a plugin
#    cannot do that;
# 4. argue which design to pick for a given job, and at which model size the answer changes.
#
# docs/PAPERS.md §5 (Qilin-Med-VL), §2-3 (H-LoRA, three stages); Qilin-Med-VL paper §3.

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
# ## Two recipes for one job
#
# **Qilin-Med-VL** (Liu et al. 2023) is LLaVA-1.5 with a Chinese LLM (Llama2-Chinese-13B): CLIP
# ViT-L/14 features of layer -2, an `mlp2x_gelu` projector, the LLM's vocabulary unchanged, and
# comprehension only. It trains in two stages:
#
# | | stage 1: feature alignment | stage 2: instruction tuning |
# |---|---|---|
# | trains | the projector only | the projector **and every weight of the LLM** |
# | data (paper) | 580k Chinese image-caption pairs | 469k Chinese question-answer pairs |
# | data (here) | Chinese reports (image → report) | Chinese closed and open questions |
# | learning rate | 1e-3 | 2e-5 |
#
# **HealthGPT's comprehension path** is the same first stage (its "abstract adapter" *is* a
# projector on layer -2), then stage 3 trains the comprehension H-LoRA plugin and the adapter while
# the LLM stays frozen. We leave out HealthGPT's stage 2 (embeddings and head on a mix with
# generation data): it prepares the image vocabulary for generation, which this comparison does not
# use, and it would give HealthGPT extra steps. Both recipes get the same steps, batch and
# learning-rate scale, and read the same Chinese records: only the recipe differs.

# %%
print(f"steps per stage (both recipes): {cfg.qilin.stage1_steps} + {cfg.qilin.stage2_steps}, "
      f"batch {cfg.train.comp_batch_size}, learning rates x {cfg.train.lr_scale:g}")

# %% [markdown]
# The Chinese side of VL-Health-lite: every record draws its language at random, so about half of
# the questions and reports are Chinese. The two stages' data, as the stage table selects it:

# %%
import pandas as pd

from healthgpt_lite.data import load_records
from healthgpt_lite.training.datamodule import task_records
from healthgpt_lite.training.pipeline import ensure_prerequisites
from healthgpt_lite.training.qilin import recipe

data_dir = ensure_prerequisites(cfg, run.artifacts_dir, run.data_dir, run.progress)  # data, CLIP-lite, VQ, LLM-lite
train = load_records(data_dir / "train.json")
qilin = recipe("qilin")
examples = []
for spec in qilin.stages:
    picked = task_records(train, "comprehension", spec.record_tasks, spec.lang)
    print(f"{spec.name}: {len(picked)} Chinese training records ({', '.join(spec.record_tasks)})")
    examples += [(spec.name, r) for r in picked[:3]]
pd.DataFrame({"stage": [s for s, _ in examples], "modality": [r["modality"] for _, r in examples],
              "question": [r["conversations"][0]["value"].replace("<image>\n", "") for _, r in examples],
              "answer": [r["conversations"][1]["value"] for _, r in examples]})

# %% [markdown]
# ## What is frozen where
#
# One column per stage of each recipe, one row per part of the model. Qilin's model has no
# plugins at all (and no image vocabulary, no VQGAN); HealthGPT's has both plugins and never moves a
# base weight of the LLM.

# %%
from healthgpt_lite.viz.recipes import recipe_grid_figure

healthgpt = recipe("healthgpt_zh")
recipe_grid_figure([qilin, healthgpt])

# %% [markdown]
# The same on the architecture diagram: Qilin's stage 2 lights up the whole LLM, HealthGPT's stage 3
# only the comprehension plugin beside it.

# %%
from healthgpt_lite.viz.diagrams import stage_figure

display(stage_figure(qilin.stages[1], plugins=False))
stage_figure(healthgpt.stages[1])

# %% [markdown]
# The table is the code: the training module freezes everything, then unfreezes the stage's
# groups. Counting the weights that require a gradient in each stage of the real models:

# %%
from healthgpt_lite.training.lit_module import HealthGPTLitModule
from healthgpt_lite.training.qilin import recipe_model

rows = []
for rec in (qilin, healthgpt):
    model = recipe_model(cfg, rec.name, 0, run.artifacts_dir)  # untrained: only the flags matter here
    for spec in rec.stages:
        HealthGPTLitModule(model, spec, total_steps=1)  # sets requires_grad as the stage says
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append({"recipe": rec.name, "stage": spec.name, "trains": " + ".join(spec.trains),
                     "weights with a gradient": trained, "weights in the model": sum(p.numel() for p in model.parameters()),
                     "share": f"{trained / sum(p.numel() for p in model.parameters()):.1%}"})
pd.DataFrame(rows)

# %% [markdown]
# ## Training both at the same step budget
#
# Each stage is load-or-train through `ARTIFACTS_DIR` (`training/qilin.py`), with the same
# Lightning module, data module, checkpoints and resume as HealthGPT's stages; a stage artifact
# holds only what the stage trained, so Qilin's stage 2 stores the whole LLM.

# %%
from healthgpt_lite.training.qilin import ensure_recipe
from healthgpt_lite.training.trainer import read_metrics
from healthgpt_lite.viz.recipes import overlay_curves

paths = {rec.name: ensure_recipe(cfg, rec.name, run.artifacts_dir, data_dir, run.progress) for rec in (qilin, healthgpt)}
for i, what in enumerate(["alignment (stage 1 of both)", "instruction tuning (Qilin stage 2 / HealthGPT stage 3)"]):
    curves = {name: read_metrics(list(stages.values())[i]) for name, stages in paths.items()}
    display(overlay_curves(curves, "train/loss", f"{what}: training loss"))
overlay_curves(curves, "val/loss_comprehension", "instruction tuning: validation loss (Chinese questions)")

# %% [markdown]
# ## The comparison on the Chinese test questions
#
# `compare_recipes` loads both models, answers every Chinese test question (greedy decoding), and
# times one instruction-tuning step of each recipe on the same batch, the two interleaved so the
# load of a shared machine hits both alike (median of `bench.repeats` samples). Closed questions
# (yes/no, choice) are scored by accuracy, open ones (modality, location, size, count) by exact
# match after normalisation.

# %%
from healthgpt_lite.eval.recipes import compare_recipes

result = compare_recipes(cfg, run.artifacts_dir, data_dir, run.progress)
summary = pd.DataFrame(result["summary"]).set_index("recipe")
summary

# %% [markdown]
# What this run's table says (with a few dozen test questions per kind, differences of a few
# points are noise):

# %%
n_zh = sum(1 for r in load_records(data_dir / "test.json") if r.get("lang") == "zh" and r["task_type"] == "comprehension")
q, h = summary.loc["Qilin-Med-VL"], summary.loc["HealthGPT"]
for metric in ("closed acc", "open EM"):
    gap = h[metric] - q[metric]
    lead = "HealthGPT leads" if gap > 0.05 else "Qilin-Med-VL leads" if gap < -0.05 else "about equal (within 0.05)"
    print(f"{metric}: Qilin-Med-VL {q[metric]:.2f}, HealthGPT {h[metric]:.2f} -> {lead}")
print(f"trained weights: Qilin-Med-VL {int(q['trainable params']):,} vs HealthGPT {int(h['trainable params']):,} "
      f"({q['trainable params'] / h['trainable params']:.1f}x); {n_zh} Chinese comprehension test records")

# %% [markdown]
# Per question type (closed: `choice`, `yes_no`; open: `open_*`):

# %%
pd.DataFrame({name: {k.split("/")[1]: round(v, 3) for k, v in scores.items()
                     if k.startswith(("closed/", "open/")) and k.split("/")[1] in
                     ("choice", "yes_no", "open_modality", "open_location", "open_size", "open_count")}
              for name, scores in result["scores"].items()})

# %% [markdown]
# ## Chinese answers side by side
#
# Two test questions of each type, the reference and both recipes' answers. The `report` rows are
# a lesson of their own: both recipes learn to write reports in stage 1, but the instruction data
# of the last stage holds only questions, and in a reference `cpu` run both answered the report
# request like a question (check the `report` rows below for this run): the last stage's data
# defines what the model does.

# %%
pd.DataFrame(result["answers"])

# %% [markdown]
# ## What each design costs
#
# Measured on this tiny model: trainable weights, their training state (fp32 weight, gradient and
# AdamW's two moments: 16 bytes per trained weight), the time and the peak memory of one step.

# %%
pd.DataFrame(result["costs"]).set_index("recipe")

# %% [markdown]
# At this size a training step costs about the same: the LLM is tiny, and a plugin adds its own
# matmuls to every layer while a full fine-tune adds the weight gradients and a bigger optimizer
# step. The difference that matters shows at a real size. The same two stages on HealthGPT-M3's
# shapes (Phi-3-mini 3.8B + CLIP-L/14, built on the meta device as in notebook 12; memory per GPU
# on 8 GPUs, bf16-mixed, activation checkpointing):

# %%
pd.DataFrame(result["scale"]).set_index("recipe")

# %% [markdown]
# A full fine-tune trains ~3.8B weights and must keep a gradient and two AdamW moments for each:
# with DDP (every GPU holds all of it) that alone is ~60 GB per GPU, which is why a full fine-tune
# at this size, and Qilin-Med-VL's 13B stage 2 all the more, needs sharding (FSDP / ZeRO): on 8 GPUs
# FSDP divides that state by 8 and the two recipes come close (activations then dominate).
# HealthGPT's plugin trains ~115M weights (the released comprehension plugin's size), ~2% of the
# model: plain DDP fits, and its optimizer state is a few GB.
#
# ## What the LLM kept
#
# A full fine-tune moves every base weight for the new task; whatever else the LLM could do may
# move with it. Here: the LLM's next-token loss on English text from its own pretraining mix (a
# skill neither recipe trains), and how far each recipe moved the base weights
# (‖θ − θ₀‖ / ‖θ₀‖).

# %%
forgetting = pd.DataFrame(result["forgetting"]).set_index("model")
forgetting.round(4)

# %% [markdown]
# This run's numbers, then how to read them:

# %%
f = forgetting.to_dict("index")
base_loss = f["base LLM (before either recipe)"]["English text loss"]
qilin_loss, on_loss = f["Qilin-Med-VL after stage 2"]["English text loss"], f["HealthGPT, comprehension plugin on"]["English text loss"]
print(f"Qilin: base weights moved {f['Qilin-Med-VL after stage 2']['base weights moved']:.1%}, English loss "
      f"{base_loss:.3f} -> {qilin_loss:.3f} | HealthGPT: plugin off {f['HealthGPT, plugin off']['English text loss']:.3f}, "
      f"plugin on {on_loss:.3f}")
gap = on_loss - qilin_loss
verdict = ("about the same on this text (within 0.05 nats/token)" if abs(gap) < 0.05 else
           "the plugin costs more on this text" if gap > 0 else "the full fine-tune costs more on this text")
print(f"English loss added: Qilin {qilin_loss - base_loss:+.3f}, HealthGPT with its plugin on {on_loss - base_loss:+.3f} "
      f"nats/token -> {verdict}")

# %% [markdown]
# Read the rows together. HealthGPT with its plugin **off** is the base LLM, bit for bit: its base
# weights never moved. With the plugin **on**, English text (no image: an input the plugin never
# saw) can fare *worse* than after Qilin's full fine-tune (in a reference `cpu` run, +3.00 against
# +0.19 nats/token, while Qilin moved 13% of its base weights; the cell above has this run's). A plugin is not a gentle change: trained on one narrow task at its recipe's learning
# rate (10x Qilin's), it is a strong, specialised one. What it buys is the **switch**: any other
# task (generation, with its own plugin) runs on untouched base weights, and switching off brings
# the original model back. Qilin's LLM has no switch: its new weights are the only weights, and
# whatever the fine-tune changed, every later use inherits.

# %% [markdown]
# ## What each design buys
#
# * **Full fine-tune (Qilin-Med-VL):** the most capacity for the one task (every weight can adapt,
#   no rank limit), the simplest recipe (LLaVA's: two stages, no plugin code), and the vocabulary
#   untouched. It costs a gradient and optimizer state for every weight (sharding at 13B), a full
#   copy of the LLM per task, no way back to the base model, and a second task (generation) would
#   have to train the same weights again and fight the first one (notebook 10's task conflict).
# * **H-LoRA plugins (HealthGPT):** both tasks in one model, each with its own plugin and adapter,
#   switched in place; a small trainable set (2% at M3) with a small optimizer state; the base LLM
#   exactly preserved under the plugins. It costs capacity (a rank-limited update per layer), a
#   three-stage recipe, and the plugin machinery (and, for generation, the image vocabulary).
#
# The scores at equal steps (the first table) are a comparison of **recipes**, not of full
# fine-tuning against low-rank updates at their best: each uses its own paper's learning rates
# (Qilin 2e-5 for the whole LLM, HealthGPT 2e-4 for the plugin), so at the same number of steps the
# plugin's update moves faster. This run's outcome is printed under the first table; in a
# reference `cpu` run both reached the same closed accuracy (0.72) and HealthGPT led on open
# questions (0.68 against 0.58 exact match) with 6x fewer trained weights.
# The paper's argument is not that a plugin beats a full fine-tune on one task, but that plugins let
# one model hold two conflicting tasks at a fraction of the trainable weights.
#
# ## Summary
#
# * Qilin-Med-VL = LLaVA-1.5: stage 1 trains the projector on captions, stage 2 the projector and
#   the whole LLM on instructions; comprehension only, layer -2 features.
# * HealthGPT's comprehension path trains the same projector, then a plugin beside a frozen LLM.
# * At the same steps on the same Chinese data both learn; the full fine-tune trains ~6x more
#   weights in the tiny preset and ~33x more at M3 (3.8B against 115M), with the optimizer memory
#   for all of them.
# * The plugin can be switched off (the base LLM, exactly); the full fine-tune is the new LLM.
# * The data of the last stage decides the model's behaviour (neither writes reports any more).
#
# ## Check your understanding
#
# 1. Which parameters require a gradient in Qilin's stage 2 that do not in HealthGPT's stage 3?
#
#    <details><summary>Answer</summary>
#
#    Every base weight of the LLM: embeddings, decoder layers, norms, head.
#
#    </details>
#
# 2. Why does HealthGPT with its plugin switched off give exactly the base LLM's English loss,
#    and why can its loss with the plugin on be worse than Qilin's?
#
#    <details><summary>Answer</summary>
#
#    Its base weights never train; the plugin adds a strong update trained only on image
#    questions, and it is active.
#
#    </details>
#
# 3. Why does the step time here not show the M3 memory gap?
#
#    <details><summary>Answer</summary>
#
#    The tiny LLM has ~1M weights; the optimizer state of a full fine-tune grows with the model,
#    16 bytes per weight.
#
#    </details>
#
# 4. Why was HealthGPT's stage 2 left out of this comparison?
#
#    <details><summary>Answer</summary>
#
#    It trains embeddings and head for the image vocabulary of generation; a comprehension-only
#    comparison at equal steps does not need it.
#
#    </details>
#
# 5. Both recipes stopped writing reports after the last stage. What would you change in the data?
#
#    <details><summary>Answer</summary>
#
#    Keep report requests in the last stage's instruction data (mix some of stage 1's report
#    records in), so the final stage still asks for reports and rewards writing them.
#
#    </details>
#
# **Exercise:** [exercises/04_stage_rules](../exercises/04_stage_rules/student.ipynb) (which groups
# train in each stage, and freezing a model for a stage); all exercises:
# [exercises/README.md](../exercises/README.md).
