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
# # 12 · From laptop to cluster: real-size plans, full-run configs, real data
#
# **Learning objectives.** After this notebook you can
# 1. instantiate HealthGPT-M3 (4.8B parameters) and -L14 (16B) on PyTorch's `meta` device and
#    count what every stage trains, checking it against the released HealthGPT plugins;
# 2. estimate the memory one GPU needs for a stage from first principles (weights, gradients,
#    AdamW states, activations) and choose between DDP and FSDP, with or without activation
#    checkpointing;
# 3. count the tokens of a sample (576 visual tokens in, 1026 image tokens out) and say why
#    generation samples dominate the cost;
# 4. read a full-run config: the global batch as per-device batch × GPUs × nodes × accumulation,
#    the strategy, the real weights from local paths, the real data in LLaVA JSON;
# 5. convert a benchmark (VQA-RAD) from its own format and run the *same* `fit` path here for a
#    few steps, on stand-in weights, then score it the way the benchmark defines closed and open;
# 6. load the *released* HealthGPT weights (the authors' H-LoRA files on Phi-3-mini / phi-4, CLIP
#    and the VQGAN) into this project's model, with the released token ids, template and
#    preprocessing, and say which of their keys land where.
#
# Nothing in this notebook needs a GPU or a download. Everything the cluster will run is parsed,
# built or counted here; what cannot be checked on a laptop (GPUs, the downloaded files) is said.

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
# ## The real model, without its memory
#
# A tensor on the `meta` device has a shape and a dtype but no storage. Building HealthGPT-M3
# inside `with torch.device("meta"):` runs the very code a cluster runs (`build_model`: Phi-3,
# the extended vocabulary, both H-LoRA plugins in every linear layer, both adapters; plus the
# CLIP ViT-L/14-336 and the VQGAN) and allocates nothing. The only stand-in is the tokenizer:
# `PlannedVocabulary` has Phi-3's size and token ids without its text (`scale/meta.py` states the
# vocabulary facts it assumes).

# %%
import time

import pandas as pd
import torch

from healthgpt_lite.config import build_config
from healthgpt_lite.scale import build_meta_model
from healthgpt_lite.scale.plan import parameter_breakdown

started = time.time()
built = {p: build_meta_model(build_config(p, "full")) for p in ("m3", "l14")}
print(f"M3 and L14 built on meta in {time.time() - started:.1f} s")
pd.DataFrame({p: {k: f"{v / 1e6:,.1f}M" for k, v in parameter_breakdown(b).items()} for p, b in built.items()})

# %% [markdown]
# Every weight is there, with its real shape, and none of them holds a byte:

# %%
m3 = built["m3"].model
A = m3.llm.model.layers[0].self_attn.qkv_proj.plugins["generation"].A.weight
print("generation plugin, layer 0, qkv_proj, A:", tuple(A.shape), A.device, A.dtype)
print("embedding rows:", m3.llm.get_input_embeddings().weight.shape[0],
      "= 32011 Phi-3 tokens + <image> + 8195 image tokens;", "image block ids", m3.block.start, "..", m3.block.end + 1)
print("all parameters on meta:", all(p.is_meta for p in m3.parameters()))

# %% [markdown]
# One row more than the paper's 40206 (docs/PAPERS.md §1): this project keeps `<image>` as a real token (its
# position receives the 576 visual tokens), where HealthGPT uses the out-of-vocabulary id -200.
#
# ## What each stage trains, against the released HealthGPT
#
# The stage table (`training/stages.py`) applied to the meta model, counted with the same
# `trainable_parameter_count` a real run records. The full-run configs give each stage its
# per-device batch, so we read the plan from them (next section shows the files).

# %%
from healthgpt_lite.course.notebook import repo_path
from healthgpt_lite.scale.dry_run import parse_fit_config, plan_config, run_summary, stages_of
from healthgpt_lite.scale.plan import stage_plan

