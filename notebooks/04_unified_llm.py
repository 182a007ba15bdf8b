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
# # 04 · One LLM for both tasks: unified vocabulary, multimodal sequences, constrained decoding
#
# **Learning objectives.** After this notebook you can
# 1. explain how an LLM that only reads text learns to *write images*: every VQ code becomes a
#    new word `<idx_k>`, and the new rows of the embedding and the head start at the mean of the
#    old ones (and why that creates a pitfall);
# 2. build a training sequence: the Phi-3 chat template, `<image>` replaced by visual tokens,
#    labels only on the response, a generation target of `<start_index>` + h·w codes + `<end_index>`;
# 3. say what is cut when a prompt is too long (the text, never the image);
# 4. constrain decoding so that *every* generation decodes to an image, instead of scraping
#    digits out of free text as the released code does.
#
# docs/PAPERS.md §1 and §6; HealthGPT paper, "Unified Autoregressive Generation".

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
# ## The LLM: a Phi-3, small
#
# HealthGPT-M3 uses Phi-3-mini (3.8B parameters, 32 layers, hidden 3072); L14 uses phi-4. Both
# are the same `Phi3ForCausalLM` architecture in transformers, so the `tiny` preset builds the
# very same class from a config, 4 layers and hidden 128. Its vocabulary is the *text* part of
# our tokenizer: everything before `<start_index>`.

# %%
import torch

from healthgpt_lite.data import image_token_ids
from healthgpt_lite.data.text_tokenizer import tokenizer_for
from healthgpt_lite.model.llm import build_llm

tok = tokenizer_for(cfg)
block = image_token_ids(tok)
llm = build_llm(cfg.llm, vocab_size=block.start, pad_token_id=tok.pad_token_id)
n_params = sum(p.numel() for p in llm.parameters())
print(f"text vocabulary: {block.start} tokens; LLM parameters: {n_params / 1e6:.2f} M")
print(f"image-token block: ids {block.start}..{block.end + 1} ({block.n_codes} codes + start, end, pixel_newline)")

# %% [markdown]
# ## First the LLM needs a language
#
# Phi-3 was pretrained on trillions of tokens; a random 1M-parameter model knows nothing, and
# HealthGPT's first stage *freezes* the LLM. So the tiny preset first learns the language of
# our corpus: causal language modelling on the train split's questions, answers and reports
# (English and Chinese), **no images**. It can learn the answer *formats* and the majority
# answers (notebook 01's baseline), never what an image shows. Load-or-train: the artifact is
# reused by every later notebook.

# %%
from healthgpt_lite.data import ensure_dataset
from healthgpt_lite.training.llm_pretrain import ensure_llm_lite, load_base_llm
from healthgpt_lite.training.trainer import plot_curves, read_metrics

data_dir = ensure_dataset(run.data_dir, cfg.data)
llm_dir = ensure_llm_lite(cfg, run.artifacts_dir, data_dir, progress=run.progress)
plot_curves(read_metrics(llm_dir), ["train/loss", "val/loss"], title="LLM-lite: causal LM on the text corpus", logy=True)

# %% [markdown]
# What has it learned? Greedy continuations of a few prompts, with no image at all: it knows
# the format of an answer, and it answers every image the same way, because it has never seen one.

# %%
from healthgpt_lite.model.multimodal import encode_example, user_text

base = load_base_llm(cfg, run.artifacts_dir).eval()
for q in ["How many lesions are there?", "What imaging modality was used for this image?", "最大的病灶位于哪里？"]:
    # the same chat-template prompt the model is trained on (no image: no <image> slots)
    ids = encode_example(tok, user_text(q, False), 0, cfg.llm.max_position_embeddings)["input_ids"][None]
    out = base.generate(ids, max_new_tokens=20, do_sample=False, pad_token_id=tok.pad_token_id,
                        eos_token_id=tok.convert_tokens_to_ids("<|end|>"))
    print(f"{q!r:55} -> {tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)!r}")

# %% [markdown]
# ## New words for image codes, initialised at the mean
#
# `extend_vocabulary` appends one row per new token to the input embeddings **and** to the
# output head, each equal to the mean of the old rows (docs/PAPERS.md §1). Let us look at the
# consequence: for any input, *every* `<idx_k>` gets exactly the same logit.

