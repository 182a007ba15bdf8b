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
# 3. apply a stage's freeze rule to a model yourself, take one training step by hand (labels
#    per token, which groups receive gradients, the text rows left untouched) and read the
#    loss and optimizer code that every stage runs;
# 4. run stage 1 (load-or-train), read its curves, and see what it changes in the model's
#    reports and reconstructions.
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
# ## The whole recipe, as data
#
# `training/stages.py` states, for every stage and task, which parameter groups train and at
# which learning rate (the released M3 values, with this profile's `train.lr_overrides` put in;
# the tiny model multiplies them all by `train.lr_scale`), on which records, with which schedule.
# The training module, the tests, the exercises and these pictures all read this one table.

# %%
import pandas as pd

from healthgpt_lite.training.stages import ORDER, STAGES, stage_spec

print("learning rates replaced in this profile:", cfg.train.lr_overrides or "none (the released ones)")
pd.DataFrame([{"stage": s.name, "trains (lr)": ", ".join(f"{g} ({lr:g})" for g, lr in s.lrs.items()),
               "records": ", ".join(s.record_tasks), "schedule": s.schedule,
               "steps here": getattr(cfg.train, f"{s.name}_steps")}
              for s in (stage_spec(n, cfg.train.lr_overrides) for n in ORDER)]).set_index("stage")

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
# ## Training in the open: the freeze rule, applied
#
# `train_stage` (below) trains a stage in one call; here is what it does inside, step by step, with the same
# public functions. First the freeze rule: `freeze_for_stage` turns `requires_grad` off
# everywhere, then on for the stage's groups (`model.parameter_groups()`), and installs the row
# mask for `image_rows`. Applied to the model stage 1 starts from (`model_after(cfg, [])`):

# %%
from healthgpt_lite.data.text_tokenizer import tokenizer_for
from healthgpt_lite.training.lit_module import freeze_for_stage, trainable_parameter_count
from healthgpt_lite.training.pipeline import model_after

tokenizer = tokenizer_for(cfg)


def freeze_table(name: str):
    """Apply stage ``name``'s freeze rule to a fresh model; weights per group, and what trains."""
    spec = STAGES[name]
    model = model_after(cfg, [], run.artifacts_dir, tokenizer=tokenizer)
    hooks = freeze_for_stage(model, spec)
    groups, start = model.parameter_groups(), model.block.start
    rows = []
    for g, params in groups.items():
        total = sum(p.numel() for p in params)
        flagged = sum(p.numel() for p in params if p.requires_grad)
        learns = sum((p.shape[0] - start) * p.shape[1] for p in params) if g == "image_rows" and g in spec.trains else \
            (total if g in spec.trains else 0)
        rows.append({"group": g, "weights": total, "requires_grad": flagged, "in the stage (lr)": spec.lrs.get(g, "-"),
                     "really learn": learns})
    print(f"{name}: {trainable_parameter_count(model, spec):,} weights learn of "
          f"{sum(p.numel() for p in model.parameters()):,}; gradient-mask hooks installed: {len(hooks)}")
    return model, spec, hooks, pd.DataFrame(rows).set_index("group")


_, _, _, table = freeze_table("stage1_comprehension")
display(table)
model, spec, hooks, table = freeze_table("stage1_generation")
table

# %% [markdown]
# Read the columns. `requires_grad` is per *tensor*: in stage-1 generation the whole embedding
# and head tensors are flagged (they hold the image rows), which is why `embeddings` and `head`
# show weights there although the stage does not train them; `really learn` counts what the
# row mask lets through: only the rows from `<start_index>` on.
#
# ## One training step, by hand (stage-1 generation)
#
# A real batch, made by the stage's own data module and collator (cached ViT features, the
# targets' VQ codes in the labels):

# %%
from healthgpt_lite.training.datamodule import StageDataModule
from healthgpt_lite.model.multimodal import IGNORE_INDEX

for h in hooks:  # the module below applies the freeze rule (and its hooks) again, as training does
    h.remove()