CONFIG_DIR = repo_path("configs")  # the repository's configs/, wherever the kernel started
CONFIGS = [f"{p}_stage{s}.yaml" for p in ("m3", "l14") for s in (1, 2, 3)]
parsed = {name: parse_fit_config(CONFIG_DIR / name) for name in CONFIGS}
plan = []
for name, ns in parsed.items():
    gpus = ns.trainer.devices * ns.trainer.num_nodes
    plan += [{"preset": ns.model.preset, "gpus": gpus, **row}
             for row in stage_plan(plan_config(ns), gpus, built[ns.model.preset], stages_of(ns))]
plan = pd.DataFrame(plan).set_index(["preset", "stage"])
M = lambda v: "-" if pd.isna(v) else f"{v / 1e6:,.1f}M"  # noqa: E731
plan[["trains", "trainable", "requires_grad", "released", "released_what"]].style.format(
    {"trainable": M, "requires_grad": M, "released": M})

# %% [markdown]
# Reading it against docs/PAPERS.md §2:
#
# * **M3 comprehension**: 102.9M (H-LoRA, r·k = 64 on every `qkv_proj, o_proj, gate_up_proj,
#   down_proj` of 32 layers: A, B and the router) + 12.6M (the `mlp2x_gelu` projector,
#   1024→3072→3072) = **115.5M**, the released "about 115M".
# * **M3 generation**: the H-LoRA alone is **404.9M**, the released "about 405M"; stage 3 also
#   trains the concrete adapter, so 417.5M. Stage 1 adds the 8195 new rows of the embeddings
#   and the head (50.3M): our decision against the identical-rows pitfall (notebook 06).
# * `requires_grad` > `trainable` where a row mask is used: the whole embedding and head need
#   gradients and AdamW states, although only the image rows move. Memory pays for the former.
# * L14 (phi-4, 40 layers, hidden 5120, 10 KV heads): comprehension r·k = 32 gives 116.7M +
#   31.5M; no L14 generation plugin was released, so the preset keeps M3's r·k = 256 (896.6M).
#
# ## Tokens per sample
#
# A comprehension sample is mostly image: 576 visual tokens (24×24 patches of a 336 px image)
# against ~18 template tokens, a question and a short answer. A generation sample adds the whole
# target image as 1026 tokens the model must *write* (`<start_index>`, 32×32 codes,
# `<end_index>`). Text lengths are our stated assumptions (`scale/plan.py: TEXT_TOKENS`).

# %%
from healthgpt_lite.scale.plan import TEXT_TOKENS, sample_tokens

print("assumed text tokens:", TEXT_TOKENS)
pd.DataFrame(sample_tokens(build_config("m3", "full"))).T

# %% [markdown]
# ## Memory per GPU
#
# bf16-mixed keeps fp32 weights and computes in bf16. With P all parameters, T those that need
# gradients, N GPUs (the full formula and every assumption: `scale/memory.py`):
#
# * **DDP**: every GPU holds everything: 4P (weights) + 4T (grads) + 8T (AdamW m, v) + 4T
#   (DDP's gradient buckets) + activations.
# * **FSDP** (full shard): weights, grads and AdamW states are split N ways, plus two gathered
#   bf16 decoder layers and the root unit. Catch: a wrapped unit with *any* trainable weight gets
#   a gradient for *all* of it (`use_orig_params=True`), so H-LoRA in every layer means a
#   sharded gradient of the whole LLM.
# * **Activations** per token per decoder layer ≈ 24h + 8i + 20·r·k bytes for Phi-3 (norms,
#   attention with SDPA, the SwiGLU MLP, the active plugin); with activation checkpointing only
#   each layer's input (4h) is kept and one layer is recomputed at a time. Plus 10 bytes per
#   vocabulary entry per token for the logits and the loss.

# %%
plan[["micro_batch", "tokens_per_gpu_step", "gpus", "ddp_GiB", "ddp+ac_GiB", "fsdp_GiB", "fsdp+ac_GiB"]]

# %% [markdown]
# Where it goes, for the largest stage of each model (dashed: an 80 GB GPU):

