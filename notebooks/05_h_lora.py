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
# # 05 · H-LoRA: a mixture of LoRA experts in two matmuls, one plugin per task
#
# **Learning objectives.** After this notebook you can
# 1. write LoRA, MoELoRA and H-LoRA as formulas and point at the line of code for each term;
# 2. explain why `repeat_interleave` of the router weights turns a *loop over k experts* into
#    *one* pair of matmuls with exactly the same result, and check it numerically;
# 3. put one plugin per task into every linear layer of a Phi3 LLM, switch tasks in place, and
#    show that the switch is exact and that gradients reach only the active plugin;
# 4. read a router heat map (which expert each token uses);
# 5. count a plugin's trainable weights for the tiny and the real HealthGPT-M3 shapes without
#    allocating them, and measure what the fused form buys in training speed and memory.
#
# HealthGPT adapts a frozen LLM with **H-LoRA** (paper, "Heterogeneous Knowledge Adaptation"; docs/PAPERS.md §2): in every linear
# layer, each task (comprehension, generation) owns a *plugin* of k low-rank experts mixed per
# token by a router, and the task type picks the plugin: a hard switch, because training one
# adapter on both tasks makes each task hurt the other.

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
run

# %% [markdown]
# **Machine note.** This notebook times small matrix products, so the machine matters. It runs
# torch on one thread: on the 2-core machine this course was written on, shared with other
# jobs, two torch threads fighting other processes for the cores made every step 10-30x slower
# (a measurement there, not here); one thread is steady. The machine you are on:

# %%
import os

import torch