dm = StageDataModule(cfg, spec, store, tokenizer, data_dir, {"comprehension": 2, "generation": 2})
dm.setup("fit")
batch = dm.collator("generation")([dm.train_sets["generation"][i] for i in range(2)])
ids, labels = batch["input_ids"][0], batch["labels"][0]
print({k: tuple(v.shape) for k, v in batch.items() if hasattr(v, "shape")}, "| task:", batch["task"])
print(f"sequence of {len(ids)} tokens: {int((labels == IGNORE_INDEX).sum())} ignored (-100), "
      f"{int((labels != IGNORE_INDEX).sum())} supervised")

# %% [markdown]
# The labels per token, around the place where supervision starts and at the end (the model
# shifts labels by one inside: the logit at position t is scored against the label at t + 1):

# %%
pieces = tokenizer.convert_ids_to_tokens(ids.tolist())
first = int((labels != IGNORE_INDEX).nonzero()[0])
around = list(range(first - 4, first + 4)) + list(range(len(ids) - 3, len(ids)))
pd.DataFrame({"position": around, "token": [pieces[i] for i in around],
              "label": ["-100 (ignored)" if labels[i] == IGNORE_INDEX else tokenizer.convert_ids_to_tokens(int(labels[i]))
                        for i in around]}
             ).set_index("position").T

# %% [markdown]
# Now the step itself, with the stage's own `HealthGPTLitModule`: its `training_step` (what
# Lightning calls), `backward`, and the AdamW of `configure_optimizers`. Before it we keep a copy
# of the embedding's text rows and image rows.

# %%
import warnings

import torch

from healthgpt_lite.training.lit_module import HealthGPTLitModule

module = HealthGPTLitModule(model, spec, total_steps=10, lr_scale=cfg.train.lr_scale, seed=cfg.seed)
optimizer = module.configure_optimizers()["optimizer"]
emb = model.llm.get_input_embeddings().weight
start = model.block.start
text_rows, image_rows = emb[:start].detach().clone(), emb[start:].detach().clone()
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*self.log.*")  # no Trainer here: logging is skipped
    loss = module.training_step({"generation": batch}, 0)
loss.backward()
n_codes = model.block.n_codes
print(f"loss {loss.item():.3f}; a model that cannot tell the {n_codes} codes apart but knows a code comes next "
      f"would score ln {n_codes} = {torch.log(torch.tensor(float(n_codes))):.3f} per code")

# %%
def grad_report(model) -> pd.DataFrame:
    rows = []
    for g, params in model.parameter_groups().items():
        got = [p for p in params if p.grad is not None]
        nonzero = sum(int((p.grad != 0).sum()) for p in got)
        rows.append({"group": g, "tensors": len(params), "with a .grad": len(got),
                     "weights with a nonzero gradient": nonzero, "of": sum(p.numel() for p in params)})
    return pd.DataFrame(rows).set_index("group")


report = grad_report(model)
display(report)
print("groups with a nonzero gradient:", list(report.index[report["weights with a nonzero gradient"] > 0]))
grad = emb.grad
print(f"embedding gradient: text rows {float(grad[:start].abs().max()):.1e} (max |g|), "
      f"image rows {float(grad[start:].abs().max()):.1e}")

# %% [markdown]
# Groups outside the stage have no `.grad` at all (`llm`, `embeddings` and `head` list the
# embedding and head tensors, which hold the image rows; their nonzero gradients are the image
# rows'). The generation plugin has gradients, but only its `B` matrices are nonzero: `B` starts at zero, so the gradient reaching `A` and the router (which
# flows through `B`) is exactly zero at the first step (notebook 05). The text rows' gradient is
# zero because the row mask multiplied it by 0. Now the optimizer step:

# %%
optimizer.step()
print("optimizer groups:", [(g["name"], g["lr"], len(g["params"])) for g in optimizer.param_groups])
print("text rows of the embedding unchanged:", torch.equal(emb[:start], text_rows))
print(f"image rows moved: max |change| {float((emb[start:].detach() - image_rows).abs().max()):.2e}")
optimizer.zero_grad()
module.on_train_end()  # removes the row-mask hooks