# %%
from healthgpt_lite.scale.plan import memory_breakdown
from healthgpt_lite.viz.scale import memory_figure

m3_cfg, l14_cfg = plan_config(parsed["m3_stage1.yaml"]), plan_config(parsed["l14_stage3.yaml"])
memory_figure({"M3 stage1_generation, 8 GPUs, 2 samples/GPU":
               memory_breakdown(m3_cfg, "stage1_generation", 8, built["m3"]),
               "L14 stage3_generation, 16 GPUs, 1 sample/GPU":
               memory_breakdown(l14_cfg, "stage3_generation", 16, built["l14"])})

# %% [markdown]
# M3 is small enough for DDP: ~43 GiB per GPU, no checkpointing, the fastest option, so the M3
# configs use DDP. L14's fp32 weights alone are 60 GiB: DDP leaves no room (77 GiB even with
# checkpointing, before the CUDA context), FSDP with activation checkpointing needs ~15 GiB, so
# the L14 configs use it. One exception: stage-1
# generation trains the image rows through a gradient mask on the parameters, and FSDP computes
# with its own flat copies, bypassing the mask. The run refuses FSDP there; L14 stage-1
# generation runs with DDP + checkpointing (~94 GiB: an H200-class GPU). An estimate is not a
# measurement: add 2-4 GiB for the CUDA context and fragmentation, and check the first steps with
# `torch.cuda.max_memory_allocated()`.
#
# ## The full-run configs
#
# One YAML per preset and stage, for `python -m healthgpt_lite fit --config ...`; stages with two
# tasks run twice (`--model.stage stage1_generation`). Parsed here by the project's own
# `LightningCLI` with instantiation switched off:

# %%
# the command line of one run changes its file's strategy (the YAML's header says why)
EXTRA = {("l14_stage1.yaml", "stage1_generation"): ["--trainer.strategy", "ddp", "--model.activation_checkpointing", "true"]}
rows = []
for name, ns in parsed.items():
    for stage in stages_of(ns):
        s = run_summary(parse_fit_config(CONFIG_DIR / name, "--model.stage", stage, *EXTRA.get((name, stage), [])))
        batch = " + ".join(f"{s[f'per_device_{t}']}" for t in ("comprehension", "generation") if f"per_device_{t}" in s)
        glob = " + ".join(f"{s[f'global_batch_{t}']}" for t in ("comprehension", "generation") if f"global_batch_{t}" in s)
        rows.append({"config": name, "stage": stage, "strategy": s["strategy"], "GPUs": s["gpus"],
                     "per GPU": batch, "accumulate": s["accumulate_grad_batches"], "global batch": glob,
                     "steps": s["optimizer_steps"]})
pd.DataFrame(rows).set_index(["config", "stage"])

# %% [markdown]
# The global batches are the paper's (256 / 64, 32, 128 / 64; docs/PAPERS.md §3). The L14 strategy is
# Lightning's `FSDPStrategy`, built here from the YAML exactly as `fit` builds it:

# %%
from healthgpt_lite.scale.dry_run import build_strategy

from healthgpt_lite.model.llm import build_llm

l14 = parsed["l14_stage1.yaml"]
asked = dict(l14.trainer.strategy.init_args)  # what the YAML asks for
fsdp = build_strategy(l14)  # what Lightning built from it
print(type(fsdp).__name__, "| sharding:", fsdp.sharding_strategy.name, "| use_orig_params:", fsdp.kwargs["use_orig_params"])
short = lambda c: getattr(c, "__name__", str(c).rsplit(".", 1)[-1])  # noqa: E731  (a class or its dotted name)
print("wrap policy asked for:", [short(c) for c in asked["auto_wrap_policy"]],
      "| activation checkpointing:", [short(c) for c in asked["activation_checkpointing_policy"]])
# the built policy is torch's ModuleWrapPolicy: a callable that says whether FSDP wraps a module
policy = fsdp.kwargs["auto_wrap_policy"]
with torch.device("meta"):
    shell = build_llm(build_config("tiny", PROFILE).llm, 512)
