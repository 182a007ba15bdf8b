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
# HealthGPT paper, "Three-stage Learning Strategy"; docs/PAPERS.md §2-3.

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
# ## Two independent runs from the same stage-2 model
#
# Comprehension trains the comprehension plugin and the abstract adapter on VQA (closed and open
# questions) and reports; generation trains the generation plugin and the concrete adapter on
# CT→MRI, MRI→CT, 4× super-resolution, reconstruction and report→X-ray. Each starts from the
# stage-2 model and writes only its own groups, so the final model simply holds both results:
# this is the point of *heterogeneous* plugins (paper, "Heterogeneous Knowledge Adaptation"): no task's update can overwrite the
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
# ## Inside one stage-3 comprehension step
#
# As in notebook 06, by hand with the stage's own pieces: the stage-2 model, the freeze rule of
# `stage3_comprehension` (applied by `HealthGPTLitModule`), one real batch from the stage's data
# module, one `training_step` and `backward`. A training example is a conversation of up to
# `train.comp_turns` questions about one image; only the answers carry labels.

# %%
import torch

from healthgpt_lite.data.text_tokenizer import tokenizer_for
from healthgpt_lite.model.multimodal import IGNORE_INDEX
from healthgpt_lite.training.datamodule import StageDataModule
from healthgpt_lite.training.features import FeatureStore, ensure_features
from healthgpt_lite.training.lit_module import HealthGPTLitModule, trainable_parameter_count
from healthgpt_lite.training.pipeline import model_after, stages_before

spec = STAGES["stage3_comprehension"]
tokenizer = tokenizer_for(cfg)
model = model_after(cfg, stages_before(spec.name), run.artifacts_dir, tokenizer=tokenizer)  # the stage-2 model
module = HealthGPTLitModule(model, spec, total_steps=10, lr_scale=cfg.train.lr_scale, seed=cfg.seed)
print(f"starts from {stages_before(spec.name)}; trains {list(spec.trains)}: "
      f"{trainable_parameter_count(model, spec):,} weights")
store = FeatureStore.load(ensure_features(cfg, run.artifacts_dir, run.data_dir))
dm = StageDataModule(cfg, spec, store, tokenizer, run.data_dir, {"comprehension": 2, "generation": 2})
dm.setup("fit")
batch = dm.collator("comprehension")([dm.train_sets["comprehension"][0]])
ids, labels = batch["input_ids"][0], batch["labels"][0]
supervised = (labels != IGNORE_INDEX).int()
edges = torch.diff(torch.cat([torch.tensor([0]), supervised, torch.tensor([0])])).nonzero().flatten().view(-1, 2)
print(f"{len(ids)} tokens, {int(supervised.sum())} supervised, in {len(edges)} answer span(s):")
for a, b in edges.tolist():
    print(f"  positions {a}-{b - 1}: {tokenizer.decode(ids[a:b])!r}")

# %%
import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*self.log.*")  # no Trainer here: logging is skipped
    loss = module.training_step({"comprehension": batch}, 0)
loss.backward()
got = {g: sum(int((p.grad != 0).sum()) for p in params if p.grad is not None)
       for g, params in model.parameter_groups().items()}
print(f"loss {loss.item():.3f}; weights with a nonzero gradient per group:", got)
print("groups with a nonzero gradient:", [g for g, n in got.items() if n > 0],
      "| the generation plugin got none:", got["gen_plugin"] == 0)
module.on_train_end()

# %% [markdown]
# Only the stage's two groups receive gradients, and of the comprehension plugin only part: stage 3
# is where that plugin first trains, so its `B` is still zero and the gradient reaching `A` and the
# router (through `B`) is exactly zero at this first step (notebook 05). The generation plugin, the
# vocabulary and the LLM get nothing: the other task's stage-3 run cannot be disturbed by this one.

# %% [markdown]
# ## Answers before and after
#
# Validation questions of every type, answered by the model after stage 2 and after stage 3.

# %%
import pandas as pd

from healthgpt_lite.data import load_records
from healthgpt_lite.model.inference import HealthGPTLite
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
pixels = after.pixels([data_dir / q["image"]])
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
# * The tables and images above show what this run's stage 3 changed from stage 2 (in `smoke`,
#   the CI profile, the runs are a few steps and nothing is learned).
# * One step by hand: only the comprehension plugin (its `B`, at its first step) and the abstract
#   adapter receive gradients; only the answers of a multi-turn conversation carry labels.
# * Task switching is a hard, in-place switch; it is exact.
#
# ## Check your understanding
#
# 1. Stage-3 generation starts from the stage-2 model. Which of its parameters did stage-3
#    comprehension change?
#
#    <details><summary>Answer</summary>
#
#    None: their groups are disjoint.
#
#    </details>
#
# 2. Why compare generated images with the VQ ceiling and not only with the target?
#
#    <details><summary>Answer</summary>
#
#    The model writes VQ codes, so its best possible image is the target's own reconstruction.
#    The gap from the model to the ceiling is what training can still win; the gap from the
#    ceiling to the target is the tokenizer's, which no stage can close.
#
#    </details>
#
# 3. What would the paper's "one mixed training run" change in this picture? (Notebook 10 measures it.)
#
#    <details><summary>Answer</summary>
#
#    Both tasks would train at once through one shared plugin: the guarantee that one task's
#    update cannot overwrite the other's would be gone, and the two would compete for the same
#    weights (notebook 10's mixed and conflict tables).
#
#    </details>
#
# **Exercise:** [exercises/03_hlora_forward](../exercises/03_hlora_forward/student.ipynb) (the plugin's forward pass).