# %%
from healthgpt_lite.model.vocab import extend_vocabulary

extend_vocabulary(base, len(tok), first_new_id=block.start)
emb = base.get_input_embeddings().weight
print("embedding rows:", emb.shape[0], "| new rows identical:", bool(torch.equal(emb[block.first_idx], emb[block.first_idx + 99])))
with torch.no_grad():
    logits = base(encode_example(tok, user_text("hello", False), 0, cfg.llm.max_position_embeddings)["input_ids"][None]).logits[0, -1]
image_logits = logits[block.first_idx:block.first_idx + block.n_codes]
print(f"spread of the {block.n_codes} image-token logits: {float(image_logits.max() - image_logits.min()):.2e}")

# %% [markdown]
# That spread is zero: until the new rows *learn*, the model cannot prefer one code over
# another, and the gradient that would separate them only flows into rows that are trainable.
# HealthGPT trains embeddings and head in stage 2; we also let stage-1 generation train the new
# image rows (notebook 06 explains the choice, `training/stages.py` states it).
#
# ## A training sequence, token by token
#
# The Phi-3 chat template wraps the question; `<image>` is expanded into N slots (N = visual
# tokens of the ViT, 64 here) that the adapter's outputs will fill; the labels are `-100`
# (ignored) everywhere except the response.

# %%
from healthgpt_lite.model.multimodal import IGNORE_INDEX, encode_example, user_text

example = encode_example(tok, user_text("How many lesions are there?", True), cfg.vision.num_tokens,
                         cfg.llm.max_position_embeddings, answer="2")
ids, labels = example["input_ids"], example["labels"]
pieces = tok.convert_ids_to_tokens(ids.tolist())
print(f"{len(ids)} tokens, of which {int((labels != IGNORE_INDEX).sum())} are supervised")
print("first 12:", pieces[:12])
print("last 12: ", pieces[-12:])
print("supervised:", tok.decode(labels[labels != IGNORE_INDEX]))

# %% [markdown]
# A picture of the same sequence, and of a generation example whose response is
# `<start_index>` + h·w image tokens + `<end_index>` (h·w = `cfg.vq.num_tokens`; printed below):

# %%
import numpy as np
from matplotlib.figure import Figure

from healthgpt_lite.model.multimodal import SequenceLayout


