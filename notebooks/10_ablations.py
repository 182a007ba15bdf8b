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
# # 10 · Ablations in miniature: what each part of HealthGPT buys
#
# **Learning objectives.** After this notebook you can
# 1. state the question behind each of the paper's ablations (PEFT method, number of experts,
#    three stages vs one mixed run, the HVP layers, task conflict) and what makes a comparison
#    fair: the same data, seeds, step budget and total LoRA rank in every row;
# 2. read our tables beside the paper's numbers and say, with the seed spread, which of the
#    paper's orderings the miniature reproduces and which it does not;
# 3. explain why MoELoRA and H-LoRA learn the same thing yet cost different time, and why a
#    shared adapter lets one task's data pull the other task's weights;
# 4. reuse the cached runs of `python -m healthgpt_lite reproduce --ablations`, or train them here.
#
# HealthGPT paper, "In-Depth Study" (Tables 4 and 5; Table 10 in the appendix) and the Introduction (Figure 2, the motivation); docs/PAPERS.md §2 and §4.

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
# ## Five questions, as data
#
# `healthgpt_lite/ablations/runs.py` writes every ablation down as a table of rows; each row
# names a **run** (a recipe plus config overrides) and, where the paper publishes them, its
# numbers. A run that appears in several tables (the H-LoRA reference is in four) is trained once.

# %%
import pandas as pd

from healthgpt_lite.ablations import tables
from healthgpt_lite.ablations.scoring import seeds_of

pd.set_option("display.max_colwidth", 160)
TABLES = {t.key: t for t in tables(cfg)}
pd.DataFrame([{"table": t.title, "question": t.question, "rows": len(t.rows), "seeds": seeds_of(cfg, t),
               "paper": t.paper_ref} for t in TABLES.values()]).set_index("table")

# %% [markdown]
# ## A fair budget
#
# Every ablation stage trains `ablation.step_fraction` of the steps notebooks 06-08 use, with the
# profile's batch sizes and learning rates. Four recipes spend it:
#
# * **three_stage**: the paper's recipe (stage 1 for each task, stage 2, stage 3 for each task);
# * **plugin**: only what a plugin's kind or size can change: the generation plugin where it first
#   learns (stage-1 reconstruction, from the base model) and the comprehension plugin where it
#   first learns (stage 3, from the reference's stage-2 model). Both are exactly the recipe's own
#   stages, so the H-LoRA row *is* the reference run;
# * **mixed**: one run from the base model on every task at once, through one shared plugin, with as
#   many batches of each task as the three stages see;
# * **conflict**: stage-3 comprehension with generation batches added at a ratio, through one
#   shared plugin or the two task plugins.
#
# A shared plugin gets the rank of both plugins together, so every row of a table has the same
# number of LoRA weights.

# %%
from healthgpt_lite.ablations import budget, stage_steps

print("steps per ablation stage:", stage_steps(cfg))
print("LoRA ranks: comprehension", cfg.lora.comprehension.rank, "+ generation", cfg.lora.generation.rank,
      "| experts:", cfg.lora.comprehension.experts, "| lr x", cfg.train.lr_scale)
pd.DataFrame([{"table": t.key, "row": r.label, "recipe": r.run.recipe, **budget(cfg, r.run)}
              for t in TABLES.values() for r in t.rows]).set_index(["table", "row"]).head(8)

# %% [markdown]
# ## Train or load every run
#
# Each stage of each run is an artifact keyed by what decides it (plugin kind, experts, ranks, HVP
# layers, seed, steps, the stages it starts from), and each score is one too: after
# `python -m healthgpt_lite reproduce --ablations --profile cpu` this cell only loads. Training
# runs on one CPU thread (`ablation.threads`): for matrices this small a second thread only adds
# waiting, and on a shared machine it made steps many times slower.

# %%
import time

from healthgpt_lite.ablations import run_ablations

started = time.time()
records = run_ablations(cfg, run.artifacts_dir, run.data_dir, progress=run.progress, log=lambda line: None)
print(f"{len(records)} (run, seed) records in {time.time() - started:.0f} s")
pd.DataFrame(records).drop(columns=["stages"]).head(3)

