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
# # 08 · Stage 3: visual instruction fine-tuning, one plugin per task
#
# **Learning objectives.** After this notebook you can
# 1. say what stage 3 trains for each task (its H-LoRA plugin and its adapter) and why the two
#    runs never touch each other's parameters;
# 2. read the learning curves of both runs and compare answers and generated images before and
#    after instruction tuning;
# 3. switch a trained model between tasks in place and check that switching back restores it.
#
# Paper §3.4; REFERENCE §2-3.

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
# ## Two independent runs from the same stage-2 model
#
# Comprehension trains the comprehension plugin and the abstract adapter on VQA (closed and open
# questions) and reports; generation trains the generation plugin and the concrete adapter on
# CT→MRI, MRI→CT, 4× super-resolution, reconstruction and report→X-ray. Each starts from the
# stage-2 model and writes only its own groups, so the final model simply holds both results:
# this is the point of *heterogeneous* plugins (paper §3.3): no task's update can overwrite the
# other's knowledge.

# %%
from healthgpt_lite.training.stages import STAGES
from healthgpt_lite.viz.diagrams import stage_figure

display(stage_figure(STAGES["stage3_comprehension"]))
stage_figure(STAGES["stage3_generation"])

# %%
from healthgpt_lite.training.pipeline import ensure_stages
from healthgpt_lite.training.trainer import plot_curves, read_metrics

paths = ensure_stages(cfg, ["stage3_comprehension", "stage3_generation"], run.artifacts_dir, run.data_dir, run.progress)
display(plot_curves(read_metrics(paths["stage3_comprehension"]), ["train/loss", "val/loss_comprehension"],
                    title="stage 3, comprehension: plugin + abstract adapter on VQA and reports", logy=True))
plot_curves(read_metrics(paths["stage3_generation"]), ["train/loss", "val/loss_generation"],
            title="stage 3, generation: plugin + concrete adapter on conversion, SR, report->image")

# %% [markdown]
# ## Answers before and after
#
# Validation questions of every type, answered by the model after stage 2 and after stage 3.

# %%
import pandas as pd

from healthgpt_lite.data import load_records
from healthgpt_lite.model.healthgpt import HealthGPTLite
from healthgpt_lite.training.stages import ORDER

data_dir = run.data_dir
val = load_records(data_dir / "val.json")
picked = {}
for r in val:
    if r["task_type"] == "comprehension" and r["question_type"] != "report":
        picked.setdefault((r["question_type"], r["lang"]), r)
questions = list(picked.values())[:10]
before = HealthGPTLite.from_config(cfg, run.artifacts_dir, stages=tuple(ORDER[:3]))
after = HealthGPTLite.from_config(cfg, run.artifacts_dir, stages=tuple(ORDER))
ask = lambda gpt: gpt.answer_batch([data_dir / r["image"] for r in questions], [r["conversations"][0]["value"] for r in questions], 16)  # noqa: E731
pd.DataFrame({"modality": [r["modality"] for r in questions],
              "question": [r["conversations"][0]["value"].replace("<image>\n", "") for r in questions],
              "reference": [r["conversations"][1]["value"] for r in questions],
              "after stage 2": ask(before), "after stage 3": ask(after)})

# %% [markdown]
# ## Generated images before and after
#
# CT→MRI, MRI→CT and 4× super-resolution on validation patients, with the input, the target,
# and the **VQ ceiling** (the target encoded and decoded: the best any token sequence can do).

# %%
import torch

from healthgpt_lite.data import load_image
from healthgpt_lite.viz.samples import image_grid

gen = {}
for r in val:
    gen.setdefault(r["task"], r)
tasks = ["ct2mri", "mri2ct", "super_resolution"]
recs = [gen[t] for t in tasks]
inputs = [data_dir / r["image"] for r in recs]
instructions = [r["conversations"][0]["value"] for r in recs]
targets = torch.stack([load_image(data_dir / r["target_image"], size=cfg.vq.resolution) for r in recs])
image_grid({"input": [load_image(p, channels=1) for p in inputs],
            "after stage 2": list(before.vq.decode(before.generate_codes(instructions, inputs))),
            "after stage 3": list(after.vq.decode(after.generate_codes(instructions, inputs))),
            "target": list(targets), "VQ ceiling": list(after.vq.reconstruct(targets))},
           row_titles=tasks, title="generation on validation patients")

# %% [markdown]
# ## One model, switched in place
#
# `set_task` flips every layer's plugin, the adapter and the ViT layer without reloading
# anything (the released code reloads the whole model). Switching to generation and back gives
# exactly the same comprehension logits.

# %%
from healthgpt_lite.model.multimodal import encode_example, user_text

q = questions[0]
ids = encode_example(after.tokenizer, user_text(q["conversations"][0]["value"], True), cfg.vision.num_tokens,
                     cfg.llm.max_position_embeddings)["input_ids"][None]
pixels = after._pixels([data_dir / q["image"]])
with torch.no_grad():
    first = after.set_task("comprehension").model(ids, pixels=pixels).logits
    other = after.set_task("generation").model(ids, pixels=pixels).logits
    again = after.set_task("comprehension").model(ids, pixels=pixels).logits
print("generation plugin changes the output:", not torch.equal(first, other), "| switching back restores it exactly:",
      torch.equal(first, again))

# %% [markdown]
# ## Summary
#
# * Stage 3 trains each task's plugin and adapter on its instruction data, in two runs that
#   never write each other's parameters.
# * Comprehension answers and generated images change from stage 2 to stage 3 as the curves say
#   (in `smoke`, the CI profile, the runs are a few steps and nothing is learned).
# * Task switching is a hard, in-place switch; it is exact.
#
# ## Check your understanding
#
# 1. Stage-3 generation starts from the stage-2 model. Which of its parameters did stage-3
#    comprehension change? *(None: their groups are disjoint.)*
# 2. Why compare generated images with the VQ ceiling and not only with the target?
# 3. What would the paper's "one mixed training run" change in this picture? (Notebook 10 measures it.)
#
# **Exercise:** [exercises/03_hlora_forward](../exercises/03_hlora_forward/student.ipynb) (the plugin's forward pass).