# %% [markdown]
# ## The code that ran
#
# The loss of every stage and task (one call of the model with its labels; the LLM's
# cross-entropy over the supervised positions), the training step that averages the tasks'
# losses (stage 2 has two), and the optimizer: one AdamW group per trained group, at the stage's
# learning rate times `train.lr_scale`, weight decay 0.

# %%
import inspect

from healthgpt_lite.training.lit_module import train_only_rows_from

for fn in (freeze_for_stage, train_only_rows_from, HealthGPTLitModule._loss, HealthGPTLitModule.training_step,
           HealthGPTLitModule.configure_optimizers):
    print(inspect.getsource(fn))

# %% [markdown]
# ## Before stage 1
#
# The model with fresh adapters and plugins: a few validation images, their reference report,
# and what the model says. LLM-lite knows the language, but nothing has taught it to see yet.

# %%
from healthgpt_lite.data import load_records
from healthgpt_lite.model.inference import HealthGPTLite

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
# And how sure the untrained model is about image codes: the spread (max - min) of the
# image-token logits (one per code) at the first generated position. Zero means it cannot prefer
# any code.

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
# Training a stage is one call, `train_stage(cfg, name, model, data, run_dir)`: it wraps the
# model in the stage's `HealthGPTLitModule` (the freeze rule, the loss and the optimizer you
# just stepped by hand), runs the stage's steps with a Lightning `Trainer`, and saves what the
# stage trained into `run_dir`. Three calls of this package lie between this cell and the loss:
# `train_stage` -> `training_step` -> `_loss`.
#
# `run_dir` is where `make reproduce` keeps this stage for this exact config (`stage_path`,
# keyed by the config), so when it already trained the stage the cell reuses it instead. The
# loop below is `pipeline.run_stage` (what `reproduce` calls) written out, so that you see the
# one call that trains.

# %%
from healthgpt_lite.artifacts import is_complete
from healthgpt_lite.training.pipeline import stage_path, stages_before
from healthgpt_lite.training.train import stage_data, train_stage
from healthgpt_lite.training.trainer import plot_curves, read_metrics

paths = {}
for name in ["stage1_comprehension", "stage1_generation"]:
    paths[name] = stage_path(cfg, name, run.artifacts_dir)
    if is_complete(paths[name]):
        print(f"{name}: reusing {paths[name].name} (trained by an earlier run with this config)")
        continue
    model = model_after(cfg, stages_before(name), run.artifacts_dir)  # seeded model + the stages it builds on
    data = stage_data(cfg, name, tokenizer, data_dir, store)          # batches of cfg.train's sizes
    done = train_stage(cfg, name, model, data, paths[name], progress=run.progress)
    print(f"{name}: {done['steps']} steps in {done['train_seconds']} s, {done['trainable_parameters']:,} weights learned")
display(plot_curves(read_metrics(paths["stage1_comprehension"]), ["train/loss", "val/loss_comprehension"],
                    title="stage 1, comprehension: abstract adapter on reports"))
plot_curves(read_metrics(paths["stage1_generation"]), ["train/loss", "val/loss_generation"],
            title="stage 1, generation: concrete adapter + plugin (+ image rows) on reconstruction")

# %% [markdown]
# ## After stage 1
#
# The same reports, now from the model after stage 1, and their BLEU-4 / ROUGE-L against the
# references before and after (three reports: a direction, not a measurement):

# %%
from healthgpt_lite.eval.metrics import report_scores

after = HealthGPTLite.from_config(cfg, run.artifacts_dir, stages=("stage1_comprehension", "stage1_generation"))
table_before, table_after = report_table(before), report_table(after)
display(table_after)
langs = [r["lang"] for r in reports]
bleu = {name: report_scores(list(t["model"]), list(t["reference"]), langs)
        for name, t in (("before", table_before), ("after", table_after))}