for name, module in [("a Phi3DecoderLayer", shell.model.layers[0]), ("the lm_head", shell.lm_head)]:
    print(f"built policy wraps {name}: {policy(module, recurse=False, nonwrapped_numel=0)}")
print("weights from:", {k: v for k, v in parsed["m3_stage1.yaml"].model.overrides.items() if k.endswith("_path")})

# %% [markdown]
# ### The commands, and what to download where
#
# ```bash
# python -m healthgpt_lite fit --config configs/m3_stage1.yaml                                  # 1, comprehension
# python -m healthgpt_lite fit --config configs/m3_stage1.yaml --model.stage stage1_generation  # 1, generation
# python -m healthgpt_lite fit --config configs/m3_stage2.yaml                                  # 2
# python -m healthgpt_lite fit --config configs/m3_stage3.yaml                                  # 3, comprehension
# python -m healthgpt_lite fit --config configs/m3_stage3.yaml --model.stage stage3_generation  # 3, generation
# python -m healthgpt_lite plan --config configs/m3_stage1.yaml        # this notebook's tables for one file
# ```
#
# | what | from | put it at (the configs' paths) |
# |---|---|---|
# | CLIP ViT-L/14-336 | Hugging Face `openai/clip-vit-large-patch14-336` | `/data/healthgpt/models/clip-vit-large-patch14-336/` |
# | Phi-3-mini (M3) | `microsoft/Phi-3-mini-4k-instruct` | `/data/healthgpt/models/Phi-3-mini-4k-instruct/` |
# | phi-4 (L14) | `microsoft/phi-4` | `/data/healthgpt/models/phi-4/` |
# | VQGAN f8-8192 | taming-transformers, "VQGAN OpenImages (f=8), 8192, GumbelQuantization" (`last.ckpt`) | `/data/healthgpt/models/vqgan_openimages_f8_8192/last.ckpt` |
# | VL-Health | the HealthGPT authors' release (LLaVA JSON + images) | `/data/healthgpt/vl-health/` |
#
# Hugging Face folders are read with `local_files_only=True` and never with `trust_remote_code`;
# the taming checkpoint is read with `torch.load(weights_only=True)` (or convert it once to
# safetensors). README "Full runs on GPUs" has the same list.
#
# ## Real data: a benchmark in its own format
#
# Real data sets arrive in their own formats. `data convert` turns VQA-RAD, SLAKE and PathVQA
# into the LLaVA records the whole project reads, keeping each data set's closed/open label
# (PathVQA has none: its closed questions are the yes/no ones). Here, a few questions about
# virtual patients written in VQA-RAD's own layout stand in for the download:

# %%
import json
import shutil

from healthgpt_lite.data.convert import convert_file
from healthgpt_lite.scale.stand_ins import write_benchmark_source, write_generation_records, write_stand_in_weights

demo = run.artifacts_dir / "scale_demo"
shutil.rmtree(demo, ignore_errors=True)  # a fresh demo each run
source, images = write_benchmark_source(demo / "vqa_rad", "vqa-rad", n_patients=4)
print("VQA-RAD row:", json.loads(source.read_text())[1])
print(convert_file(source, demo / "vqa_rad_all.json", "vqa-rad", image_root=images))
print("LLaVA record:", json.loads((demo / "vqa_rad_all.json").read_text())[1])

# %% [markdown]
# ## The same `fit`, on this laptop
#
# `configs/m3_stage1.yaml` itself, with four things swapped: the shapes (`tiny`), the weights
# (random stand-ins saved in the *real layouts*: a CLIP folder, a Phi3 folder, a taming VQGAN
# checkpoint), the data (the converted questions; CT→MRI pairs for generation) and the hardware
# (one CPU, fp32). Everything else (the LightningCLI wiring, weight loading with shape checks,
# images encoded inline by the frozen ViT, the stage table, saving the stage) is the cluster path.

# %%
from healthgpt_lite.scale.dry_run import laptop_fit_args, run_fit
from healthgpt_lite.training.trainer import plot_curves, read_metrics