# %% [markdown]
# Every table below prints ours (mean ± std over its seeds) beside the paper's numbers, then the
# findings as sentences computed from *these* numbers: the paper's claim first, then ours, and
# whether each difference is larger than the seed-to-seed spread. The paper's numbers come from
# HealthGPT-M3 on real data and GPUs; compare directions, not values.

# %%
from healthgpt_lite.ablations import table_rows
from healthgpt_lite.ablations.findings import findings
from healthgpt_lite.ablations.scoring import flat_table
from healthgpt_lite.viz.ablations import conflict_figure, metric_bars, time_ratio_figure

ROWS = {key: table_rows(cfg, records, t) for key, t in TABLES.items()}
WORDS = findings(ROWS)


def show(key: str) -> pd.DataFrame:
    """Print the findings of one table and return it as a DataFrame (ours, then the paper's)."""
    for line in WORDS[key]:
        print("-", line)
    return pd.DataFrame(flat_table(ROWS[key])).set_index("row")


# %% [markdown]
# ## 1. PEFT method: LoRA vs MoELoRA vs H-LoRA (paper Table 4)
#
# All three adapters have the same total rank. LoRA is one matrix pair; MoELoRA is k expert pairs
# and a router, computed as a loop; H-LoRA is **the same mixture** stored fused, so the loop becomes
# two matrix products (notebook 05). Same function, same initial weights: the only differences
# left between MoELoRA and H-LoRA are the order of floating-point sums, the dropout masks, and time.
#
# **One difference is not the architecture: the scale.** The LoRA row is peft's LoRA, which
# scales its update by alpha / R (R the total rank); MoELoRA and H-LoRA, as released, scale each
# expert by alpha / r, r = R / k, with the same alpha. Averaged over the experts (router weights
# sum to 1) a token sees alpha / R, LoRA's; a token routed to one expert sees up to k times that.
# With Adam a step moves each weight by about the learning rate, so at equal alpha and learning
# rate the mixtures can take up to k× larger effective steps on sharply routed tokens. In a run
# this short, larger steps can look like better learning: a gap between the LoRA row and the
# mixtures may come from step size, not from experts. (A fairer comparison would give LoRA
# alpha × k, or tune the learning rate per method; these tables do not.) For this config:

# %%
pc = cfg.lora.comprehension
print(f"comprehension plugin: R = {pc.rank}, k = {pc.experts}, r = {pc.rank_per_expert}, alpha = {pc.alpha}: "
      f"peft LoRA scale alpha/R = {pc.alpha / pc.rank:g}, H-LoRA/MoELoRA alpha/r = {pc.scale:g} "
      f"({pc.scale / (pc.alpha / pc.rank):g}x; per token between {1:g}x and {pc.experts}x LoRA's effective step)")

# %%
show("peft")

# %%
display(metric_bars(ROWS["peft"], ["closed", "open", "recon_ssim", "recon_val_loss"], TABLES["peft"].title))
time_ratio_figure(ROWS["peft"])

# %% [markdown]
# **Discussion of a reference run** (not the run above: `python -m healthgpt_lite reproduce --ablations --profile cpu --set ablation.step_fraction=0.1`, 2 seeds for tables 1, 2 and 5, one for 3 and 4; the findings printed above are this notebook's own). In it, training time shows the
# paper's ordering: MoELoRA took 1.68 ± 0.01× as long as LoRA and H-LoRA 1.05 ± 0.22× (paper: 1.49×
# and 1.00×). Quality does **not** separate the three: closed accuracy 0.51 ± 0.03 (LoRA),
# 0.55 ± 0.05 (MoELoRA), 0.54 ± 0.09 (H-LoRA) and reconstruction SSIM 0.070 for all. These differences
# lie inside the seed spread, so the paper's H-LoRA > LoRA > MoELoRA is neither reproduced nor
# refuted. At a tenth of the steps the models are only beginning to learn: closed accuracy is close to the
# level of guessing. A 3.8B model on real data can separate adapters that a 1M-parameter model after a
# few dozen steps cannot. Compare your table above with these numbers: in `smoke` every number is noise.

