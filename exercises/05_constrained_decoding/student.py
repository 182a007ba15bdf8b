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
# # Exercise 05 · Constrained image decoding: the logits mask after `<start_index>`
#
# **Learning objectives.** After this exercise you can
# 1. explain why HealthGPT's released code can return a broken image, and how a logits mask
#    makes every generation decodable;
# 2. write that mask for a batch: for each sequence, which token ids may come next;
# 3. plug a mask into Hugging Face `generate` as a `LogitsProcessor`, and see even an
#    untrained model produce a complete grid of image codes.
#
# Write the code where a cell says `raise NotImplementedError  # your code here` (or `return
# None  # your code here`), run the `check()` cell below it, and use `q1.hint()` (then
# `q1.hint(2)`) / `q1.solution()` when stuck. A blank answer does not stop the notebook: later
# cells then use the reference (set `STRICT = True` to make them fail instead). Calling the
# package's own implementation is not an answer: the check notices.

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
(q1,) = load_questions("05_constrained_decoding", globals(), strict=STRICT)

# %% [markdown]
# ## Why constrain?
#
# HealthGPT writes an image as words: `<start_index>`, then one `<idx_k>` per VQ code in raster
# order (h·w of them: 32×32 = 1024 for M3, 16×16 = 256 for the tiny preset), then `<end_index>`
# and the end-of-turn token `<|end|>`. The VQGAN decoder needs **exactly** h·w codes.
#
# The released code lets the LLM write freely and *scrapes digits* out of the decoded text to
# rebuild the indices (docs/PAPERS.md §6): one stray word, or one code too few, and the image is
# broken. The fix is to forbid, at each step, every token that cannot come next. A
# `LogitsProcessor` sets their logits to −∞ before sampling, so they have probability 0.
#
# Here are the token ids involved, from the project's tokenizer: the `<idx_*>` ids are
# contiguous, so code k is token `first_idx + k`.

# %%
from healthgpt_lite.data.text_tokenizer import tokenizer_for
from healthgpt_lite.data import image_token_ids

tok = tokenizer_for(run.cfg)
block = image_token_ids(tok)
end_turn = tok.convert_tokens_to_ids("<|end|>")
n_tokens = run.cfg.vq.num_tokens  # h*w image tokens per image
print(block, f"end_turn={end_turn}", f"n_tokens={n_tokens}", f"vocabulary={len(tok)}", sep="\n")

# %% [markdown]
# ## Q1 · The mask
#
# Write `allowed_next_tokens(input_ids, vocab_size, block, n_tokens, end_turn)`.
# `input_ids` is a `(B, T)` batch of sequences generated so far (left-padded); return a
# `(B, vocab_size)` **bool** tensor, True where a token may come next. For each row, let k be
# the number of tokens after its **last** `<start_index>`:
#
# * no `<start_index>` in the row: ordinary text, everything is allowed;
# * k < n_tokens: only the image codes `<idx_0>` … `<idx_{n_codes-1}>`;
# * k == n_tokens: only `<end_index>`;
# * k > n_tokens (the image is closed): only `end_turn`.
#
# `block` has the fields `start`, `end`, `first_idx` and `n_codes`.

# %%
import torch


def allowed_next_tokens(input_ids: torch.Tensor, vocab_size: int, block, n_tokens: int,
                        end_turn: int) -> torch.Tensor:
    """(B, vocab_size) bool: which tokens may come next in each row of ``input_ids`` (B, T)."""
    return None  # your code here


# %%
q1.check()

# %%
# q1.hint()
# q1.hint(2)
# q1.solution()

# %% [markdown]
# A look at your mask on four sequences: plain text, an image just started, all its codes
# written, and the image closed. Each square is the fraction of a kind of token that the mask
# allows next (green = allowed).

# %%
import numpy as np
from matplotlib.figure import Figure

chat = tok("<|user|>\nGenerate an X-ray image.<|end|>\n<|assistant|>\n")["input_ids"]
codes = [block.first_idx] * n_tokens
states = {"plain text": chat + [0] * (n_tokens + 2), "just after <start_index>": chat + [0] * (n_tokens + 1) + [block.start],
          f"{n_tokens} codes written": chat + [0] + [block.start] + codes, "image closed": chat + [block.start] + codes + [block.end]}
mask = allowed_next_tokens(torch.tensor(list(states.values())), len(tok), block, n_tokens, end_turn)  # (4, V)
kinds = {"<idx_*>": list(range(block.first_idx, block.first_idx + block.n_codes)), "<end_index>": [block.end],
         "<|end|>": [end_turn], "<start_index>": [block.start]}
