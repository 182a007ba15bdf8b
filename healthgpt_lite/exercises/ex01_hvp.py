"""Checkers of exercise 01 (hierarchical visual perception, REFERENCE section 1, paper section 3.1).

q1 ``hvp_tokens(hidden_states, task) -> (B, N, D)``: the task's hidden state with CLS dropped,
   checked against ``vision/encoder.py:HVPEncoder`` on the hidden states of two small random
   CLIP ViTs (4 and 6 blocks, so an index that only works for one depth is caught).
q2 ``normalize_pixels(pixels) -> (B, 3, H, W)``: [0, 1] pixels to CLIP's input statistics,
   checked against ``vision/encoder.py:normalize_pixels``.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..config import VisionConfig, build_config
from ..vision.encoder import HVPEncoder, normalize_pixels
from .checking import Case, Question

EXERCISE = "01_hvp"
TASK_COLOURS = {"generation": "tab:orange", "comprehension": "tab:blue"}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # a common mix-up


# ----------------------------------------------------------------------------- q1
@lru_cache(maxsize=None)
def _hidden(name: str, batch: int) -> tuple[torch.Tensor, ...]:
    """The hidden states of the tiny preset's ViT (4 blocks) or of a deeper, narrower one (6
    blocks), random weights, on ``batch`` random images; computed once."""
    v = build_config("tiny", "smoke").vision if name == "tiny" else VisionConfig(
        image_size=32, patch_size=8, hidden_size=48, num_layers=6, num_heads=4, intermediate_size=96)
    with torch.random.fork_rng():  # seeding here must not change the notebook's random stream
        enc = HVPEncoder.from_config(v, seed=0)
    pixels = torch.rand(batch, 3, enc.image_size, enc.image_size, generator=torch.Generator().manual_seed(batch))
    return enc.hidden_states(pixels)  # L + 1 states, each (B, 1 + N, D)


def reference_hvp_tokens(hidden_states: tuple[torch.Tensor, ...], task: str) -> torch.Tensor:
    """What ``HVPEncoder.forward`` returns, given the hidden states it computed."""
    v = VisionConfig()  # HVP's layers: gen_layer = 1, comp_layer = -2
    layer = {"generation": v.gen_layer, "comprehension": v.comp_layer}[task]
    return hidden_states[layer][:, 1:]  # (B, N, D)


def hvp_cases() -> list[Case]:
    out = []
    for name, blocks, batch, size in [("tiny", 4, 2, "64 px, 64 patches, D=128"), ("deep", 6, 3, "32 px, 16 patches, D=48")]:
        for task in ("generation", "comprehension"):
            out.append(Case(f"task={task!r}, the hidden states of a random {blocks}-block ViT ({size}, batch {batch})",
                            lambda n=name, b=batch, t=task: (tuple(h.clone() for h in _hidden(n, b)), t)))
    return out


def observe_with_inputs(args: tuple, returned):
    return returned, args


def compare_tokens(expected: tuple, got: tuple) -> str | None:
    (want, (hidden, task)), (have, _) = expected, got
    if not isinstance(have, torch.Tensor):
        return f"return a torch.Tensor, got {type(have).__name__}"
    if have.shape == want.shape and torch.equal(have, want):
        return None
    blocks = len(hidden) - 1
    b, n, d = want.shape
    if have.shape == (b, n + 1, d):
        return "it keeps the CLS token (N + 1 tokens per image): HVP passes only the N patch tokens"
    if have.shape == (b, d):
        return "one vector per image: HVP passes every patch token to the adapter, not a pooled one"
    if have.shape != want.shape:
        return f"shape {tuple(have.shape)} but expected (B, N, D) = {tuple(want.shape)}"
    if any(torch.equal(have, h[:, :-1]) for h in hidden):
        return "it drops the last patch token instead of CLS: CLS is the *first* token of every hidden state"
    picked = [j for j, h in enumerate(hidden) if torch.equal(have, h[:, 1:])]
    if not picked:
        return "the tokens match no single hidden state: HVP reads one layer per task, unchanged (no fusion)"
    j = picked[0]
    where = f"hidden_states[{j}]" + (" (the patch embedding, before any block)" if j == 0 else f" (the output of block {j})")
    if task == "generation":
        if j == 2:
            return f"for 'generation' you read {where}: off by one? hidden_states[0] is the embedding output"
        if j == 0:
            return f"for 'generation' you read {where}; HVP's concrete features come out of the first block"
        if j == blocks - 1:
            return f"for 'generation' you read {where}: that is the comprehension layer (tasks swapped?)"
    else:
        if j == blocks:
            return (f"for 'comprehension' you read {where}, the last one; HVP, like LLaVA, avoids the final "
                    "block (it is shaped by CLIP's own contrastive objective)")
        if j == 1:
            return f"for 'comprehension' you read {where}: that is the generation layer (tasks swapped?)"
        if j == 3 and blocks != 4:
            return (f"for 'comprehension' on this {blocks}-block ViT you read {where}: a fixed index fits one "
                    "depth only; count from the end")
    return f"for {task!r} you read {where} of this {blocks}-block ViT, which is not HVP's layer for this task"


# ----------------------------------------------------------------------------- q2
def reference_normalize_pixels(pixels: torch.Tensor) -> torch.Tensor:
    return normalize_pixels(pixels)


def pixel_cases() -> list[Case]:
    from ..data import load_image
    from ..data.tokenizer import REPO_ROOT

    images = REPO_ROOT / "data_samples" / "vl_health_lite" / "images"
    scans = torch.stack([load_image(images / f"p00000_{m}.png", size=64) for m in ("ct", "mri", "xray")])  # (3, 3, 64, 64)
    gen = torch.Generator().manual_seed(0)
    colour = torch.rand(2, 3, 32, 48, generator=gen)  # (2, 3, 32, 48): channels differ, H != W
    return [Case("three sample scans (3, 3, 64, 64)", lambda: (scans.clone(),)),
            Case("two random colour images (2, 3, 32, 48)", lambda: (colour.clone(),)),
            Case("one black and one white image (2, 3, 8, 8)",
                 lambda: (torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)]),))]


def _per_channel(x: torch.Tensor, values) -> torch.Tensor:
    return x.new_tensor(values).view(1, 3, 1, 1)


def compare_pixels(expected: tuple, got: tuple) -> str | None:
    (want, (x,)), (have, _) = expected, got
    if not isinstance(have, torch.Tensor):
        return f"return a torch.Tensor, got {type(have).__name__}"
    if have.shape != want.shape:
        return f"shape {tuple(have.shape)} but expected the input's shape {tuple(want.shape)}"
    if torch.allclose(have.float(), want, atol=1e-5):
        return None
    from ..vision.encoder import CLIP_MEAN, CLIP_STD

    mean, std = _per_channel(x, CLIP_MEAN), _per_channel(x, CLIP_STD)
    known = {"the pixels are unchanged: CLIP was trained on normalised inputs": x,
             "that maps [0, 1] to [-1, 1] (the VQGAN's convention); CLIP has its own mean and std per channel": 2 * x - 1,
             "those are ImageNet's statistics; CLIP was trained with its own (CLIP_MEAN, CLIP_STD)":
                 (x - _per_channel(x, IMAGENET_MEAN)) / _per_channel(x, IMAGENET_STD),
             "you multiply by the standard deviation; normalising divides by it": (x - mean) * std,
             "that undoes a normalisation (x * std + mean); here you apply one": x * std + mean,
             "the channels get each other's statistics: the mean and std are listed in RGB order":
                 (x - mean.flip(1)) / std.flip(1)}
    for reason, value in known.items():
        if torch.allclose(have.float(), value, atol=1e-5):
            return reason
    wrong = [c for c in range(3) if not torch.allclose(have[:, c].float(), want[:, c], atol=1e-5)]
    return f"channel(s) {wrong} differ from (pixel - mean) / std with CLIP's statistics"


# ----------------------------------------------------------------------------- given helpers (the notebook's figures)
def labelled_hidden_states(num_layers: int, num_tokens: int, width: int) -> tuple[torch.Tensor, ...]:
    """Fake hidden states whose values say where they come from: every patch token of
    ``hidden_states[i]`` holds ``i``, every CLS token holds -1. Shapes as a real ViT's."""
    return tuple(torch.cat([torch.full((1, 1, width), -1.0), torch.full((1, num_tokens, width), float(i))], 1)
                 for i in range(num_layers + 1))  # each (1, 1 + N, width)