# %% [markdown]
# ## 2. Number of experts (paper Table 10)
#
# More experts at the same total rank means thinner experts (rank r = 16 / k for the comprehension
# plugin) and, for the loop, more small matrix products per layer. The released scale alpha / r
# also grows with k (same alpha, smaller r): a token routed to one expert gets up to k times the
# step of a uniformly routed one (whose average factor stays alpha / R), so k changes step size as
# well as architecture.

# %%
show("experts")

# %%
display(metric_bars(ROWS["experts"], ["closed", "open", "recon_ssim"], TABLES["experts"].title))
time_ratio_figure(ROWS["experts"])

# %% [markdown]
# **Discussion (the reference run above, cpu profile, step_fraction 0.1; not this run).** Time: MoELoRA grew from 1.19× LoRA at k = 2 to 1.68× at k = 4 and
# 2.49× at k = 8 (paper: 1.22× / 1.49× / 2.09×). H-LoRA stayed flat at 0.89× / 1.05× / 0.94×. This is the
# paper's point, and it holds beyond the seed spread: the loop pays per expert, the fused form does not
# (notebook 05 measures the same on a single step). Quality rose a little with k for both kinds (closed
# 0.51 → 0.59 MoELoRA, 0.50 → 0.57 H-LoRA, spreads 0.01-0.09). Read that with care: at a fixed alpha the
# scale alpha / r grows with k, so more experts also means up to k× larger steps for sharply routed
# tokens, which helps a run this short; the rise cannot be credited to the experts alone.

# %% [markdown]
# ## 3. Three stages vs one mixed run (paper Table 5)
#
# The mixed run trains everything the three stages train, on all data at once, through one shared
# plugin (of both plugins' rank), with as many comprehension and generation batches as the three
# stages see. What it lacks: an order (alignment before instruction tuning) and separate weights.

# %%
show("tls")

# %%
metric_bars(ROWS["tls"], ["closed", "open", "ct2mri_ssim", "recon_ssim"], TABLES["tls"].title)

# %% [markdown]
# **Discussion (the reference run above, cpu profile, step_fraction 0.1; not this run).** With one seed, the mixed run came out *ahead* of the three stages (closed
# 0.58 vs 0.47, CT→MRI SSIM 0.20 vs 0.14). The paper reports the opposite: 45.0 vs 77.9 on SLAKE and
# 65.6 vs 70.8 CT SSIM. We did not reproduce it, and there is a plausible reason. The mixed run trains
# every group (both adapters, one shared plugin, embeddings and head) from its first step. The three
# stages spend their first steps on the adapters alone. When no task is anywhere near what the
# model can hold, more trainable weights early win. Conflict between tasks shows once they compete
# for capacity, which needs far longer training than this. With one seed, differences near 0.1 are
# within the noise that table 1's two seeds show (std up to 0.09).

# %% [markdown]
# ## 4. Which ViT layer for which task (HVP)
#
# The paper hands generation a shallow layer (close to the pixels) and comprehension a deep one
# (close to meaning). The two variants give both tasks the same layer. They read the same feature
# cache, so no encoder is retrained: only which cached layer each task sees changes.

# %%
show("hvp")

# %%
metric_bars(ROWS["hvp"], ["closed", "open", "ct2mri_ssim", "recon_ssim"], TABLES["hvp"].title)

# %% [markdown]
# **Discussion (the reference run above, cpu profile, step_fraction 0.1; not this run).** With one seed: closed accuracy 0.47 (the paper's layers), 0.50 (both
# deep), 0.57 (both shallow); CT→MRI SSIM 0.135, 0.151 and 0.120. The paper's design wins on none of
# them clearly, and every difference is within table 1's seed spread. Notebook 02 shows why the choice
# matters little here. The tiny CLIP-lite has 4 layers, and its layers 1 and 3 keep almost the same
# pixel detail (linear-probe R² 0.975 vs 0.970) and similar lesion information. HVP pays off in a
# 24-layer ViT, where the first and the second-to-last layer really differ.