print(f"{os.cpu_count()} CPU cores, torch used {torch.get_num_threads()} threads by default; load average "
      f"{os.getloadavg()[0]:.1f}; accelerator: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
torch.set_num_threads(1)

# %% [markdown]
# ## From LoRA to MoELoRA to H-LoRA
#
# A frozen linear layer computes $y = W_0 x$ with $W_0 \in \mathbb{R}^{d_{out} \times d_{in}}$.
#
# **LoRA** learns a low-rank update: $y = W_0 x + s\,B A x$ with $A \in \mathbb{R}^{R \times d_{in}}$,
# $B \in \mathbb{R}^{d_{out} \times R}$, $B$ initialised to zero (so training starts from the
# base model) and scale $s = \alpha / R$.
#
# **MoELoRA** keeps $k$ small LoRA *experts* $(A_i, B_i)$ of rank $r$ and a router
# $R_{\text{route}} \in \mathbb{R}^{k \times d_{in}}$ that mixes them per token:
#
# $$w(x) = \operatorname{softmax}(R_{\text{route}}\,x) \in \mathbb{R}^k, \qquad
#   y = W_0 x + s \sum_{i=1}^{k} w_i(x)\, B_i A_i x .$$
#
# Computed as written, that is a loop: $2k$ small matmuls per layer and token batch.
#
# **H-LoRA** stores the experts *fused*: $A = [A_1; \dots; A_k]$ (stacked rows,
# $rk \times d_{in}$) and $B = [B_1, \dots, B_k]$ (side-by-side columns, $d_{out} \times rk$).
# Repeat each router weight $r$ times, $w_{\text{exp}} = (w_1, \dots, w_1, \; \dots, \; w_k, \dots, w_k)$
# (that is `repeat_interleave(w, r)`), and
#
# $$B\,(w_{\text{exp}} \odot A x) \;=\; \sum_{i=1}^{k} B_i\,(w_i\, A_i x) \;=\; \sum_{i=1}^{k} w_i(x)\, B_i A_i x .$$
#
# The first equality is just block matrix multiplication: rank columns $[ir, (i+1)r)$ of $B$
# meet rows $[ir, (i+1)r)$ of $A x$, and all of them are scaled by the same $w_i$. So the
# mixture costs two matmuls, like LoRA. Released sizes use $\alpha = 2rk$, so $s = \alpha / r$.
# Where $s$ is multiplied does not change the function; the code below folds it into the $k$
# router weights, as the paper's Eq. 9 does, because that is the narrowest tensor to multiply.
#
# The code of one fused plugin (`healthgpt_lite/lora/hlora.py`), term by term:

# %%
import inspect

from healthgpt_lite.lora import HLoRAPlugin, MoELoRAPlugin

print(inspect.getsource(HLoRAPlugin.forward))
print(inspect.getsource(MoELoRAPlugin.forward))

# %% [markdown]
# ## The equivalence, numerically
#
# Build an H-LoRA layer with random weights (B too, so the update is not zero), then a MoELoRA
# layer with the *same* weights cut into expert blocks (`MoELoRALinear.from_hlora`), in float64.

# %%
from torch import nn

from healthgpt_lite.config import PluginConfig
from healthgpt_lite.lora import HLoRALinear, MoELoRALinear

torch.manual_seed(run.cfg.seed)
fused = HLoRALinear(nn.Linear(48, 32, dtype=torch.float64), {"demo": PluginConfig(rank=16, experts=4, alpha=32.0)})
with torch.no_grad():
    for p in fused.plugins.parameters():
        p.normal_()
loop = MoELoRALinear.from_hlora(fused)
fused.eval(), loop.eval()  # no dropout: compare functions, not random masks

x = torch.randn(2, 10, 48, dtype=torch.float64)  # (B, T, d_in)
print("max |H-LoRA - MoELoRA|      :", (fused(x) - loop(x)).abs().max().item())
print("size of the update |B(...)| :", (fused(x) - fused.base(x)).abs().max().item())

# %% [markdown]
# The difference is at the level of float64 rounding while the update itself is large. Why
# `repeat_interleave` and not `repeat`? `repeat` gives $(w_1, \dots, w_k, w_1, \dots, w_k, \dots)$,
# so rank column $j$ gets the weight of expert $j \bmod k$ instead of $\lfloor j / r \rfloor$:

# %%
w = torch.tensor([0.1, 0.2, 0.7])
print("repeat_interleave:", w.repeat_interleave(2).tolist())
print("repeat           :", w.repeat(2).tolist())

p = fused.plugins["demo"]
wrong = fused.base(x) + p.B(p.router(x).softmax(-1).repeat(1, 1, p.rank_per_expert) * p.A(x)) * p.scale
print("max |wrong fused - MoELoRA| :", (wrong - loop(x)).abs().max().item())

# %% [markdown]
# With one expert the router's softmax is 1 everywhere and H-LoRA *is* LoRA. peft's LoRA with
# the same A, B and scale gives the same output (the tests check this to 1e-10).

# %%
from peft import LoraConfig, inject_adapter_in_model

one = HLoRALinear(nn.Linear(48, 32, dtype=torch.float64), {"demo": PluginConfig(rank=8, experts=1, alpha=16.0)}).eval()
with torch.no_grad():
    one.plugins["demo"].B.weight.normal_()
holder = nn.Sequential()
holder.add_module("proj", one.base)
inject_adapter_in_model(LoraConfig(r=8, lora_alpha=16.0, target_modules=["proj"]), holder)
with torch.no_grad():
    holder.proj.lora_A["default"].weight.copy_(one.plugins["demo"].A.weight)
    holder.proj.lora_B["default"].weight.copy_(one.plugins["demo"].B.weight)
print("max |H-LoRA(k=1) - peft LoRA|:", (one(x) - holder.eval()(x)).abs().max().item())

# %% [markdown]
# ### Two scales: peft's alpha / R, H-LoRA's alpha / r
#
# With k > 1 the conventions part. peft's LoRA of total rank $R$ scales its update by
# $\alpha / R$; H-LoRA (and MoELoRA), as released, scale each expert by $\alpha / r$ with
# $r = R / k$: a nominal scale **k times** peft's at the same $\alpha$ (4× at k = 4). What a token
# actually gets is $s\,w_i(x)$ in front of expert $i$. The router's weights sum to 1, so averaged
# over the experts that factor is $s / k = \alpha / R$, LoRA's; for a token routed entirely to
# one expert it is $\alpha / r$, k× LoRA's. Adam moves every weight by about the learning rate
# whatever the gradient's size, so a step changes a token's output in proportion to that factor:
# at the same $\alpha$ and learning rate, a mixture can move a sharply routed token up to k times
# as far per step as peft's LoRA. The course's configs, and the demo layer above:

# %%
import pandas as pd

rows = []
for task in ("comprehension", "generation"):
    pc = getattr(run.cfg.lora, task)
    rows.append({"plugin": task, "R = r*k": pc.rank, "k": pc.experts, "r": pc.rank_per_expert, "alpha": pc.alpha,
                 "peft LoRA: alpha/R": pc.alpha / pc.rank, "H-LoRA: alpha/r": pc.scale,
                 "ratio": pc.scale / (pc.alpha / pc.rank)})
display(pd.DataFrame(rows).set_index("plugin"))

plugin = fused.plugins["demo"]
with torch.no_grad():
    w_demo = plugin.router_weights(x)  # (B, T, k) of the demo layer (its random router)
k = plugin.experts
factor = w_demo.amax(-1) * plugin.scale / (plugin.scale / k)  # largest s*w_i per token / peft's alpha/R
print(f"demo layer (k={k}): the largest s*w_i of a token is {factor.mean():.2f}x peft's alpha/R on average "
      f"(range {factor.min():.2f}-{factor.max():.2f}x; 1x = uniform routing, {k}x = one expert)")

# %% [markdown]
# ## Task plugins in a tiny Phi3
#
# `inject_hlora` wraps every `nn.Linear` of the LLM except `lm_head`: in Phi3 that is
# `qkv_proj`, `o_proj`, `gate_up_proj` and `down_proj` in every decoder layer. Each wrapped layer
# holds one plugin per task (`cfg.lora.comprehension`, `cfg.lora.generation`). The whole model is
# frozen first, so afterwards only plugin weights train. (The unified HealthGPT model of
# notebook 06 builds its Phi3 and injects its plugins the same way.)

# %%
from healthgpt_lite.model.llm import build_llm
from healthgpt_lite.data import load_tokenizer
from healthgpt_lite.lora import (count_plugin_parameters, inject_hlora, plugin_parameters, set_task,
                                 wrapped_layers)

tok = load_tokenizer()
torch.manual_seed(run.cfg.seed)
llm = build_llm(run.cfg.llm, len(tok))
n_base = sum(p.numel() for p in llm.parameters())
plugins = {"comprehension": run.cfg.lora.comprehension, "generation": run.cfg.lora.generation}
inject_hlora(llm, plugins, kind=run.cfg.lora.kind)

print(llm.model.layers[0].self_attn)
print("wrapped layers:", len(wrapped_layers(llm)), "| lm_head:", type(llm.lm_head).__name__)
for task, cfg in plugins.items():
    print(f"{task:>13}: r*k = {cfg.rank}, k = {cfg.experts}, scale = {cfg.scale:g}, "
          f"{count_plugin_parameters(llm, task):,} weights ({count_plugin_parameters(llm, task) / n_base:.1%} of the LLM)")

# %% [markdown]
# ## Train the comprehension plugin a little (a toy objective)
#
# Real training comes in the stage notebooks. Here, to give the router something to learn, the
# comprehension plugin alone is trained for a few dozen steps on next-token prediction of the
# English questions and answers of the committed sample. The router's first snapshot is taken
# before training, on the question we will look at.

# %%
from pathlib import Path

from healthgpt_lite.data import load_records
from healthgpt_lite.data.text_tokenizer import DEFAULT_TOKENIZER_DIR
from healthgpt_lite.lora import recorded_router_weights

sample_dir = Path(DEFAULT_TOKENIZER_DIR).parent / "vl_health_lite"
def qa_texts(split):
    return [r["conversations"][0]["value"].replace("<image>\n", "") + " " + r["conversations"][1]["value"]
            for r in load_records(sample_dir / f"{split}.json") if r["lang"] == "en" and r["task_type"] == "comprehension"]

def batch_of(texts):
    b = tok(texts, padding=True, return_tensors="pt")
    return b["input_ids"], b["attention_mask"], b["input_ids"].masked_fill(b["attention_mask"] == 0, -100)

train_ids, train_mask, train_labels = batch_of(qa_texts("train"))
val_ids, val_mask, val_labels = batch_of(qa_texts("val"))
question = "Is there a lesion in the left lung?"
q_ids = tok(question, return_tensors="pt")["input_ids"]  # (1, T)
q_tokens = [tok.decode([i]) for i in q_ids[0]]

def snapshot_router():
    llm.eval()
    with torch.no_grad(), recorded_router_weights(llm) as weights:  # forward hooks on the routers
        llm(input_ids=q_ids)
    return {name: w[0].clone() for name, w in weights.items()}  # (T, k) per layer

def val_loss():
    llm.eval()
    with torch.no_grad():
        return llm(input_ids=val_ids, attention_mask=val_mask, labels=val_labels).loss.item()

set_task(llm, "comprehension")
router_before = snapshot_router()
print(f"{len(train_ids)} training texts of up to {train_ids.shape[1]} tokens; val loss before: {val_loss():.3f}")

# %%
STEPS, BATCH = 40, 16
optimizer = torch.optim.AdamW(plugin_parameters(llm, "comprehension").values(), lr=3e-3)
g = torch.Generator().manual_seed(run.cfg.seed)
losses = []
llm.train()
for step in range(STEPS):
    i = torch.randint(0, len(train_ids), (BATCH,), generator=g)
    loss = llm(input_ids=train_ids[i], attention_mask=train_mask[i], labels=train_labels[i]).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    losses.append(loss.item())
print(f"train loss: first {losses[0]:.3f}, last 5 steps {sum(losses[-5:]) / 5:.3f}")

# %% [markdown]
# ## The switch is in place, and exact
#
# The validation loss under each setting: only the comprehension plugin was trained, so the
# generation plugin (still fresh, B = 0) gives exactly the base model's loss, and switching back
# to comprehension gives exactly the trained loss again: no weights were copied or reloaded.

# %%
import pandas as pd

comp_logits = llm.eval()(input_ids=val_ids[:4]).logits.detach()
rows = []
for task in ("comprehension", "generation", None, "comprehension"):
    set_task(llm, task)
    rows.append({"active plugin": task or "none (base model)", "val loss": round(val_loss(), 4)})
print("comprehension logits identical after switching back:",
      torch.equal(llm(input_ids=val_ids[:4]).logits.detach(), comp_logits))
pd.DataFrame(rows)

# %% [markdown]
# Gradients reach only the active plugin: the inactive one is not even in the graph.

# %%
set_task(llm, "generation")
llm.train()
llm(input_ids=train_ids[:4], attention_mask=train_mask[:4], labels=train_labels[:4]).loss.backward()
for task in plugins:
    grads = [p.grad for p in plugin_parameters(llm, task).values()]
    print(f"{task:>13}: {sum(g is not None for g in grads)} of {len(grads)} weight tensors got a gradient")
llm.zero_grad(set_to_none=True)
set_task(llm, "comprehension")

# %% [markdown]
# ## Which expert does each token use?
#
# The router weights $w(x)$ of the comprehension plugin for each token of one question, in
# the first and the last decoder layer, before and after the toy training. Each column sums to 1.
# At initialisation the random router already prefers different experts for different tokens
# (while every expert is still zero: B = 0, so the router gets no gradient until B moves).
# Training then moves the routers, some layers more than others; the printed numbers say how
# much. With dense softmax routing every expert keeps some weight for every token.

# %%
from healthgpt_lite.viz.hlora_plots import router_heatmap

last = run.cfg.llm.num_layers - 1
router_after = snapshot_router()
show = {}
for layer in (0, last):
    name = f"model.layers.{layer}.self_attn.qkv_proj"
    show[f"L{layer} qkv, init"] = router_before[name]
    show[f"L{layer} qkv, trained"] = router_after[name]
for layer in (0, last):
    name = f"model.layers.{layer}.self_attn.qkv_proj"
    moved = (router_after[name] - router_before[name]).abs().sum(-1).mean().item() / 2  # total variation
    print(f"layer {layer}: on average {moved:.0%} of a token's routing mass moved to other experts")
router_heatmap(show, q_tokens, title=f"comprehension plugin router weights: {question!r}")

# %% [markdown]
# ## How big is a plugin? Counting without allocating
#
# Per wrapped layer a plugin holds $rk\,(d_{in} + d_{out}) + k\,d_{in}$ weights (A, B, router).
# For the real HealthGPT-M3 shapes (Phi-3-mini: 32 layers, hidden 3072; comprehension
# $rk = 64$, generation $rk = 256$, $k = 4$) we build the model on PyTorch's `meta` device:
# every tensor has a shape but no storage, so a 3.8B-parameter model costs no memory.

# %%
from healthgpt_lite.config import build_config

rows = []
for preset in ("tiny", "m3"):
    cfg = build_config(preset, run.cfg.profile)
    with torch.device("meta"):
        shell = build_llm(cfg.llm, len(tok) if preset == "tiny" else 32064)  # Phi-3-mini's vocabulary
        base_params = sum(p.numel() for p in shell.parameters())
        inject_hlora(shell, {"comprehension": cfg.lora.comprehension, "generation": cfg.lora.generation})
    for task in ("comprehension", "generation"):
        pc = getattr(cfg.lora, task)
        n = count_plugin_parameters(shell, task)
        rows.append({"preset": preset, "plugin": task, "r*k": pc.rank, "k": pc.experts, "alpha": pc.alpha,
                     "trainable weights": f"{n:,}", "of the LLM": f"{n / base_params:.2%}",
                     "fp32 MB": round(4 * n / 2**20, 1)})
    print(f"{preset}: LLM {base_params:,} weights, {len(wrapped_layers(shell))} wrapped layers, "
          f"device {next(shell.parameters()).device}")
pd.DataFrame(rows)

# %% [markdown]
# ## What the fused form buys: the benchmark
#
# `python -m healthgpt_lite bench hlora` times a full training step (forward, backward, AdamW on
# the adapter) for plain LoRA (peft), MoELoRA and H-LoRA at k = 2, 4, 8 with the **same total
# rank**, variants interleaved after warm-up, medians; and the memory one step allocates beyond
# what was live before it (activations kept for backward, gradients, temporaries). The `smoke`
# profile runs a quick version on the tiny LLM; `cpu` adds a wider one (hidden 1024). The result
# is cached in `ARTIFACTS_DIR` (delete the folder to measure again).
#
# Paper (M3 on GPUs): MoELoRA/LoRA = 1.22x / 1.49x / 2.09x at 2 / 4 / 8 experts, H-LoRA ~1.00x.

# %%
import io

from healthgpt_lite.artifacts import atomic_write_bytes, load_or_make
from healthgpt_lite.bench.plugin_speed import bench_hlora, format_table


def measure(path):
    df = bench_hlora(run.cfg, log=lambda msg: None)
    atomic_write_bytes(path / "bench_hlora.csv", df.to_csv(index=False).encode())
    return {"threads": run.cfg.bench.threads}


bench_dir = load_or_make(run.cfg, "bench_hlora", ("bench", "llm"), measure, run.artifacts_dir)
bench = pd.read_csv(bench_dir / "bench_hlora.csv")
print(format_table(bench))

# %%
from healthgpt_lite.viz.hlora_plots import bench_figure

bench_figure(bench)

# %% [markdown]
# **Machine note.** Times depend on the machine that measured them: its cores, its threads, how
# busy it was. This is the machine running the notebook now (the table is cached in
# `bench_dir`: if it was measured elsewhere or under other load, delete that folder and re-run):

# %%
import os

from healthgpt_lite.course.notebook import environment_report

env = environment_report()
print(f"device: {env['cuda']}; {os.cpu_count()} CPU cores, torch {env['torch']} with {env['cpu threads']} threads, "
      f"bench.threads = {run.cfg.bench.threads}; load average now {os.getloadavg()[0]:.1f}; "
      f"benchmark folder {bench_dir.name}")

# %% [markdown]
# What this table says, computed from it (the Summary's finding on speed and memory):

# %%
for size, d in bench.groupby("size", sort=False):
    h, m = d[d.kind == "hlora"].sort_values("experts"), d[d.kind == "moelora"].sort_values("experts")
    ks = "/".join(str(k) for k in h.experts)
    print(f"{size} (hidden {d.hidden.iloc[0]}), k = {ks}: time vs LoRA: H-LoRA "
          + " / ".join(f"{t:.2f}x" for t in h.time_vs_lora) + ", MoELoRA " + " / ".join(f"{t:.2f}x" for t in m.time_vs_lora)
          + "; step memory vs LoRA: H-LoRA " + " / ".join(f"{t:.2f}x" for t in h.memory_vs_lora)
          + ", MoELoRA " + " / ".join(f"{t:.2f}x" for t in m.memory_vs_lora))
    flat = h.time_vs_lora.max() < 1.15
    grows = bool((m.time_vs_lora.diff().dropna() > 0).all())
    print(f"  -> H-LoRA {'stays within 15% of LoRA at every k' if flat else 'is more than 15% slower than LoRA at some k'}; "
          f"MoELoRA {'gets slower as k grows' if grows else 'does not get steadily slower with k here'}; "
          f"H-LoRA {'is faster than' if (h.time_vs_lora.values < m.time_vs_lora.values).all() else 'is not always faster than'} MoELoRA")

# %% [markdown]
# Read the table by columns. `time_vs_lora`: the fused H-LoRA stays close to LoRA at every k
# (it adds only a k-wide router matmul, a softmax and one elementwise product), while the
# MoELoRA loop grows with k: 2k small matmuls and k full-size `(B, T, d_out)` partial outputs
# that are scaled and summed. `step_peak_mb`: the loop also *keeps* those k partial results for
# the backward pass, so its step memory grows with k; H-LoRA's stays at LoRA's, or below it:
# peft's LoRA applies dropout to the input $x$ and keeps a `(B, T, d_in)` tensor per layer for
# backward, H-LoRA applies it to $Ax$, only `(B, T, r*k)`. MoELoRA and H-LoRA hold exactly the
# same weights (`adapter_params`). Timings on a shared CPU are noisy (a few percent between runs;
# the smoke run is shorter and noisier), and on a CPU the large base matmuls dominate each step
# while on a GPU many small kernels cost relatively more, so the ratios differ from the paper's;
# the trend with k is the point.
#
# ## Summary
#
# * LoRA adds $sBAx$; MoELoRA mixes k LoRA experts per token with a softmax router; H-LoRA
#   stores the experts fused and multiplies each rank column by its expert's weight
#   (`repeat_interleave(w, r)`), which computes the same mixture in two matmuls.
# * Each task owns a plugin in every linear layer but `lm_head`; `set_task` switches them in
#   place, exactly, and only the active plugin receives gradients.
# * A fresh plugin is a no-op (B = 0). Plugin size per layer is $rk(d_{in}+d_{out}) + k\,d_{in}$;
#   the `meta` device counts the M3 shapes without allocating them.
# * The benchmark times H-LoRA, MoELoRA and LoRA at the same total rank; the cell after it says,
#   from this run's table, whether H-LoRA keeps LoRA's speed at every k and the MoELoRA loop
#   slows with k (the paper's claim), and on which machine it was measured.
# * peft's LoRA scales by $\alpha / R$, H-LoRA by $\alpha / r$ (k× at the same $\alpha$): the same
#   mixture can move a sharply routed token up to k times as far per step, which matters when
#   comparing them at equal $\alpha$ and learning rate (notebook 10).
#
# ## Check your understanding
#
# 1. Why does `repeat` instead of `repeat_interleave` give a *different* function, and which
#    expert's weight would rank column j get?
#
#    <details><summary>Answer</summary>
#
#    The equivalence section.
#
#    </details>
#
# 2. Right after `inject_hlora`, why does the model's output equal the base model's, and why
#    does the router get no gradient in the very first step?
#
#    <details><summary>Answer</summary>
#
#    B = 0: the update and its gradient with respect to A and the router both carry a factor B.
#
#    </details>
#
# 3. Why is the task switch a plain attribute and not a learned router over tasks? What would
#    training one shared plugin on both tasks risk?
#
#    <details><summary>Answer</summary>
#
#    the paper's Introduction (Figure 2); docs/PAPERS.md §2 and §4.
#
#    </details>
#
# 4. Why does MoELoRA's step memory grow with k while H-LoRA's does not?
#
#    <details><summary>Answer</summary>
#
#    The benchmark discussion: k partial outputs kept for backward.
#
#    </details>
#
# 5. How many trainable weights does the M3 generation plugin have, and what fraction of
#    Phi-3-mini is that?
#
#    <details><summary>Answer</summary>
#
#    The counting table.
#
#    </details>
#
# **Exercise:** [`exercises/03_hlora_forward`](../exercises/03_hlora_forward/student.ipynb) asks
# you to write the fused H-LoRA forward yourself and checks it against `HLoRAPlugin` and the
# MoELoRA loop; all exercises: [`exercises/README.md`](../exercises/README.md).
