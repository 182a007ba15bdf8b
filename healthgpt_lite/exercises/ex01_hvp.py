"""Checkers of exercise 01 (hierarchical visual perception, docs/PAPERS.md section 1; HealthGPT paper, "Hierarchical Visual Perception").

q1 ``choose_hvp_layers(rows) -> {"generation": l, "comprehension": l}``: HVP's layer per task
   chosen from linear-probe results, checked against ``vision/probes.py:choose_hvp_layers`` on
   probe tables made to catch the usual slips: rows out of order or for some layers only (a list
   position is not a layer), the patch embedding competing, raw accuracy instead of the skill
   over the majority baseline, ties, and an attribute with no mistakes to avoid (majority 1).
q2 ``normalize_pixels(pixels) -> (B, 3, H, W)``: [0, 1] pixels to CLIP's input statistics,
   checked against ``vision/encoder.py:normalize_pixels``, including images 3 pixels wide, where
   a ``(3,)`` mean broadcasts silently over the width instead of the channels.
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..config import TASKS
from ..vision.encoder import normalize_pixels
from ..vision.probes import MEANING, choose_hvp_layers, meaning_skill
from .checking import Case, Question

EXERCISE = "01_hvp"
TASK_COLOURS = {"generation": "tab:orange", "comprehension": "tab:blue"}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # a common mix-up


# ----------------------------------------------------------------------------- q1
def reference_choose_hvp_layers(rows: list[dict]) -> dict[str, int]:
    return choose_hvp_layers(rows)


# Majority-class accuracy of each attribute on the test images (the same for every layer: it
# depends only on the labels). "lesion in liver" is rare, so always guessing "no" scores 0.9.
MAJORITY = {"modality": 0.34, "any lesion": 0.6, "lesion count": 0.5, "lesion in right lung": 0.75,
            "lesion in left lung": 0.75, "lesion in liver": 0.9}


def probe_rows(r2: dict[int, float], accuracy: dict[int, dict[str, float]], majority: dict = MAJORITY,
               order: list[int] | None = None) -> list[dict]:
    """Rows shaped as ``run_probes`` returns them, for the layers in ``order`` (default: sorted)."""
    rows = []
    for layer in order if order is not None else sorted(r2):
        row = {"layer": layer, "pixel R2": r2[layer], "pixel PSNR (dB)": 20 + 20 * r2[layer]}
        for a in MEANING:
            row[a], row[f"{a} majority"] = accuracy[layer].get(a, majority[a]), majority[a]
        rows.append(row)
    return rows


def _acc(modality, any_lesion, count, right, left, liver) -> dict[str, float]:
    return dict(zip(MEANING, (modality, any_lesion, count, right, left, liver)))


# A 4-block ViT (hidden states 0-4): detail fades with depth; meaning grows, then dips at the last
# block. Raw accuracy ranks hs[3] first; the skill ranks hs[4] first: it avoids 90 % of the
# liver baseline's mistakes (0.90 -> 0.99), more than hs[3] gains anywhere.
R2_4 = {0: 0.995, 1: 0.97, 2: 0.955, 3: 0.94, 4: 0.90}
ACC_4 = {0: _acc(1.0, 0.62, 0.50, 0.76, 0.75, 0.90), 1: _acc(1.0, 0.70, 0.52, 0.78, 0.77, 0.90),
         2: _acc(1.0, 0.76, 0.58, 0.82, 0.80, 0.91), 3: _acc(1.0, 0.84, 0.64, 0.86, 0.82, 0.90),
         4: _acc(1.0, 0.78, 0.60, 0.84, 0.80, 0.99)}
# A 6-block ViT (hidden states 0-6) with exact ties: R2 at hs[2] = hs[3], skill at hs[4] = hs[5].
R2_6 = {0: 0.999, 1: 0.95, 2: 0.96, 3: 0.96, 4: 0.93, 5: 0.91, 6: 0.88}
ACC_6 = {0: _acc(0.9, 0.6, 0.5, 0.75, 0.75, 0.9), 1: _acc(0.95, 0.65, 0.5, 0.75, 0.75, 0.9),
         2: _acc(0.95, 0.7, 0.55, 0.8, 0.75, 0.9), 3: _acc(0.97, 0.72, 0.55, 0.8, 0.8, 0.9),
         4: _acc(1.0, 0.8, 0.6, 0.85, 0.8, 0.9), 5: _acc(1.0, 0.8, 0.6, 0.85, 0.8, 0.9),
         6: _acc(1.0, 0.7, 0.55, 0.8, 0.8, 0.95)}


def layer_cases() -> list[Case]:
    no_liver_lesions = {**MAJORITY, "lesion in liver": 1.0}  # no test image has one: nothing to avoid
    acc_sure_liver = {layer: {**a, "lesion in liver": 1.0} for layer, a in ACC_4.items()}
    return [
        Case("the probes of a 4-block ViT, hidden states 0-4 in order", lambda: (probe_rows(R2_4, ACC_4),)),
        Case("the same table with its rows in reverse order", lambda: (probe_rows(R2_4, ACC_4, order=[4, 3, 2, 1, 0]),)),
        Case("probes run for hidden states 2, 3 and 4 only (run_probes(layers=[2, 3, 4]))",
             lambda: (probe_rows(R2_4, ACC_4, order=[2, 3, 4]),)),
        Case("a 6-block ViT with ties (pixel R2 of hs[2] = hs[3], meaning of hs[4] = hs[5]), rows shuffled",
             lambda: (probe_rows(R2_6, ACC_6, order=[5, 2, 6, 0, 3, 1, 4]),)),
        Case("a test split where no image has a liver lesion (that attribute's majority accuracy is 1.0)",
             lambda: (probe_rows(R2_4, acc_sure_liver, no_liver_lesions),)),
    ]


def _by(rows: list[dict], score, blocks_only: bool = True, shallow_first: bool = True) -> int:
    pool = sorted((r for r in rows if r["layer"] >= 1 or not blocks_only), key=lambda r: r["layer"],
                  reverse=not shallow_first)
    return max(pool, key=score)["layer"]


def _raw_accuracy(row: dict) -> float:
    return sum(row[a] for a in MEANING) / len(MEANING)


def compare_layers(expected: tuple, got: tuple) -> str | None:
    (want, (rows,)), (have, _) = expected, got
    if not isinstance(have, dict) or set(have) != set(TASKS):
        return 'return a dict with the keys "generation" and "comprehension"'
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in have.values()):
        return f"return hidden-state indices (int), got {have!r}"
    layers = [r["layer"] for r in rows]
    for task in TASKS:
        if have[task] == want[task]:
            continue
        if have[task] == layers.index(want[task]) or have[task] not in layers:
            return (f"{task}: you returned {have[task]}, a position in the list of rows perhaps, but these rows are "
                    f"for hidden states {layers}: return the row's 'layer'")
        if have[task] == 0:
            return (f"{task}: hidden state 0 is the patch embedding, before any block: only block outputs "
                    "(layer >= 1) compete")
        if task == "generation":
            if have[task] == _by(rows, lambda r: r["pixel R2"], shallow_first=False):
                return "generation: a tie goes to the *shallower* layer"
            return "generation: the layer that keeps the most detail is the one with the highest pixel R2"
        if have[task] == _by(rows, _raw_accuracy):
            return ("comprehension: you ranked the layers by raw accuracy (accuracy minus the baseline ranks them the "
                    "same way), which favours the attributes that are easy to guess: +0.05 over a 0.90 baseline "
                    "removes half its mistakes, over a 0.50 baseline a tenth")
        if have[task] == _by(rows, meaning_skill, shallow_first=False):
            return "comprehension: a tie goes to the *shallower* layer"
        return f"comprehension: hidden state {have[task]} does not carry the most meaning by the skill measure"
    return None


# ----------------------------------------------------------------------------- q2
def observe_with_inputs(args: tuple, returned):
    return returned, args


def reference_normalize_pixels(pixels: torch.Tensor) -> torch.Tensor:
    return normalize_pixels(pixels)


def pixel_cases() -> list[Case]:
    from ..data import load_image
    from ..artifacts import REPO_ROOT

    images = REPO_ROOT / "data_samples" / "vl_health_lite" / "images"
    scans = torch.stack([load_image(images / f"p00000_{m}.png", size=64) for m in ("ct", "mri", "xray")])  # (3, 3, 64, 64)
    gen = torch.Generator().manual_seed(0)
    colour = torch.rand(2, 3, 32, 48, generator=gen)  # (2, 3, 32, 48): channels differ, H != W
    return [Case("three sample scans (3, 3, 64, 64)", lambda: (scans.clone(),)),
            Case("two random colour images (2, 3, 32, 48)", lambda: (colour.clone(),)),
            Case("one black and one white image (2, 3, 8, 8)",
                 lambda: (torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)]),)),
            Case("four colour images 5 px high and 3 px wide (4, 3, 5, 3): a (3,) mean would broadcast over W",
                 lambda: (torch.rand(4, 3, 5, 3, generator=torch.Generator().manual_seed(1)),))]


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
    if x.shape[-1] == 3:  # (3,) statistics broadcast over the width, silently
        known["the statistics were applied along the width (the last dimension), not the channels: a (3,) tensor "
              "lines up with the last dimension"] = (x - x.new_tensor(CLIP_MEAN)) / x.new_tensor(CLIP_STD)
    for reason, value in known.items():
        if torch.allclose(have.float(), value, atol=1e-5):
            return reason
    wrong = [c for c in range(3) if not torch.allclose(have[:, c].float(), want[:, c], atol=1e-5)]
    return f"channel(s) {wrong} differ from (pixel - mean) / std with CLIP's statistics"


# ----------------------------------------------------------------------------- given helpers (the notebook's figures)
def ladder_figure(num_layers: int, picks: dict[str, int], title: str, paper: dict[str, int] | None = None) -> Figure:
    """The ViT's hidden states as a ladder, bottom (patch embedding) to top (last block): each
    task's pick is coloured and labelled, the paper's fixed choice (if given) marked beside it."""
    n = num_layers + 1
    fig = Figure(figsize=(5.0, 0.9 + 0.22 * n))
    ax = fig.add_subplot()
    for i in range(n):
        task = next((t for t, j in picks.items() if j % n == i), None)
        ax.add_patch(Rectangle((0, i), 1.3, 0.8, color=TASK_COLOURS.get(task, "0.85")))
        name = "patch embedding" if i == 0 else f"block {i}"
        ax.text(0.65, i + 0.4, f"hidden_states[{i}] = {name}", ha="center", va="center", fontsize=7)
        label = ", ".join(f"← {t}" for t, j in picks.items() if j % n == i)
        marks = ", ".join(t for t, j in (paper or {}).items() if j % n == i)
        ax.text(1.35, i + 0.4, label + (f"   (paper: {marks})" if marks else ""), va="center", fontsize=8)
    ax.set_xlim(0, 3.0), ax.set_ylim(-0.2, n), ax.axis("off"), ax.set_title(title)
    fig.tight_layout()
    return fig


q1 = Question(EXERCISE, "q1", "choose_hvp_layers", reference_choose_hvp_layers, layer_cases, compare_layers,
              observe=observe_with_inputs, placeholder=None,
              forbidden=("healthgpt_lite.vision.probes.choose_hvp_layers", "healthgpt_lite.vision.probes.meaning_skill"),
              hints=("Score every row twice, once for detail and once for meaning, then keep the best row per task. "
                     "Which rows may compete at all, and what does the position of a row in the list tell you?",
                     "Per attribute, the baseline already gets a fraction 1 - majority wrong; the skill is how much of "
                     "that the probe removes. Average it over the attributes that have mistakes to remove. Visit the "
                     "rows from the shallowest layer up so that the first best one wins a tie."))
q2 = Question(EXERCISE, "q2", "normalize_pixels", reference_normalize_pixels, pixel_cases, compare_pixels,
              observe=observe_with_inputs, placeholder=None,
              forbidden=("healthgpt_lite.vision.encoder.normalize_pixels", "healthgpt_lite.vision.encoder.HVPEncoder"),
              hints=("Standardise each colour channel with its own mean and standard deviation. Which dimension of a "
                     "(B, 3, H, W) batch is the channel, and which one does a tensor of three numbers line up with?",
                     "Give the statistics the shape that makes them vary along dimension 1 only (size 1 everywhere "
                     "else), on the pixels' device and dtype; then it is subtract, then divide."))
QUESTIONS = (q1, q2)