kinds["other text"] = sorted(set(range(len(tok))) - {i for ids in kinds.values() for i in ids})
share = np.array([[float(mask[r, ids].float().mean()) for ids in kinds.values()] for r in range(len(states))])
fig = Figure(figsize=(8, 2.4))
ax = fig.add_subplot()
ax.imshow(share, cmap="Greens", vmin=0, vmax=1, aspect="auto")
ax.set_xticks(range(len(kinds)), list(kinds)), ax.set_yticks(range(len(states)), list(states))
for (r, c), v in np.ndenumerate(share):
    ax.text(c, r, f"{v:.0%}", ha="center", va="center", color="white" if v > 0.5 else "black")
ax.set_title("share of each kind of token allowed next"), fig.tight_layout()
fig

# %% [markdown]
# ## Your mask inside `generate`
#
# A `LogitsProcessor` gets the ids so far and the next-token scores, and returns new scores. We
# wrap your mask in one and let an **untrained** tiny Phi-3 write an image. Without the mask it
# writes arbitrary tokens and the image cannot be decoded; with it, it always writes exactly
# h·w codes, then `<end_index>`, then `<|end|>`. (In the `smoke` profile the image is 8×8
# codes instead of the tiny preset's 16×16, to keep CI fast.)

# %%
from transformers import LogitsProcessor, LogitsProcessorList

from healthgpt_lite.model.decoding import codes_from_tokens
from healthgpt_lite.model.llm import build_llm
from healthgpt_lite.model.multimodal import encode_example, user_text


class YourConstraint(LogitsProcessor):
    def __init__(self, n_image_tokens: int):
        self.n = n_image_tokens

    def __call__(self, input_ids, scores):
        allowed = allowed_next_tokens(input_ids, scores.shape[-1], block, self.n, end_turn)  # (B, V)
        return scores.masked_fill(~allowed, float("-inf"))


grid_size = 8 if PROFILE == "smoke" else run.cfg.vq.grid_size
torch.manual_seed(SEED)
llm = build_llm(run.cfg.llm, len(tok), tok.pad_token_id).eval()  # random weights: it knows nothing
prompt = encode_example(tok, user_text("Generate an X-ray image that matches this report: no lesion.", False),
                        0, run.cfg.llm.max_position_embeddings, generation=True)["input_ids"][None]  # (1, T), ends in <start_index>


def write_image(processors, n_new):
    out = llm.generate(prompt, max_new_tokens=n_new, do_sample=True, top_k=None, top_p=None,
                       logits_processor=LogitsProcessorList(processors), pad_token_id=tok.pad_token_id)
    return out[:, prompt.shape[1]:]  # (1, n_new) new tokens


free = write_image([], 16)[0]
is_code = (free >= block.first_idx) & (free < block.first_idx + block.n_codes)
print(f"unconstrained: {int((~is_code).sum())} of the first 16 tokens are not image codes, e.g.",
      [t for t, c in zip(tok.convert_ids_to_tokens(free.tolist()), is_code) if not c][:4])
constrained = write_image([YourConstraint(grid_size**2)], grid_size**2 + 2)
grid = codes_from_tokens(constrained, block, grid_size)  # (1, h, w)
print("constrained: a", tuple(grid.shape[1:]), "grid of codes, then", tok.convert_ids_to_tokens(constrained[0, -2:].tolist()))

# %% [markdown]
# The grid of codes the untrained model wrote (random, of course: a trained model writes the codes
# of an X-ray, and the VQGAN decoder of the VQ exercise turns them into pixels).

# %%
fig = Figure(figsize=(3, 3))
ax = fig.add_subplot()
ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=block.n_codes - 1, interpolation="nearest")
ax.set_title(f"{grid.shape[1]}x{grid.shape[2]} VQ codes (0..{block.n_codes - 1})"), ax.axis("off")
fig

# %% [markdown]
# ## Summary
#
# * An image is `<start_index>`, h·w `<idx_*>` codes, `<end_index>`, `<|end|>`; the decoder needs
#   exactly h·w codes.
# * The mask counts the tokens after the **last** `<start_index>` of each row and allows only
#   codes, then only `<end_index>`, then only the end of the turn; text rows are untouched.
# * Wrapped in a `LogitsProcessor` (logits of forbidden tokens → −∞), it makes every generation
#   decodable, even from an untrained model; the project's version is
#   `healthgpt_lite/model/decoding.py:ImageTokenConstraint`.
#
# ## Check your understanding
#
# <details><summary>1. Why count from the *last* <code>&lt;start_index&gt;</code>, not the
# first?</summary>
#
# A conversation can hold an earlier, finished image; the rule is about the image being written
# now.
# </details>
#
# <details><summary>2. What goes wrong when the digits of generated text are scraped into
# indices, as the released code does?</summary>
#
# One stray or missing token shifts or breaks the 1024 codes; docs/PAPERS.md §6.
# </details>
#
# <details><summary>3. With sampling at temperature 1, can the constrained model still write
# text in the middle of an image?</summary>
#
# No: forbidden tokens get logit −∞, probability exactly 0.
# </details>
#
# All exercises: [exercises/README.md](../README.md).