# %% [markdown]
# ## 5. Task conflict: the reason for two plugins
#
# Comprehension trains for the same steps on the same batches; generation batches are *added*
# (0, half as many, as many). With one shared plugin, every generation batch moves the weights
# comprehension uses; with two plugins it cannot touch them, so that curve can only move through
# noise (the loss of the added batches reaches nothing comprehension reads).

# %%
show("conflict")

# %%
conflict_figure(ROWS["conflict"], cfg.ablation.gen_mix)

# %% [markdown]
# **Discussion (the reference run above, cpu profile, step_fraction 0.1; not this run).** With one shared plugin, closed accuracy *rose* as generation
# batches were added (0.48 ± 0.00 → 0.52 ± 0.05 → 0.55 ± 0.05 at +0 / +0.5 / +1). With separate
# plugins it was exactly the same at every mix (0.54 ± 0.09): the comprehension weights get no
# gradient from generation batches, by construction. So the miniature shows the guarantee of two
# plugins, but not the conflict that motivates them. Early in training any gradient on the shared weights
# also helps comprehension. Interference appears when both tasks need the same capacity, at the
# paper's scale and training length, not after a few dozen steps of a 1M-parameter model.

# %% [markdown]
# ## One plugin, really shared
#
# The mixed run's model has a single plugin, named `shared`, and the stage table's
# `comp_plugin` and `gen_plugin` groups are the very same tensors in it.

# %%
from healthgpt_lite.ablations.runner import Context, branch_model
from healthgpt_lite.lora import plugin_configs

ctx = Context.create(cfg, run.artifacts_dir, run.data_dir)
mixed = next(r for r in records if r["run"] == "mixed")
mixed_run = next(r.run for r in TABLES["tls"].rows if r.run.name == "mixed")
model = branch_model(ctx, ctx.config(mixed_run, mixed["seed"]), [run.artifacts_dir / mixed["stages"]["mixed"]], share=True)
groups = model.parameter_groups()
print("plugins:", {name: (p.rank, p.experts) for name, p in plugin_configs(model.llm).items()})
print("comp_plugin and gen_plugin are the same tensors:",
      [id(p) for p in groups["comp_plugin"]] == [id(p) for p in groups["gen_plugin"]])

# %% [markdown]
# ## Summary
#
# * A fair ablation changes one thing: every row of a table here has the same data, seeds, step
#   budget and total rank, and runs shared between tables are trained once.
# * MoELoRA and H-LoRA compute the same mixture of experts; what the fused form buys is time, and
#   the loop's cost grows with the number of experts.
# * The paper's orderings are claims about a 3.8B model on real data; the tables above say which
#   of them this 1M-parameter miniature reproduces, with the spread over seeds, and the
#   discussions say why some do not.
# * Two plugins make task conflict impossible by construction; one shared plugin lets it happen.
#
# ## Check your understanding
#
# 1. Why can the MoELoRA and H-LoRA rows differ at all, if they compute the same function from
#    the same initial weights?
#
#    <details><summary>Answer</summary>
#
#    Dropout masks are drawn in a different layout, and sums are added in another order; both
#    act like another seed.
#
#    </details>
#
# 2. Why is the `plugin` recipe's comprehension run allowed to start from the reference's
#    stage-2 model, whatever plugin it tests?
#
#    <details><summary>Answer</summary>
#
#    Stages 1-2 never train or use the comprehension plugin.
#
#    </details>
#
# 3. The separate-plugins conflict curve: which weights could the added generation batches move
#    that comprehension reads?
#
#    <details><summary>Answer</summary>
#
#    None: the comprehension plugin and adapter get no gradient from them; the embeddings and
#    head are frozen in stage 3.
#
#    </details>
#
# 4. Why report the test split but choose nothing on it?
#
#    <details><summary>Answer</summary>
#
#    Any choice made on test scores turns them into training data for the choice, and they stop
#    measuring generalisation.
#
#    </details>
#
# **Exercises:** [`exercises/03_hlora_forward`](../exercises/03_hlora_forward/student.ipynb) (the
# fused forward and the MoELoRA loop compared here); all exercises:
# [`exercises/README.md`](../exercises/README.md).
