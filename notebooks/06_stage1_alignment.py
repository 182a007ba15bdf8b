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
# # 06 · Stage 1: multimodal alignment
#
# **Learning objectives.** After this notebook you can
# 1. state what HealthGPT's stage 1 trains for each task and what it keeps frozen, and why;
# 2. explain the new-vocabulary pitfall (all `<idx_k>` rows start identical) and the decision
#    this project makes about it;
# 3. run stage 1 (load-or-train), read its curves, and see what it changes in the model's
#    reports and reconstructions.
#
# Paper §3.4 "three-stage learning strategy"; REFERENCE §3.

# %% tags=["parameters"]
PROFILE = "cpu"  # cpu: the learning run (reuses `make reproduce` artifacts) | smoke: CI, learns nothing
PRESET = "tiny"
SEED = 0
ARTIFACTS_DIR = None
DATA_DIR = None
OVERRIDES = {}

# %%
from healthgpt_lite.notebook import setup

run = setup(PROFILE, PRESET, SEED, ARTIFACTS_DIR, DATA_DIR, OVERRIDES)
cfg = run.cfg
run

# %% [markdown]
# ## The whole recipe, as data
#
# `training/stages.py` states, for every stage and task, which parameter groups train and at
# which learning rate (the released M3 values; the tiny model multiplies them all by
# `train.lr_scale`), on which records, with which schedule. The training module, the tests,
# the exercises and these pictures all read this one table.

# %%
import pandas as pd

from healthgpt_lite.training.stages import ORDER, STAGES

pd.DataFrame([{"stage": s.name, "trains (lr)": ", ".join(f"{g} ({lr:g})" for g, lr in s.lrs.items()),
               "records": ", ".join(s.record_tasks), "schedule": s.schedule,
               "steps here": getattr(cfg.train, f"{s.name}_steps")} for s in (STAGES[n] for n in ORDER)]).set_index("stage")

# %% [markdown]
# ## Stage 1, comprehension: only the abstract adapter
#
# The LLM already speaks (it is Phi-3; here, LLM-lite of notebook 04) and the ViT already sees
# (CLIP; here, CLIP-lite of notebook 02). What neither knows is how to talk to the other. Stage 1
# trains the smallest thing that can bridge them, the `mlp2x_gelu` adapter that maps the deep
# ViT layer into the LLM's embedding space, on image → report pairs. Everything else is frozen,
# so the LLM's language cannot be damaged by a noisy, still-random adapter.

# %%
from healthgpt_lite.viz.diagrams import stage_figure

stage_figure(STAGES["stage1_comprehension"])

# %% [markdown]
# ## Stage 1, generation: concrete adapter + generation plugin (+ the new image rows)
#
# For generation the model must learn to *emit* image tokens, which the frozen LLM has never
# done: the generation H-LoRA plugin trains with the adapter of the shallow ViT layer, on
# reconstruction (image in, its own VQ codes out).
#
# **The pitfall.** The `<idx_k>` rows of the embedding and the head all start at the same mean
# vector (notebook 04). With the head frozen, every image token has the *same* logit whatever
# the plugin does to the hidden state; the model could not prefer one code over another until
# stage 2 trains the head. **Our decision:** stage-1 generation also trains the new image-token
# rows (and only those: the text rows stay frozen, enforced by a gradient mask), at the H-LoRA
# learning rate. Stage 2 then tunes all rows, as in the paper.

# %%
stage_figure(STAGES["stage1_generation"])

# %% [markdown]
# ## What the stages stand on
#
# Data, CLIP-lite, the VQ tokenizer and LLM-lite are made (or loaded) first. The vision encoder
# and the VQGAN are frozen in every stage, so their outputs for each image are computed **once**
# and cached: HVP features of both layers for every input image, VQ codes for every target. On a
# CPU this is what makes the stages affordable; the numbers are the same as running them inline.

# %%
from healthgpt_lite.training.features import FeatureStore, ensure_features
from healthgpt_lite.training.pipeline import ensure_prerequisites

data_dir = ensure_prerequisites(cfg, run.artifacts_dir, run.data_dir, progress=run.progress)
store = FeatureStore.load(ensure_features(cfg, run.artifacts_dir, data_dir))
print(f"{len(store.rows)} input images -> comprehension features {tuple(store.comp.shape)}, "
      f"generation features {tuple(store.gen.shape)}; {len(store.code_rows)} targets -> codes {tuple(store.codes.shape)}")

# %% [markdown]
# ## Before stage 1
#
# The model with fresh adapters and plugins: a few validation images, their reference report,
# and what the model says. It talks (LLM-lite knows the language), but it cannot see.

# %%
from healthgpt_lite.data import load_records
from healthgpt_lite.model.healthgpt import HealthGPTLite

