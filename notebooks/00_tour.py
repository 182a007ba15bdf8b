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
# # 00 · A tour of HealthGPT (and of this course)
#
# **Learning objectives.** After this notebook you can
# 1. say what makes HealthGPT different from a LLaVA-style medical VLM: *one* autoregressive LLM
#    that both **understands** medical images (VQA, reports) and **generates** them (CT↔MRI,
#    super-resolution, report→image);
# 2. name its three ideas (hierarchical visual perception, H-LoRA, the three-stage learning
#    strategy) and where each one lives in this package;
# 3. tell a *preset* (model shapes) from a *profile* (how long to train), and check that your
#    machine is ready.
#
# Papers: HealthGPT (Lin et al., ICML 2025, arXiv 2502.09838) and, as the two-stage baseline,
# Qilin-Med-VL (Liu et al., arXiv 2310.17956).

# %% tags=["parameters"]
PROFILE = "cpu"  # cpu (the learning lite run) | smoke (CI, seconds, learns nothing) | gpu | full
PRESET = "tiny"  # tiny (CPU) | small (one GPU) | m3 (Phi-3-mini) | l14 (phi-4)
SEED = 0
ARTIFACTS_DIR = None  # None: ./artifacts at the repository root
DATA_DIR = None  # None: derived from ARTIFACTS_DIR and the data config
OVERRIDES = {}  # dotted config keys, e.g. {"vq.n_embed": 256}; an unknown key is an error

# %%
from healthgpt_lite.course.notebook import course_map, environment_report, setup

run = setup(PROFILE, PRESET, SEED, ARTIFACTS_DIR, DATA_DIR, OVERRIDES)
run

# %% [markdown]
# ## One model, two kinds of task
#
# A LLaVA-style model (Qilin-Med-VL is one) turns an image into *visual tokens* with a frozen
# vision encoder and a small projector, splices them into the prompt of an LLM, and trains the
# LLM to answer. It can only **read** images.
#
# HealthGPT also **writes** images, with the same LLM: a frozen VQGAN turns every training image
# into a grid of discrete codes (32×32 = 1024 for a 256 px image), each code becomes a new word
# `<idx_k>` of the vocabulary, and "generate an MRI from this CT" becomes "predict the next
# 1024 words". Decoding those words with the VQGAN decoder gives back pixels.
#
# The picture below is the whole model; every box is a module of this package.

# %%
from healthgpt_lite.viz.diagrams import architecture_figure

architecture_figure(title="HealthGPT: one LLM, two task plugins (nothing highlighted = the map)")

# %% [markdown]
# ## The three ideas, and where they live
#
# | idea | what it does | paper | here |
# |---|---|---|---|
# | **Hierarchical visual perception (HVP)** | generation reads a *shallow* ViT layer (`hidden_states[1]`: detail), comprehension a *deep* one (`hidden_states[-2]`: meaning); each has its own `mlp2x_gelu` adapter | "Hierarchical Visual Perception"; docs/PAPERS.md §1 | `healthgpt_lite/vision/` · notebook 02 |
# | **VQ image tokens** | a taming VQGAN maps images ↔ code grids; codes are new LLM words | "Unified Autoregressive Generation"; docs/PAPERS.md §1 | `healthgpt_lite/vq/` · notebook 03 |
# | **H-LoRA** | per task a *plugin* of k LoRA experts stored as one fused pair of matrices, mixed per token by a router; the task picks the plugin (a hard switch) | "Heterogeneous Knowledge Adaptation"; docs/PAPERS.md §2 | `healthgpt_lite/lora/` · notebook 05 |
# | **Three-stage learning (TLS)** | 1: align each adapter (and the generation plugin), 2: tune word embeddings + head on a mix, 3: task-specific plugins | "Three-stage Learning Strategy"; docs/PAPERS.md §3 | `healthgpt_lite/training/` · notebooks 06-08 |
#
# Why two plugins instead of one adapter? The paper's motivation: adding generation data to
# comprehension training *hurts* comprehension and vice versa, so the two kinds of knowledge
# must not share parameters. Notebook 10 measures that conflict in miniature.

# %% [markdown]
# ## Presets and profiles: the same code from a laptop to a cluster
#
# A **preset** fixes the model's shapes, a **profile** how much data and how many steps.
# `tiny` trains on two CPU cores in minutes; `m3` is HealthGPT-M3 (CLIP ViT-L/14-336,
# Phi-3-mini, VQGAN f8-8192). Only the configuration changes.

# %%
from healthgpt_lite.config import PRESETS, build_config

rows = []
for name in PRESETS:
    c = build_config(name, "smoke")
    rows.append({"preset": name, "image px (ViT)": c.vision.image_size, "visual tokens": c.vision.num_tokens,
                 "image tokens (VQ)": c.vq.num_tokens, "codebook": c.vq.n_embed, "LLM hidden": c.llm.hidden_size,
                 "LLM layers": c.llm.num_layers, "comp r*k": c.lora.comprehension.rank, "gen r*k": c.lora.generation.rank})
import pandas as pd

pd.DataFrame(rows).set_index("preset")

# %% [markdown]
# Every config key can be overridden with a dotted name, strictly: a typo is an error that
# names the key, not a silently ignored setting.

# %%
from healthgpt_lite.errors import ConfigError

print(build_config("tiny", "smoke", {"vq.n_embed": 256}).vq.n_embed)
try:
    build_config("tiny", "smoke", {"vq.n_embeds": 256})
except ConfigError as e:
    print("ConfigError:", e)

# %% [markdown]
# ## The map of the course
#
# Notebooks build the model piece by piece; each exercise asks you to write one key piece and
# checks it. The table is read from the files in this checkout.

# %%
pd.DataFrame(course_map())

# %% [markdown]
# ## Environment check
#
# Everything runs on a CPU; a GPU is used when present (the `gpu` profile). Nothing is
# downloaded at run time: the data are generated, the tokenizer ships in `data_samples/`.

# %%
from healthgpt_lite.data import load_tokenizer

env = environment_report()
tok = load_tokenizer()
env["tokenizer"] = f"{len(tok)} tokens (data_samples/tokenizer)"
pd.Series(env, name="value").to_frame()

# %% [markdown]
# ## Summary
#
# * HealthGPT = LLaVA-style comprehension **plus** generation through VQ image tokens, in one LLM.
# * HVP gives each task its own ViT layer and adapter; H-LoRA gives each task its own plugin of
#   fused LoRA experts; three training stages keep the two tasks from interfering.
# * Presets change shapes, profiles change training length; overrides are strict.
#
# ## Check your understanding
#
# 1. Why can a LLaVA-style model not generate an image, and what two components does HealthGPT
#    add so that it can?
#
#    <details><summary>Answer</summary>
#
#    The VQ tokenizer and the `<idx_k>` vocabulary; see "One model, two kinds of task".
#
#    </details>
#
# 2. Which ViT layer does generation read, and why a shallow one?
#
#    <details><summary>Answer</summary>
#
#    Layer 1: it keeps pixel detail that the deep layers have abstracted away.
#
#    </details>
#
# 3. What does the `tiny` preset change compared with `m3`, and what stays the same?
#
#    <details><summary>Answer</summary>
#
#    Only the shapes; the code and the recipe are identical.
#
#    </details>
#
# **Exercises:** see [`exercises/README.md`](../exercises/README.md) for the list.