def token_kinds(ids: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    layout = SequenceLayout.from_tokenizer(tok)
    kind = np.zeros(len(ids))  # 0 = prompt text
    kind[(ids == layout.image).numpy()] = 1  # visual slots
    kind[(labels != IGNORE_INDEX).numpy()] = 2  # supervised text
    kind[((ids >= block.first_idx) & (ids < block.first_idx + block.n_codes)).numpy()] = 3  # image codes
    return kind


codes = torch.randint(0, block.n_codes, (cfg.vq.grid_size, cfg.vq.grid_size))
gen_example = encode_example(tok, user_text("Convert this CT image into an MRI image.", True), cfg.vision.num_tokens,
                             cfg.llm.max_position_embeddings, image_codes=codes, generation=True)
print(f"h·w = {cfg.vq.grid_size}×{cfg.vq.grid_size} = {cfg.vq.num_tokens} image tokens in this profile")
import matplotlib
from matplotlib.patches import Patch

KINDS = ["prompt text", "visual slots (<image>)", "supervised text", "supervised image codes"]
cmap = matplotlib.colormaps["Set2"]
fig = Figure(figsize=(10, 2.4))
for row, (name, e) in enumerate([("VQA", example), ("CT->MRI", gen_example)]):
    ax = fig.add_subplot(2, 1, row + 1)
    ax.imshow(token_kinds(e["input_ids"], e["labels"])[None], aspect="auto", cmap=cmap, vmin=0, vmax=7,
              interpolation="nearest")
    ax.set_yticks([0], [f"{name} ({len(e['input_ids'])} tok)"]), ax.set_xlim(0, len(gen_example["input_ids"]))
    ax.set_ylabel("example", fontsize=8)
ax.set_xlabel("token position in the sequence")
fig.legend(handles=[Patch(color=cmap(k / 7), label=label) for k, label in enumerate(KINDS)],
           loc="upper center", ncol=4, fontsize=8, frameon=False)
fig.tight_layout(rect=(0, 0, 1, 0.85))
fig

# %% [markdown]
# ## Too long? Cut the text, never the image
#
# A context window is finite. If a prompt does not fit, `encode_example` cuts the question's
# text; the visual tokens and the response are never cut (cutting image tokens would silently
# train on a different image). If even they cannot fit, it says so.

# %%
from healthgpt_lite.errors import InputError

long_question = "Please look very carefully at every organ in this scan. " * 80
cut = encode_example(tok, user_text(long_question, True), cfg.vision.num_tokens, 200, answer="2")
print("fits in 200:", len(cut["input_ids"]), "tokens; visual slots kept:",
      int((cut["input_ids"] == SequenceLayout.from_tokenizer(tok).image).sum()))
try:
    encode_example(tok, user_text("q", True), cfg.vision.num_tokens, 300, image_codes=codes, generation=True)
except InputError as e:
    print("InputError:", e)

# %% [markdown]
# The token budget of each preset: the real M3 spends 576 visual tokens and 1024 image tokens,
# so a CT->MRI example is about 1650 tokens of Phi-3's 4096.

# %%
import pandas as pd

from healthgpt_lite.config import PRESETS, build_config

pd.DataFrame([{"preset": p, "visual tokens": c.vision.num_tokens, "image tokens (+2)": c.vq.num_tokens + 2,
               "context": c.llm.max_position_embeddings}
              for p in PRESETS for c in [build_config(p, "smoke")]]).set_index("preset")

# %% [markdown]
# ## Splicing: the visual tokens go into the slots
#
# At forward time the N `<image>` slots get the projected visual tokens, in order
# (`splice_visual_tokens`, LLaVA's trick). Here with the real (frozen) vision encoder of
# notebook 02 and a fresh generation adapter:

# %%
from healthgpt_lite.data import load_image
from healthgpt_lite.model.multimodal import splice_visual_tokens
from healthgpt_lite.vision import ensure_clip_lite, load_vision_encoder, make_adapters

ensure_clip_lite(cfg, run.artifacts_dir, data_dir, progress=run.progress)
encoder, adapters = load_vision_encoder(cfg, run.artifacts_dir), make_adapters(cfg)
pixels = load_image(data_dir / "images/p00003_ct.png", size=cfg.vision.image_size)[None]
ids = gen_example["input_ids"][None]
with torch.no_grad():
    visual = adapters["generation"](encoder(pixels, "generation"))  # (1, N, d)
    embeds = splice_visual_tokens(base.get_input_embeddings()(ids), ids, visual, SequenceLayout.from_tokenizer(tok).image)
print("visual tokens:", tuple(visual.shape), "-> sequence embeddings:", tuple(embeds.shape))

# %% [markdown]
# ## Constrained decoding: every generation is an image
#
# The released HealthGPT lets the LLM write free text and scrapes digits out of it to rebuild
# the 1024 indices (M3's 32×32 grid): a single stray digit shifts the whole image. Instead, a `LogitsProcessor`
# masks the logits: after `<start_index>` only `<idx_*>` may follow, for exactly h·w steps, then
# `<end_index>`. Even this untrained model therefore produces a decodable grid. Without the
# constraint it writes whatever text its language prior suggests.

# %%
from transformers import LogitsProcessorList

from healthgpt_lite.model.decoding import ImageTokenConstraint, codes_from_tokens

prompt = encode_example(tok, user_text("Convert this CT image into an MRI image.", True), cfg.vision.num_tokens,
                        cfg.llm.max_position_embeddings, generation=True)["input_ids"][None]
layout = SequenceLayout.from_tokenizer(tok)
prompt_embeds = splice_visual_tokens(base.get_input_embeddings()(prompt), prompt, visual, layout.image)
common = dict(input_ids=prompt, inputs_embeds=prompt_embeds, attention_mask=torch.ones_like(prompt),
              max_new_tokens=cfg.vq.num_tokens + 2, pad_token_id=tok.pad_token_id, eos_token_id=layout.end_turn)
with torch.no_grad():
    free = base.generate(**common, do_sample=False)[0, prompt.shape[1]:]
    constrained = base.generate(**common, do_sample=True,
                                logits_processor=LogitsProcessorList([ImageTokenConstraint(block, cfg.vq.num_tokens, layout.end_turn)]))
print("unconstrained, first tokens:", tok.convert_ids_to_tokens(free[:8].tolist()))
grid = codes_from_tokens(constrained[:, prompt.shape[1]:], block, cfg.vq.grid_size)
print("constrained: a", tuple(grid.shape[1:]), "grid of codes; ends with",
      tok.convert_ids_to_tokens(constrained[0, -2:].tolist()))

# %% [markdown]
# The grid is decodable: the VQ tokenizer of notebook 03 (load-or-train) turns it into pixels.
# Left, the codes (one colour per code index, modulo 20); right, what they decode to.

# %%
from healthgpt_lite.vq import ensure_vq, load_vq_tokenizer

ensure_vq(cfg, run.artifacts_dir, data_dir, progress=run.progress)
vq = load_vq_tokenizer(cfg, run.artifacts_dir)
decoded = vq.decode(grid)  # (1, 3, H, W) in [0, 1]
print("codes", tuple(grid.shape), "-> pixels", tuple(decoded.shape))
fig = Figure(figsize=(6, 3))
ax = fig.add_subplot(1, 2, 1)
im = ax.imshow(grid[0], cmap="tab20", interpolation="nearest")
ax.set_title("sampled codes (untrained model)"), ax.set_xlabel("grid column"), ax.set_ylabel("grid row")
fig.colorbar(im, ax=ax, fraction=0.046, label="code index")
ax = fig.add_subplot(1, 2, 2)
ax.imshow(decoded[0].mean(0), cmap="gray", vmin=0, vmax=1), ax.set_title("decoded by the VQ decoder")
ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()
fig

# %% [markdown]
# The codes are random (the model has not learned anything yet), so the picture is a patchwork
# of the decoder's code tiles, not an anatomy; but the *format* is guaranteed, and any such grid
# decodes.
#
# ## Summary
#
# * Image codes are words: `<start_index>`, `<idx_0..N-1>`, `<end_index>` extend the embeddings
#   and the head; new rows start at the mean of the old ones, so they must be trained before the
#   model can tell codes apart.
# * A sequence is chat template + N visual slots + question + response; only the response is
#   supervised; generation targets are h·w codes between `<start_index>` and `<end_index>`.
# * Long prompts lose text, never image tokens; an example that cannot fit is an error.
# * A logits mask makes every generation decodable; no digits are scraped from text.
#
# ## Check your understanding
#
# 1. Why do all image tokens get the same logit right after `extend_vocabulary`, and which
#    parameters must train to fix it?
#
#    <details><summary>Answer</summary>
#
#    Identical rows of the head; the new rows.
#
#    </details>
#
# 2. In the VQA example, which tokens carry loss, and why not the question?
#
#    <details><summary>Answer</summary>
#
#    Only the response: the answer and the `<|end|>` that closes the turn (the cell prints
#    them); every other label is -100. The question is given at inference, so predicting it
#    would spend the model on users' questions, and the visual slots are not words at all.
#
#    </details>
#
# 3. A generation prompt ends with `<start_index>`. What does the constraint allow at step 0,
#    at step h·w, and after?
#
#    <details><summary>Answer</summary>
#
#    At step 0 only the `<idx_*>` codes (the prompt already ends in `<start_index>`), and so on
#    up to h·w codes; at step h·w only `<end_index>`; then only the end of the turn, `<|end|>`.
#
#    </details>
#
# 4. What would happen to a generated image if one digit were dropped when scraping text?
#
#    <details><summary>Answer</summary>
#
#    Every later code moves one cell back in raster order: the rest of the image is shifted (a
#    shear across the rows), and the grid is one code short, so it cannot be decoded without
#    guessing a filler.
#
#    </details>
#
# **Exercise:** [exercises/05_constrained_decoding](../exercises/README.md) asks you to write the
# logits mask yourself.
