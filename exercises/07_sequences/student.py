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
# # Exercise 07 · Multimodal sequences: response-only labels and the visual-token splice
#
# **Learning objectives.** After this exercise you can
# 1. write down, token by token, what HealthGPT reads for a question, a report and an image to
#    generate, and which of those tokens it is trained to predict;
# 2. mask a training example so that only the response counts in the loss, and say why the
#    end-of-turn token is labelled while `<start_index>` is not;
# 3. put the projected visual tokens where the `<image>` slots are, in a batch where some
#    examples have no image, without cutting the adapter off from its gradient;
# 4. check both against the project's model: the same loss from your pieces.
#
# The project's versions are `healthgpt_lite/model/multimodal.py` (`encode_example`,
# `splice_visual_tokens`); notebook 04 explains them. Write the code where a cell says `return
# None  # your code here`, run the `check()` cell below it, and use `q1.hint()` (then
# `q1.hint(2)`) / `q1.solution()` when stuck. A blank answer does not stop the notebook: later
# cells then use the reference (set `STRICT = True` to make them fail instead). Calling the
# package's own function is not an answer: the check notices.

# %% tags=["parameters"]
PROFILE = "cpu"  # cpu: the learning run (reuses `make reproduce` artifacts) | smoke: CI, learns nothing
PRESET = "tiny"
SEED = 0
ARTIFACTS_DIR = None
DATA_DIR = None
OVERRIDES = {}
STRICT = False  # True: a blank or wrong answer stops the notebook

# %%
from healthgpt_lite.exercises import load_questions
from healthgpt_lite.course.notebook import setup

run = setup(PROFILE, PRESET, SEED, ARTIFACTS_DIR, DATA_DIR, OVERRIDES)
q1, q2 = load_questions("07_sequences", globals(), strict=STRICT)

# %% [markdown]
# ## The pieces (docs/PAPERS.md §1)
#
# Every example is one turn of the Phi-3 chat template. The template's fixed text and the
# special token ids come from the project; the tokenizer is the tiny preset's:

# %%
from healthgpt_lite.data.text_tokenizer import image_token_ids, tokenizer_for
from healthgpt_lite.model.multimodal import IGNORE_INDEX, PROMPT_HEAD, PROMPT_TAIL, SequenceLayout

tok = tokenizer_for(run.cfg)
layout = SequenceLayout.from_tokenizer(tok)  # ids of <image>, <start_index>, <end_index>, <|end|>, padding
block = image_token_ids(tok)  # block.first_idx: the id of <idx_0>; block.n_codes image tokens
print(f"template head {PROMPT_HEAD!r}\ntemplate tail {PROMPT_TAIL!r}")
print(layout, f"\n<idx_0> = {block.first_idx}, {block.n_codes} image tokens; IGNORE_INDEX = {IGNORE_INDEX}")
print("tokenising a piece:", tok("Is there a lesion?", add_special_tokens=False)["input_ids"])

# %% [markdown]
# ## Q1 · One training example, labels included
#
# A sequence is **prompt + response**:
#
# * the **prompt** is the template head, the user text and the template tail. The user text
#   holds at most one `<image>`; it stands for the whole image, so in the ids it becomes
#   `n_visual` copies of the `<image>` id, one slot per visual token (the model fills them at
#   forward time, Q2). A text-only turn has no slots. A **generation** prompt also ends with
#   `<start_index>`: at inference the model is handed it and must go on with image codes.
# * the **response** is either the answer's tokens (comprehension) or the image: its VQ codes
#   `k` as the tokens `<idx_k>`, row by row, closed by `<end_index>`. Either way the turn then
#   ends with `<|end|>`.
#
# Only the response is trained: its labels are its own ids (the model shifts them by one
# itself, to predict each next token), and every prompt position gets `IGNORE_INDEX`, which
# cross-entropy skips. With neither an answer nor codes you get the prompt alone, as used at
# inference (all its labels `IGNORE_INDEX`). Write `encode_example(tokenizer, user, n_visual,
# answer=None, image_codes=None, generation=False)` returning `{"input_ids": (T,), "labels":
# (T,)}`, both `torch.long`. Leave truncation out; the project's version also cuts overlong text.

# %%
import torch

from healthgpt_lite.data.text_tokenizer import image_token_ids
from healthgpt_lite.model.multimodal import IGNORE_INDEX, PROMPT_HEAD, PROMPT_TAIL, SequenceLayout


def encode_example(tokenizer, user: str, n_visual: int, answer: str | None = None,
                   image_codes: torch.Tensor | None = None, generation: bool = False) -> dict[str, torch.Tensor]:
    """{"input_ids": (T,), "labels": (T,)} of one example: prompt labels IGNORE_INDEX, response labels its ids."""
    return None  # your code here


# %%
q1.check()

# %%
# q1.hint()
# q1.hint(2)
# q1.solution()

# %% [markdown]
# Your function on a generation record of the committed sample: every token of the sequence,
# and what the loss asks the model to predict there (`·` = ignored). The grid of codes is a
# made-up one (exercise 02 makes real ones).

# %%
import pandas as pd

from healthgpt_lite.data import load_records
from healthgpt_lite.data.text_tokenizer import REPO_ROOT

records = load_records(REPO_ROOT / "data_samples" / "vl_health_lite" / "train.json")
rec = next(r for r in records if r["task"] == "ct2mri")
codes = torch.randint(0, block.n_codes, (2, 2), generator=torch.Generator().manual_seed(SEED))  # (h, w)
ex = encode_example(tok, rec["conversations"][0]["value"], 4, image_codes=codes, generation=True)
strip = pd.DataFrame({"token": tok.convert_ids_to_tokens(ex["input_ids"].tolist()),
                      "label": ["·" if v == IGNORE_INDEX else tok.convert_ids_to_tokens(v) for v in ex["labels"].tolist()]})