print({name: {k: round(v, 3) for k, v in b.items()} for name, b in bleu.items()})
print("ROUGE-L", "rose" if bleu["after"]["rougeL_f1"] > bleu["before"]["rougeL_f1"] else "did not rise", "in stage 1")

# %% [markdown]
# Do the image-token logits differ now, and are reconstructions closer to the input? The spread,
# the images, and the SSIM of each to the input beside the VQ ceiling say it for this run:

# %%
from healthgpt_lite.data import load_image
from healthgpt_lite.viz.samples import image_grid

print(f"image-token logit spread after stage 1: {image_logit_spread(after, recons[0]):.2f}")
instructions = [r["conversations"][0]["value"] for r in recons]
inputs = [data_dir / r["image"] for r in recons]
from healthgpt_lite.eval.metrics import image_scores

truth = torch.stack([load_image(p, size=cfg.vq.resolution) for p in inputs])
panels = {"before stage 1": before.vq.decode(before.generate_codes(instructions, inputs)),
          "after stage 1": after.vq.decode(after.generate_codes(instructions, inputs)),
          "VQ ceiling": after.vq.decode(after.vq.encode(truth))}
display(image_grid({"input": [load_image(p, channels=1) for p in inputs], **{k: list(v) for k, v in panels.items()}},
                   title="reconstruction (val images)"))
ssim = {k: float(image_scores(v, truth)["ssim"].mean()) for k, v in panels.items()}
print("mean SSIM to the input:", {k: round(v, 3) for k, v in ssim.items()})
print(f"stage 1 {'raised' if ssim['after stage 1'] > ssim['before stage 1'] else 'did not raise'} reconstruction SSIM; "
      f"it reaches {ssim['after stage 1'] / ssim['VQ ceiling']:.0%} of the VQ ceiling")

# %% [markdown]
# In the `smoke` profile (CI, a few steps) the numbers above are noise; the `cpu` profile (the
# default) trains stage 1 long enough for them to mean something.
#
# ## Summary
#
# * Stage 1 aligns: comprehension trains only the abstract adapter (LLM and plugins frozen);
#   generation trains the concrete adapter and the generation plugin on reconstruction.
# * The new image-token rows start identical; we let stage-1 generation train them (text rows
#   masked), so that the model can tell codes apart from the first step.
# * Frozen encoders mean cached features: the same numbers, a fraction of the compute.
# * One step by hand: `freeze_for_stage` sets what trains, the labels are -100 except the
#   response, only the stage's groups get gradients (and, at step 0, only the plugin's `B`), and
#   the row mask keeps the text rows of the embedding exactly unchanged.
# * A whole stage is `train_stage(cfg, name, model, data, run_dir)`: that step, repeated by a
#   Lightning `Trainer`, then the trained tensors saved where the next stage (and notebook) finds them.
#
# ## Check your understanding
#
# 1. Why does stage-1 comprehension freeze the LLM? What could a random adapter do to it otherwise?
#
#    <details><summary>Answer</summary>
#
#    The adapter starts random, so its visual tokens are noise and the first gradients are large
#    and meaningless; a trainable LLM would rewrite its language weights to fit that noise. Frozen,
#    the only way to lower the loss is to make the visual tokens speak the LLM's embedding language.
#
#    </details>
#
# 2. With the head frozen and all `<idx_k>` rows equal, what is the cross-entropy of a 512-code
#    target at step 0, and can the plugin lower it?
#
#    <details><summary>Answer</summary>
#
#    ln 512 ≈ 6.24; no: every code has the same logit.
#
#    </details>
#
# 3. Which parameters does our stage 1 train that the paper's does not, and which stage of the
#    paper trains them instead?
#
#    <details><summary>Answer</summary>
#
#    The new image-token rows of the embeddings and the head (`image_rows`; and this project's
#    `image_positions`, which the paper does not have). The paper trains all embedding and head
#    rows in stage 2. The freeze table above shows both.
#
#    </details>
#
# **Exercise:** [exercises/04_stage_rules](../exercises/README.md): write which groups train in each stage.
