"""Checkers of exercise 03 (the H-LoRA forward pass, docs/PAPERS.md section 2; HealthGPT paper, "Heterogeneous Knowledge Adaptation").

All three take the weights as ``nn.Linear`` stores them: ``A`` (r*k, d_in), ``B`` (d_out, r*k),
``router`` (k, d_in), in float64, and compare with the package's modules built with the same
weights (eval mode: no dropout).

q1 ``expand_router_weights(w, rank_per_expert) -> (..., r*k)``: each expert's weight repeated
   over its r rank columns, as in ``lora/hlora.py:HLoRAPlugin.forward``.
q2 ``hlora_forward(x, A, B, router, experts, alpha) -> (..., d_out)``: the fused update, checked
   against ``HLoRAPlugin``.
q3 ``moelora_forward(x, A, B, router, experts, alpha) -> (..., d_out)``: the same update as a
   loop over experts, checked against ``lora/moelora.py:MoELoRAPlugin`` (``copy_from_fused``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..config import PluginConfig
from ..lora import HLoRAPlugin, MoELoRAPlugin
from .checking import Case, Question

EXERCISE = "03_hlora_forward"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def observe_with_inputs(args: tuple, returned):
    return returned, args


# ----------------------------------------------------------------------------- q1
def reference_expand_router_weights(w: torch.Tensor, rank_per_expert: int) -> torch.Tensor:
    return w.repeat_interleave(rank_per_expert, dim=-1)  # as HLoRAPlugin.forward


def expand_cases() -> list[Case]:
    specs = [((2, 5, 4), 2), ((3,), 4), ((2, 3, 2), 3), ((1, 6, 8), 2)]  # (shape of w, r)
    return [Case(f"w of shape {shape} (k = {shape[-1]} experts), rank_per_expert={r}",
                 lambda s=s, shape=shape, r=r: (torch.softmax(torch.randn(shape, generator=_gen(s), dtype=torch.float64), -1), r))
            for s, (shape, r) in enumerate(specs)]


def compare_expanded(expected: tuple, got: tuple) -> str | None:
    (want, (w, r)), (have, _) = expected, got
    if not isinstance(have, torch.Tensor):
        return f"return a torch.Tensor, got {type(have).__name__}"
    if have.shape != want.shape:
        flat = " (flattened? repeat along the last dimension only)" if have.ndim == 1 and w.ndim > 1 else ""
        return f"shape {tuple(have.shape)} but expected (..., r*k) = {tuple(want.shape)}{flat}"
    if have.dtype != want.dtype:
        return f"dtype {have.dtype}: keep the dtype of w ({want.dtype} here)"
    if torch.allclose(have, want):
        return None
    if torch.allclose(have, w.repeat(*([1] * (w.ndim - 1)), r)):
        return ("rank column j carries the weight of expert j % k; expert i owns the *contiguous* columns "
                "[i*r, (i+1)*r), so column j needs expert j // r")
    return "some rank columns carry a weight that is not their expert's (expert i owns columns [i*r, (i+1)*r))"


# ----------------------------------------------------------------------------- q2, q3
def _plugin(A: torch.Tensor, B: torch.Tensor, router: torch.Tensor, experts: int, alpha: float) -> HLoRAPlugin:
    cfg = PluginConfig(rank=A.shape[0], experts=experts, alpha=alpha, dropout=0.0)
    plugin = HLoRAPlugin(A.shape[1], B.shape[0], cfg, dtype=A.dtype).eval()
    with torch.no_grad():
        plugin.A.weight.copy_(A), plugin.B.weight.copy_(B), plugin.router.weight.copy_(router)
    return plugin


@torch.no_grad()
def reference_hlora_forward(x, A, B, router, experts: int, alpha: float) -> torch.Tensor:
    return _plugin(A, B, router, experts, alpha)(x)


@torch.no_grad()
def reference_moelora_forward(x, A, B, router, experts: int, alpha: float) -> torch.Tensor:
    fused = _plugin(A, B, router, experts, alpha)
    return MoELoRAPlugin(A.shape[1], B.shape[0], fused.config, dtype=A.dtype).eval().copy_from_fused(fused)(x)


def layer_cases() -> list[Case]:
    def make(seed: int, x_shape: tuple, d_out: int, rank: int, k: int, alpha: float):
        g, d_in = _gen(seed), x_shape[-1]
        rand = lambda *shape: torch.randn(shape, generator=g, dtype=torch.float64)  # noqa: E731
        # B random too (a fresh plugin has B = 0, which would make every answer "right")
        return rand(*x_shape), rand(rank, d_in), rand(d_out, rank), rand(k, d_in), k, alpha

    specs = [(0, (2, 7, 24), 16, 8, 4, 16.0), (1, (5, 24), 10, 9, 3, 6.0), (2, (3, 4, 12), 6, 4, 1, 8.0)]
    return [Case(f"x {x_shape}, d_out={d_out}, {k} experts of rank {rank // k} (A {(rank, x_shape[-1])}), alpha={alpha}",
                 lambda s=s, xs=x_shape, do=d_out, rk=rank, k=k, a=alpha: make(s, xs, do, rk, k, a))
            for s, x_shape, d_out, rank, k, alpha in specs]


def fused_variant(x, A, B, router, experts: int, alpha: float, expand: str = "repeat_interleave",
                  softmax_dim: int | None = -1, scale: float | None = None) -> torch.Tensor:
    """The fused update with one thing changed (to recognise a typical mistake)."""
    r = A.shape[0] // experts
    logits = x @ router.T  # (..., k)
    w = logits if softmax_dim is None else F.softmax(logits, dim=softmax_dim)
    w_exp = w.repeat_interleave(r, dim=-1) if expand == "repeat_interleave" else w.repeat(*([1] * (w.ndim - 1)), r)
    return ((w_exp * (x @ A.T)) @ B.T) * (alpha / r if scale is None else scale)  # (..., d_out)


def compare_update(expected: tuple, got: tuple) -> str | None:
    (want, (x, A, B, router, k, alpha)), (have, _) = expected, got
    if not isinstance(have, torch.Tensor):
        return f"return a torch.Tensor, got {type(have).__name__}"
    if have.shape != want.shape:
        return f"shape {tuple(have.shape)} but expected (..., d_out) = {tuple(want.shape)}"
    if have.dtype != want.dtype:
        return f"dtype {have.dtype}: keep the inputs' dtype ({want.dtype} here)"
    if torch.allclose(have, want):
        return None
    r = A.shape[0] // k

    def same_as(**change) -> bool:
        return torch.allclose(have, fused_variant(x, A, B, router, k, alpha, **change))

    if same_as(expand="repeat"):
        return ("expert i's weight lands on rank columns i, i+k, i+2k, ...; expert i owns the contiguous rows "
                "[i*r, (i+1)*r) of A (and those columns of B)")
    if any(same_as(softmax_dim=d) for d in range(x.ndim - 1)):
        return "the router weights must sum to 1 over the k experts of each token; yours are normalised over another dimension"
    if same_as(softmax_dim=None):
        return "the raw router logits are not mixture weights: take their softmax over the experts"
    for scale, reason in [(alpha / (r * k), f"{k}x too small: the scale is alpha over the rank of *one* expert"),
                          (1.0, "without the scale alpha / r"), (alpha, "scaled by alpha, not alpha / r"),
                          (r / alpha, "scaled by r / alpha, not alpha / r")]:
        if same_as(scale=scale):
            return f"your update is {reason}"
    ratio = float((have * want).sum() / (want * want).sum())
    return f"off by up to {float((have - want).abs().max()):.3g} (least-squares ratio to the expected update {ratio:.3g})"


# ----------------------------------------------------------------------------- given helpers (the notebook)
def expansion_figure(w: torch.Tensor, rank_per_expert: int, expanded: torch.Tensor) -> Figure:
    """Two rows of r*k rank columns: which expert owns each column (its rows of A, columns of
    B), and whose router weight the expansion put there. They must agree column by column."""
    k, r = len(w), rank_per_expert
    owner = torch.arange(k * r) // r  # (r*k,)
    placed = torch.tensor([int((w - v).abs().argmin()) for v in expanded])  # (r*k,) expert whose weight it is
    fig = Figure(figsize=(0.42 * k * r + 1.8, 1.7))
    ax = fig.add_subplot()
    ax.imshow(torch.stack([owner, placed]).numpy(), cmap="tab10", vmin=0, vmax=9, aspect="auto")
    for j in range(k * r):
        ax.text(j, 0, f"A{int(owner[j])}", ha="center", va="center", fontsize=7, color="white")
        ax.text(j, 1, f"w{int(placed[j])}", ha="center", va="center", fontsize=7, color="white")
    ax.set_yticks([0, 1], ["owner of column", "weight applied"]), ax.set_xticks(range(k * r))
    ax.set_xlabel("rank column j"), ax.set_title(f"k = {k} experts of rank r = {r}: "
                                                + ("every column gets its own expert's weight" if torch.equal(owner, placed)
                                                   else "columns get another expert's weight"))
    fig.tight_layout()
    return fig


_PLUGINS = ("healthgpt_lite.lora.hlora", "healthgpt_lite.lora.moelora")
q1 = Question(EXERCISE, "q1", "expand_router_weights", reference_expand_router_weights, expand_cases,
              compare_expanded, observe=observe_with_inputs, placeholder=None, forbidden=_PLUGINS,
              hints=("Draw the r*k rank columns for k = 2 experts of rank r = 3 and write under each which expert owns "
                     "it. Which expert owns column 4, and what formula gives the owner of column j?",
                     "Column j belongs to expert j // r, so every weight appears r times side by side: (w1, w1, w1, w2, "
                     "w2, w2), not (w1, w2, w1, w2, ...). Either repeat each weight in place, or build the owner of "
                     "every column and index w with it, along the last dimension only."))
q2 = Question(EXERCISE, "q2", "hlora_forward", reference_hlora_forward, layer_cases, compare_update,
              observe=observe_with_inputs, placeholder=None, forbidden=_PLUGINS,
              hints=("Three steps per token: its k mixture weights, its r*k rank activations, and the up-projection "
                     "of the weighted activations. Over which dimension must the k weights sum to 1, and which "
                     "rank is the scale's denominator?",
                     "The router's logits become weights with a softmax over the experts of each token; your q1 "
                     "spreads them over the rank columns; multiply elementwise with the down-projection's output, "
                     "project up, scale by alpha over the rank of one expert."))
q3 = Question(EXERCISE, "q3", "moelora_forward", reference_moelora_forward, layer_cases, compare_update,
              observe=observe_with_inputs, placeholder=None, forbidden=_PLUGINS,
              hints=("Expert i is a plain LoRA with its own slice of A (which rows?) and of B (which columns?). The "
                     "update is the weighted sum of the k LoRA updates.",
                     "Slice expert i's r rows of A and the same r columns of B, compute its update, weigh it by the "
                     "token's weight for expert i (keep a dimension so it broadcasts), add over i, scale once."))
QUESTIONS = (q1, q2, q3)