display(strip.T)
n_trained = int((ex["labels"] != IGNORE_INDEX).sum())
print(f"{len(strip)} tokens, {n_trained} of them trained: the {codes.numel()} codes, <end_index> and <|end|>")

# %% [markdown]
# ## Q2 · Put the visual tokens into the slots
#
# At forward time the model embeds every id, `(B, T, d)`, and the adapter turns each image
# into `N` visual tokens, `visual` of shape `(M, N, d)`: **one entry per example that has an
# image**, in batch order (a text-only example has none). Write `splice_visual_tokens(
# inputs_embeds, input_ids, visual, image_token_id)` returning a new `(B, T, d)` tensor where
# the n-th `<image>` slot of each example holds that example's n-th visual token and every
# other position its word embedding:
#
# * the result has the dtype of `inputs_embeds` (bfloat16 in a real run; the adapter may give
#   float32);
# * gradients must reach `visual` (that is how the adapter learns) and the text positions of
#   `inputs_embeds`; leave the caller's `inputs_embeds` unchanged;
# * `visual=None` and no slots: the embeddings as they are; a batch whose number of slots is
#   not `M·N` is a bug upstream: raise an error that says so.

# %%
import torch

from healthgpt_lite.errors import InputError


def splice_visual_tokens(inputs_embeds: torch.Tensor, input_ids: torch.Tensor, visual: torch.Tensor | None,
                         image_token_id: int) -> torch.Tensor:
    """(B, T, d) embeddings with ``visual`` (M, N, d) at the <image> positions of ``input_ids`` (B, T)."""
    return None  # your code here


# %%
q2.check()

# %%
# q2.hint()
# q2.hint(2)
# q2.solution()

# %% [markdown]
# ## Your pieces in the model
#
# The tiny HealthGPT with a random language model (untrained: the loss is near `ln V`), on a
# batch of two sample records, a closed question and a report, with random visual features in
# place of the ViT's. The loss is computed twice: by the project's model end to end, and from
# your `encode_example` and `splice_visual_tokens` by hand.

# %%
import math

from healthgpt_lite.model.llm import build_llm
from healthgpt_lite.model.multimodal import collate
from healthgpt_lite.training.pipeline import build_model

cfg = run.cfg
torch.manual_seed(SEED)
model = build_model(cfg, tok, base_llm=build_llm(cfg.llm, block.start, pad_token_id=tok.pad_token_id)).eval()
n_visual = cfg.vision.num_tokens
picked = [next(r for r in records if r["task"] == t) for t in ("vqa_closed", "report")]
examples = [encode_example(tok, r["conversations"][0]["value"], n_visual, answer=r["conversations"][1]["value"])
            for r in picked]
batch = collate(examples, tok.pad_token_id)  # (B, T) each
features = torch.randn(len(examples), n_visual, cfg.vision.hidden_size)  # (M, N, D) stands in for the ViT

with torch.no_grad():
    model.set_task("comprehension")
    project = model(batch["input_ids"], batch["attention_mask"], batch["labels"], features=features).loss
    embeds = model.llm.get_input_embeddings()(batch["input_ids"])  # (B, T, d)
    spliced = splice_visual_tokens(embeds, batch["input_ids"], model.visual_tokens(features=features), layout.image)
    yours = model.llm(inputs_embeds=spliced, attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
trained = int((batch["labels"] != IGNORE_INDEX).sum())
print(f"{len(examples)} examples, {batch['input_ids'].numel()} positions, {trained} of them trained")
print(f"loss, project's model: {project:.4f}; from your pieces: {yours:.4f}; "
      f"{'the same' if torch.isclose(project, yours) else 'DIFFERENT'} (ln V = {math.log(len(tok)):.2f})")

# %% [markdown]
# ## Summary
#
# * An example is prompt + response. The prompt is the template, the user text with `<image>`
#   expanded to one slot per visual token, and for generation `<start_index>`; the response is
#   the answer or the image codes as `<idx_k>` plus `<end_index>`, then `<|end|>`.
# * Labels: `IGNORE_INDEX` (-100) on the prompt, the ids on the response, unshifted. The final
#   `<|end|>` is labelled (the model learns to stop); `<start_index>` is not (it is given).
# * The splice fills the `<image>` slots in row-major order with the examples' visual tokens
#   (one entry per example *with* an image), in the embeddings' dtype, out of place, so the
#   adapter gets its gradient through it.
#
# ## Check your understanding
#
# <details><summary>1. What would a model trained without the final <code>&lt;|end|&gt;</code>
# label do at inference?</summary>
#
# It never learnt to end its turn: it keeps generating until the token limit, and an image
# response would run past its h·w codes.
# </details>
#
# <details><summary>2. Why is it fine, even better, to label the prompt with -100 rather than
# train on it too?</summary>
#
# The prompt is given at inference; predicting it spends capacity on the system text and on
# the `<image>` slots, whose "next token" is a placeholder, not language.
# </details>
#
# <details><summary>3. Why must the splice not be written as <code>embeds[slots] =
# visual.detach()</code>?</summary>
#
# `detach` cuts the adapter off: in stage 1 the adapter is all that trains for comprehension,
# so the loss would never move anything. Writing into `embeds` in place also changes the
# caller's tensor.
# </details>
#
# <details><summary>4. Why can the sequence length and the labels be known before the vision
# encoder runs?</summary>
#
# The number of visual tokens per image is fixed (N = 64 here, 576 for M3), so `<image>` is
# expanded into N slots when the text is encoded; the splice only fills them.
# </details>
#
# Notebook 04 (`notebooks/04_unified_llm.py`) builds the unified vocabulary and these
# sequences. All exercises: [exercises/README.md](../README.md).