stand_ins = write_stand_in_weights(cfg, demo / "models", seed=SEED)
records = {"comprehension": str(demo / "vqa_rad_all.json"), "generation": str(write_generation_records(demo / "vqa_rad"))}
steps = 2 if PROFILE == "smoke" else 40
started = time.time()
cli = run_fit(laptop_fit_args(CONFIG_DIR / "m3_stage1.yaml", "stage1_comprehension", stand_ins, records, images,
                              demo / "artifacts", steps=steps, log_dir=demo / "fit"), quiet=not run.progress)
print(f"{cli.trainer.global_step} steps in {time.time() - started:.1f} s; "
      f"ViT inline: {cli.model.model.vision is not None}; stage saved to {cli.trainer.default_root_dir}")
curves = read_metrics(demo / "fit")
plot_curves(curves, ["train/loss_comprehension"], title="stage 1 (comprehension) on stand-ins, through `fit`")

# %% [markdown]
# With random stand-in weights the adapter can only memorise eight answers, and in the `smoke`
# profile (2 steps) it has barely started: the point is that every piece of the full run
# executes. (The default `cpu` profile runs 40 steps.) What this run did, from its log:

# %%
loss = curves[["step", "train/loss_comprehension"]].dropna()
if len(loss) < 2:
    print(f"{len(loss)} logged loss value(s): too few to say whether it fell")
else:
    (s0, l0), (s1, l1) = loss.iloc[0], loss.iloc[-1]
    print(f"loss {l0:.3f} at step {int(s0)} -> {l1:.3f} at step {int(s1)}: "
          + ("it fell" if l1 < l0 else "it did not fall"))

# %% [markdown]
# ## Scoring a benchmark
#
# The benchmarks' headline is closed-question accuracy (docs/PAPERS.md §4: VQA-RAD 73.7 for M3);
# open questions get exact match and word recall. `benchmark` scores a converted test split,
# from a trained model or from a file of answers made elsewhere. Here: the model above (random
# stand-in weights, a few dozen steps at most), on the converted test split. Its numbers are
# those of a model that knows nothing medical (often an empty answer: it ends its turn at once);
# the mechanics are real.

# %%
from healthgpt_lite.eval.benchmarks import evaluate_benchmark, predict
from healthgpt_lite.model.inference import HealthGPTLite

convert_file(source, demo / "vqa_rad_test.json", "vqa-rad", split="test")
gpt = HealthGPTLite.from_config(cli.model.cfg, demo / "artifacts", stages=("stage1_comprehension",))  # the fit's config
test = json.loads((demo / "vqa_rad_test.json").read_text())
result = evaluate_benchmark(demo / "vqa_rad_test.json", predict(gpt, test, images), demo / "eval")
print({k: round(v, 2) for k, v in result["scores"].items() if "/" not in k})
pd.DataFrame(result["rows"])[["question", "answer", "prediction", "question_type"]]

# %% [markdown]
# ## The released HealthGPT weights
#
# The authors released H-LoRA files, not a model: `com_hlora_weights.bin` (comprehension, r·k = 64),
# `gen_hlora_weights.bin` (generation, r·k = 256) and `fusion_layer_weights.bin` (the stage-2
# embeddings and head) for M3, `com_hlora_weights_phi4.bin` for L14. `ReleasedHealthGPT` puts them
# into the same `HealthGPTModel` this course trains, with what the released model does
# differently (`healthgpt_lite/released/`):
#
# * **vocabulary**: only the 8195 image tokens are added, from `len(tokenizer)` on (Phi-3-mini:
#   32011 + 8195 = 40206 rows); `<image>` is the out-of-vocabulary id -200, so every image-token id
#   sits one place *earlier* than in our own models, which add `<image>` as a real token;
# * **template**: Phi-3's for M3, phi-4's own (`<|im_start|>`, `<|im_sep|>`, `<|im_end|>`) for L14,
#   with our system line instead of the released L14 role-play prompt;
# * **images**: padded to a square with CLIP's mean colour, then CLIP's own processor;
# * **weights**: read with `torch.load(weights_only=True)`, every key mapped strictly.
#
# No download is possible here, so tiny stand-ins are written in exactly the released layouts
# (a Phi3 folder with Phi-3's special tokens, a CLIP folder, a taming checkpoint, the `.bin` files
# under the upstream peft names). `tests/test_released.py` re-implements the released code path
# and checks that this model gives the same logits on them.