val = load_records(data_dir / "val.json")
reports = [r for r in val if r["task"] == "report" and r["lang"] == "en"][:3]
recons = [r for r in val if r["task"] == "reconstruction"][:3]
before = HealthGPTLite.from_config(cfg, run.artifacts_dir, stages=())


def report_table(gpt: HealthGPTLite) -> pd.DataFrame:
    said = gpt.answer_batch([data_dir / r["image"] for r in reports], [r["conversations"][0]["value"] for r in reports], 96)
    return pd.DataFrame({"reference": [r["conversations"][1]["value"] for r in reports], "model": said})


pd.set_option("display.max_colwidth", 120)
report_table(before)

# %% [markdown]
# And how sure the untrained model is about image codes: the spread (max - min) of the 512
# image-token logits at the first generated position. Zero means it cannot prefer any code.

# %%
import torch

from healthgpt_lite.model.multimodal import encode_example, user_text


@torch.no_grad()
def image_logit_spread(gpt: HealthGPTLite, record: dict) -> float:
    gpt.set_task("generation")
    ids = encode_example(gpt.tokenizer, user_text(record["conversations"][0]["value"], True), cfg.vision.num_tokens,
                         cfg.llm.max_position_embeddings, generation=True)["input_ids"][None]
    pixels = torch.stack([gpt.pixels([data_dir / record["image"]])[0]])
    logits = gpt.model.llm(inputs_embeds=gpt.model.embed(ids, pixels=pixels)).logits[0, -1]
    block = gpt.model.block
    codes = logits[block.first_idx:block.first_idx + block.n_codes]
    return float(codes.max() - codes.min())


print(f"image-token logit spread before stage 1: {image_logit_spread(before, recons[0]):.2e}")

# %% [markdown]
# ## Train stage 1 (both tasks)
#
# `ensure_stages` loads each stage when an artifact made with this exact config exists, else
# trains it (resuming from its last checkpoint if it was interrupted).

# %%
from healthgpt_lite.training.pipeline import ensure_stages
from healthgpt_lite.training.trainer import plot_curves, read_metrics

paths = ensure_stages(cfg, ["stage1_comprehension", "stage1_generation"], run.artifacts_dir, data_dir, run.progress)
display(plot_curves(read_metrics(paths["stage1_comprehension"]), ["train/loss", "val/loss_comprehension"],
                    title="stage 1, comprehension: abstract adapter on reports"))
plot_curves(read_metrics(paths["stage1_generation"]), ["train/loss", "val/loss_generation"],
            title="stage 1, generation: concrete adapter + plugin (+ image rows) on reconstruction")

# %% [markdown]
# ## After stage 1
#
# The same reports, now from a model whose adapter has learned to translate the ViT's features:

# %%
after = HealthGPTLite.from_config(cfg, run.artifacts_dir, stages=("stage1_comprehension", "stage1_generation"))
report_table(after)

# %% [markdown]
# The image-token logits now differ (the rows learned), and reconstructions are images of the
# input rather than noise:

# %%
from healthgpt_lite.data import load_image
from healthgpt_lite.viz.samples import image_grid

print(f"image-token logit spread after stage 1: {image_logit_spread(after, recons[0]):.2f}")
instructions = [r["conversations"][0]["value"] for r in recons]
inputs = [data_dir / r["image"] for r in recons]
image_grid({"input": [load_image(p, channels=1) for p in inputs],
            "before stage 1": list(before.vq.decode(before.generate_codes(instructions, inputs))),
            "after stage 1": list(after.vq.decode(after.generate_codes(instructions, inputs))),
            "VQ ceiling": list(after.vq.decode(after.vq.encode(torch.stack([load_image(p, size=cfg.vq.resolution) for p in inputs]))))},
           title="reconstruction (val images)")

# %% [markdown]
# In the `smoke` profile (CI, a few steps) both panels stay noisy; the `cpu` profile (the
# default) trains stage 1 long enough to compare them.
#
# ## Summary
#
# * Stage 1 aligns: comprehension trains only the abstract adapter (LLM and plugins frozen);
#   generation trains the concrete adapter and the generation plugin on reconstruction.
# * The new image-token rows start identical; we let stage-1 generation train them (text rows
#   masked), so that the model can tell codes apart from the first step.
# * Frozen encoders mean cached features: the same numbers, a fraction of the compute.
#
# ## Check your understanding
#
# 1. Why does stage-1 comprehension freeze the LLM? What could a random adapter do to it otherwise?
# 2. With the head frozen and all `<idx_k>` rows equal, what is the cross-entropy of a 512-code
#    target at step 0, and can the plugin lower it? *(ln 512 ≈ 6.24; no: every code has the same logit.)*
# 3. Which parameters does our stage 1 train that the paper's does not, and which stage of the
#    paper trains them instead?
#
# **Exercise:** [exercises/04_stage_rules](../exercises/README.md): write which groups train in each stage.