def read_pick(tokens: torch.Tensor) -> tuple[int | None, bool]:
    """(which hidden state, CLS kept?) for tokens taken from :func:`labelled_hidden_states`."""
    values = set(torch.unique(tokens).tolist())
    kept_cls = -1.0 in values
    values.discard(-1.0)
    return (int(values.pop()) if len(values) == 1 else None), kept_cls


def ladder_figure(num_layers: int, picks: dict[str, tuple[int | None, bool]], title: str) -> Figure:
    """The ViT's hidden states as a ladder, bottom (patch embedding) to top (last block); each
    task's pick is coloured and labelled."""
    n = num_layers + 1
    fig = Figure(figsize=(4.2, 0.9 + 0.2 * n))
    ax = fig.add_subplot()
    for i in range(n):
        task = next((t for t, (j, _) in picks.items() if j == i), None)
        ax.add_patch(Rectangle((0, i), 1.3, 0.8, color=TASK_COLOURS.get(task, "0.85")))
        name = "patch embedding" if i == 0 else f"block {i}"
        ax.text(0.65, i + 0.4, f"hidden_states[{i}] = {name}", ha="center", va="center", fontsize=7)
        for t, (j, kept_cls) in picks.items():
            if j == i:
                ax.text(1.35, i + 0.4, f"← {t}" + (" (CLS kept!)" if kept_cls else ""), va="center", fontsize=8,
                        color=TASK_COLOURS[t])
    ax.set_xlim(0, 2.4), ax.set_ylim(-0.2, n), ax.axis("off"), ax.set_title(title)
    fig.tight_layout()
    return fig


q1 = Question(EXERCISE, "q1", "hvp_tokens", reference_hvp_tokens, hvp_cases, compare_tokens,
              observe=observe_with_inputs, placeholder=None,
              hint_text="hidden_states[0] is the patch embedding, hidden_states[i] the output of block i. Generation "
                        "reads the output of the first block; comprehension the second-to-last state, whatever the "
                        "depth (a negative index). Then drop token 0 of the sequence dimension: [:, 1:].")
q2 = Question(EXERCISE, "q2", "normalize_pixels", reference_normalize_pixels, pixel_cases, compare_pixels,
              observe=observe_with_inputs, placeholder=None,
              hint_text="Turn CLIP_MEAN and CLIP_STD into tensors of shape (1, 3, 1, 1) (pixels.new_tensor(...).view("
                        "1, 3, 1, 1)), so they broadcast over the channel dimension; then (pixels - mean) / std.")
QUESTIONS = (q1, q2)