# %%
from healthgpt_lite.released import IMAGE_TOKEN_INDEX, ReleasedHealthGPT
from healthgpt_lite.released.stand_ins import write_released_stand_ins

dl = write_released_stand_ins(demo / "released", llm="phi3", seed=SEED)
print("H-LoRA file keys:", *list(torch.load(dl["com"], weights_only=True))[:3], "...", sep="\n  ")
m3_released = ReleasedHealthGPT.from_files(dl["llm"], dl["clip"], {"comprehension": dl["com"]}, overrides=dl["overrides"])
layer = m3_released.model.llm.model.layers[0].self_attn.qkv_proj
print("landed in:", type(layer).__name__, "with plugins", list(layer.plugins), "| scale", layer.plugins["comprehension"].scale)
block = m3_released.model.block
print(f"tokenizer entries {dl['tokenizer_entries']}; <start_index> = {block.start}, <idx_0> = {block.first_idx}; "
      f"embedding rows {m3_released.model.llm.get_input_embeddings().weight.shape[0]}")

# %% [markdown]
# The prompt, as token ids: the system turn, `<image>` as 16 slots of -200 (the visual tokens go
# there), the question, the assistant's turn.

# %%
scan = images / "synpic1001.jpg"
ids = m3_released.prompt_ids("Is there a lesion in this image?", with_image=True)
shown = [("<-200>" if i == IMAGE_TOKEN_INDEX else m3_released.tokenizer.convert_ids_to_tokens(i)) for i in ids.tolist()]
print(" ".join(shown))
print("answer (random stand-in weights, so random text):", repr(m3_released.answer(scan, "Is there a lesion?", max_new_tokens=8)))

# %% [markdown]
# Generation loads the generation plugin *and* the fusion layer (without it every `<idx_*>` row
# is the same mean row, so all image tokens tie). The image is decoded under the constraint of
# notebook 04 (exactly h·w image tokens), where the released script scrapes digits from free text.

# %%
m3_gen = ReleasedHealthGPT.from_files(dl["llm"], dl["clip"], {"generation": dl["gen"]}, fusion=dl["fusion"],
                                      vqgan=dl["vqgan"], overrides=dl["overrides"])
drawn = m3_gen.generate_image("Reconstruct the image.", image=scan)
print("generated:", drawn.size, drawn.mode)

# %% [markdown]
# A file that does not fit is refused whole, with every unmatched, missing or mis-shaped key
# (here: the generation file loaded as the comprehension plugin's, which has another rank):

# %%
from healthgpt_lite.errors import InputError
from healthgpt_lite.released.convert import ReleasedFile, load_released

try:
    load_released(m3_released.model, [ReleasedFile.read(dl["gen"], "comprehension")])
except InputError as e:
    print(str(e)[:900])

# %% [markdown]
# L14 is phi-4 with its own template (only a comprehension file was released):

# %%
l14_dl = write_released_stand_ins(demo / "released_l14", llm="phi4", seed=SEED)
l14 = ReleasedHealthGPT.from_files(l14_dl["llm"], l14_dl["clip"], {"comprehension": l14_dl["com"]},
                                   overrides=l14_dl["overrides"])
print(l14.template.prompt("Is there a lesion?", with_image=True))

# %% [markdown]
# With the real downloads the same runs from the command line (paths as in the download table):
#
# ```bash
# python -m healthgpt_lite answer scan.png "What modality is this?" --llm /data/healthgpt/models/Phi-3-mini-4k-instruct \
#     --clip /data/healthgpt/models/clip-vit-large-patch14-336 --hlora HealthGPT-M3/com_hlora_weights.bin --device cuda --dtype float16
# python -m healthgpt_lite generate "Reconstruct the image." --image scan.png --out recon.png --llm ... --clip ... \
#     --hlora HealthGPT-M3/gen_hlora_weights.bin --fusion HealthGPT-M3/fusion_layer_weights.bin \
#     --vqgan /data/healthgpt/models/vqgan_openimages_f8_8192/last.ckpt --device cuda --dtype float16
# ```
#
# What these stand-ins cannot check (README, "The released weights"): the real files' exact key
# prefix (both `base_model.model.` and none are accepted), Phi-3's and phi-4's real tokenizers on
# these prompts, and the numbers of the real 3.8B / 14B models.

# %% [markdown]
# ## Summary
#
# * On `meta`, the real presets build in about a second and count exactly: M3's comprehension
#   plugin + projector is 115.5M (released: ~115M), its generation plugin 404.9M (~405M).
# * Memory per GPU = weights + grads + optimizer states + buffers + activations; frozen weights
#   cost only their storage. M3 fits DDP on 80 GB GPUs; L14 needs FSDP + activation
#   checkpointing, except the stage whose row mask FSDP would bypass.
# * A generation sample is ~1.6k tokens (576 in, 1026 out), a comprehension sample ~0.7k.
# * Full runs are YAML files for the same LightningCLI `fit`; global batch = per GPU × GPUs ×
#   nodes × accumulation. Real data is LLaVA JSON, converted from each benchmark's own format.
# * The whole path (real-layout weights, converted data, inline encoders, the stage artifact,
#   benchmark scoring) runs here on stand-ins; only the GPUs and the downloads are missing.
# * The released weights load into the same model, strictly, with their own ids (`<image>` = -200,
#   image tokens from `len(tokenizer)`), template and preprocessing.
#
# ## Check your understanding
#
# 1. Why is `requires_grad` 664.5M for M3 stage-1 generation although only 467.8M weights move?
#
#    <details><summary>Answer</summary>
#
#    The row mask: the whole embedding and head, 2 × 40207 × 3072, get gradients and AdamW
#    states; only their 8195 image rows change.
#
#    </details>
#
# 2. Under FSDP, why does H-LoRA make the gradient memory of the *frozen* LLM appear?
#
#    <details><summary>Answer</summary>
#
#    A wrapped unit holding any trainable weight gets a gradient for its whole flat parameter.
#
#    </details>
#
# 3. Activation checkpointing trades what for what?
#
#    <details><summary>Answer</summary>
#
#    It keeps only each layer's input and recomputes the layer in backward: about one extra
#    forward of compute for activations that no longer grow with 24h + 8i per layer.
#
#    </details>
#
# 4. The L14 stage-3 config has 2 comprehension samples per GPU on 16 GPUs. What accumulation
#    gives the paper's 128?
#
#    <details><summary>Answer</summary>
#
#    128 / (2 × 16) = 4.
#
#    </details>
#
# 5. Which closed-question rule applies to PathVQA, and why not to VQA-RAD?
#
#    <details><summary>Answer</summary>
#
#    Yes/no answers: PathVQA has no answer-type label; VQA-RAD labels its own, including closed
#    "CT or MRI?" ones.
#
#    </details>
#
# 6. The released `<start_index>` is id 32011 on Phi-3-mini; in this project's own M3 it is
#    32012. Why, and what would break if the released fusion layer were loaded into our own M3?
#
#    <details><summary>Answer</summary>
#
#    Ours adds `<image>` as token 32011; the released model writes it as -200 outside the
#    vocabulary. Every image-token row would be read one row off, and the embedding has 40207
#    rows, not 40206: the strict loader refuses the file instead.
#
#    </details>
#
# **Exercises:** the course's exercises are listed in [exercises/README.md](../exercises/README.md);
# try changing `train.comp_batch_size` in `configs/m3_stage1.yaml` and predicting the memory
# column before running `python -m healthgpt_lite plan --config configs/m3_stage1.yaml`.
