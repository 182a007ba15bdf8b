"""Linear probes: what does each layer of the frozen ViT still know?

HVP's claim (HealthGPT paper, "Hierarchical Visual Perception"): shallow layers keep *detail* (what generation needs to
redraw an image), deep layers keep *meaning* (what comprehension needs to answer). We measure
both for every hidden state ``l = 0..L`` with closed-form ridge regression, fit on the
training images and scored on the test images:

* **detail**: reconstruct each 8x8 (p x p) patch's pixels from its own token -> R^2 and the
  PSNR of the reassembled image;
* **meaning**: from the mean of the patch tokens, predict the modality, whether there is a
  lesion, how many, and whether the right lung / left lung / liver has one -> accuracy, next
  to the majority-class baseline (ridge on one-hot targets: a linear classifier).

The ridge strength is picked on a held-out tail of the training set (whole patients, since
images are stored patient by patient), then the probe is refit on all training images.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..errors import InputError
from .clip_data import CaptionedImages
from .encoder import HVPEncoder

LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


# ----------------------------------------------------------------------------- ridge
@dataclass
class Ridge:
    """A fitted ridge regression on standardised features: ``y = (x - mean) / std @ w + y_mean``."""

    w: torch.Tensor  # (D, K)
    mean: torch.Tensor  # (D,)
    std: torch.Tensor  # (D,)
    y_mean: torch.Tensor  # (K,)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.double() - self.mean) / self.std) @ self.w + self.y_mean  # (n, K)


@contextmanager
def one_thread():
    """Small LAPACK calls run faster on one thread than on several busy-waiting ones."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def ridge_path(x: torch.Tensor, y: torch.Tensor, lambdas=LAMBDAS) -> list[Ridge]:
    """Closed-form ridge ``w = (X'X + lam n I)^-1 X'y`` for every lambda at once, from one
    eigendecomposition ``X'X = V diag(e) V'``: ``w = V diag(1 / (e + lam n)) V'X'y``."""
    x, y = x.double(), y.double()
    mean, std, y_mean = x.mean(0), x.std(0) + 1e-6, y.mean(0)
    xs = (x - mean) / std  # (n, D)
    with one_thread():
        evals, evecs = torch.linalg.eigh(xs.T @ xs)  # (D,), (D, D)
    proj = evecs.T @ (xs.T @ (y - y_mean))  # (D, K)
    return [Ridge(evecs @ (proj / (evals + lam * len(x))[:, None]), mean, std, y_mean) for lam in lambdas]


def r2_score(y: torch.Tensor, pred: torch.Tensor, reference_mean: torch.Tensor) -> float:
    """1 - SSE / SST, SST around the *training* mean (so predicting that mean scores 0)."""
    y = y.double()
    return 1 - ((y - pred) ** 2).sum().item() / ((y - reference_mean.double()) ** 2).sum().item()


def fit_with_holdout(x: torch.Tensor, y: torch.Tensor, score, holdout: float = 0.2, lambdas=LAMBDAS) -> Ridge:
    """Pick lambda on the last ``holdout`` of the rows (``score(y, pred)``: higher is better),
    then refit on all rows with it."""
    cut = int(len(x) * (1 - holdout))
    scores = [score(y[cut:], r.predict(x[cut:])) for r in ridge_path(x[:cut], y[:cut], lambdas)]
    return ridge_path(x, y, [lambdas[max(range(len(lambdas)), key=scores.__getitem__)]])[0]


# ----------------------------------------------------------------------------- targets
def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """``(M, 1, S, S)`` -> ``(M, N, p*p)`` in the ViT's token order (row-major grid)."""
    m, _, s, _ = images.shape
    g = s // patch
    x = images.float().reshape(m, g, patch, g, patch).permute(0, 1, 3, 2, 4)  # (M, g, g, p, p)
    return x.reshape(m, g * g, patch * patch)  # (M, N, p*p)


def unpatchify(patches: torch.Tensor, patch: int) -> torch.Tensor:
    """``(M, N, p*p)`` -> ``(M, 1, S, S)``."""
    m, n, _ = patches.shape
    g = int(round(n**0.5))
    x = patches.reshape(m, g, g, patch, patch).permute(0, 1, 3, 2, 4)  # (M, g, p, g, p)
    return x.reshape(m, 1, g * patch, g * patch)


def attribute_targets(data: CaptionedImages) -> dict[str, torch.Tensor]:
    """Integer class labels per image for the meaning probes."""
    return {"modality": data.modality, "any lesion": (data.n_lesions > 0).long(), "lesion count": data.n_lesions,
            **{f"lesion in {o}": v.long() for o, v in data.lesion_in.items()}}


# ----------------------------------------------------------------------------- probes
@torch.no_grad()
def layer_features(encoder: HVPEncoder, data: CaptionedImages, batch_size: int = 64) -> torch.Tensor:
    """Patch tokens of every hidden state: ``(L + 1, M, N, D)`` (CLS dropped)."""
    chunks = [torch.stack(encoder.hidden_states(data.pixels(slice(i, i + batch_size))))[:, :, 1:].float()
              for i in range(0, len(data), batch_size)]
    return torch.cat(chunks, 1)  # (L + 1, M, N, D)


def pixel_probe(tr_feats, tr_patches, te_feats, te_patches, patch: int) -> dict[str, float]:
    """Per-token ridge regression token -> its patch's pixels; R^2 and PSNR on the test images."""
    d, p2 = tr_feats.shape[-1], tr_patches.shape[-1]
    model = fit_with_holdout(tr_feats.reshape(-1, d), tr_patches.reshape(-1, p2),
                             lambda y, pred: -((y.double() - pred) ** 2).mean().item())
    pred = model.predict(te_feats.reshape(-1, d)).float().reshape(te_patches.shape).clamp(0, 1)
    r2 = r2_score(te_patches.reshape(-1, p2), pred.reshape(-1, p2), tr_patches.reshape(-1, p2).mean(0))
    mse = ((unpatchify(pred, patch) - unpatchify(te_patches, patch)) ** 2).mean((1, 2, 3))  # (M,)
    return {"pixel R2": r2, "pixel PSNR (dB)": (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean().item()}


def attribute_probe(tr_pooled, tr_y, te_pooled, te_y) -> tuple[float, float]:
    """Ridge classifier on one-hot targets; returns (test accuracy, majority-class accuracy)."""
    k = int(max(tr_y.max(), te_y.max())) + 1
    onehot = torch.nn.functional.one_hot(tr_y, k).double()  # (M, k)
    model = fit_with_holdout(tr_pooled, onehot, lambda y, pred: (pred.argmax(1) == y.argmax(1)).double().mean().item())
    acc = (model.predict(te_pooled).argmax(1) == te_y).float().mean().item()
    majority = (te_y == tr_y.mode().values).float().mean().item()
    return acc, majority


def run_probes(encoder: HVPEncoder, train: CaptionedImages, test: CaptionedImages,
               layers: list[int] | None = None, max_images: int = 3000) -> list[dict]:
    """One row per hidden state: pixel R^2 / PSNR and the accuracy of every attribute probe
    (plus ``<attribute> majority`` baselines). At most ``max_images`` per split are used (the
    features of every layer are held in memory)."""
    train, test = train.head(max_images), test.head(max_images)
    patch = encoder.clip.config.patch_size
    tr_f, te_f = layer_features(encoder, train), layer_features(encoder, test)  # (L + 1, M, N, D)
    tr_px, te_px = patchify(train.images, patch) / 255, patchify(test.images, patch) / 255  # (M, N, p*p)
    tr_t, te_t = attribute_targets(train), attribute_targets(test)
    n_states = len(tr_f)
    rows = []
    for layer in layers if layers is not None else range(n_states):
        row = {"layer": layer % n_states, **pixel_probe(tr_f[layer], tr_px, te_f[layer], te_px, patch)}
        tr_pool, te_pool = tr_f[layer].mean(1), te_f[layer].mean(1)  # (M, D): mean of the patch tokens
        for name in tr_t:
            row[name], row[f"{name} majority"] = attribute_probe(tr_pool, tr_t[name], te_pool, te_t[name])
        rows.append(row)
    return rows


MEANING = ("modality", "any lesion", "lesion count", "lesion in right lung", "lesion in left lung", "lesion in liver")


def meaning_skill(row: dict) -> float:
    """How much meaning one hidden state's pooled tokens carry: over the attributes of MEANING,
    the mean *skill* ``(accuracy - majority) / (1 - majority)``, the fraction of the majority
    baseline's mistakes the probe avoids (1: none left; 0: no better than always guessing the
    most common class). Raw accuracy would reward attributes that are easy to guess (a lesion in
    the liver is absent in most images). An attribute whose majority class is every test image
    (majority 1) has no mistakes to avoid and is left out."""
    skills = [(row[a] - row[f"{a} majority"]) / (1 - row[f"{a} majority"]) for a in MEANING
              if a in row and row[f"{a} majority"] < 1]
    return sum(skills) / len(skills) if skills else 0.0


def choose_hvp_layers(rows: list[dict]) -> dict[str, int]:
    """HVP's layer per task chosen from probe results (rows of :func:`run_probes`, in any order,
    for all or some hidden states): generation reads the block output whose tokens keep the
    most detail (``pixel R2``), comprehension the one whose pooled tokens carry the most meaning
    (:func:`meaning_skill`). Only block outputs compete (``layer >= 1``): hidden state 0 is the
    patch embedding, a linear map of the pixels that no block has processed yet. A tie goes to
    the shallower layer. Returns hidden-state indices (paper, "Hierarchical Visual Perception"; the config's
    ``gen_layer`` / ``comp_layer`` hold the paper's fixed choice)."""
    blocks = sorted((r for r in rows if r["layer"] >= 1), key=lambda r: r["layer"])  # shallow first
    if not blocks:
        raise InputError("the probe rows hold no block output (layer >= 1); run run_probes on all layers")
    best = lambda score: max(blocks, key=score)["layer"]  # noqa: E731  max keeps the first of equals
    return {"generation": best(lambda r: r["pixel R2"]), "comprehension": best(meaning_skill)}


def hvp_probe_table(results: dict[str, list[dict]], layers: dict[str, int]) -> list[dict]:
    """The rows of ``run_probes`` for the HVP layers of each encoder, then the majority baseline."""
    metrics = ["pixel R2", "pixel PSNR (dB)", *MEANING]
    rows = [{"encoder": enc, "HVP layer": name, "hidden state": r[layer]["layer"], **{k: r[layer][k] for k in metrics}}
            for enc, r in results.items() for name, layer in layers.items()]
    first = next(iter(results.values()))[0]
    return rows + [{"encoder": "majority class", **{k: first[f"{k} majority"] for k in MEANING}}]


# ----------------------------------------------------------------------------- layer similarity
def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA (Kornblith et al. 2019) of two ``(n, D)`` feature sets of the same n items:
    1 = the same geometry up to rotation and scale, near 0 = unrelated."""
    x, y = x.double() - x.double().mean(0), y.double() - y.double().mean(0)
    return ((y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm())).item()


def layer_similarity(feats: torch.Tensor) -> torch.Tensor:
    """``(L + 1, M, N, D)`` patch tokens -> ``(L + 1, L + 1)`` CKA between every two hidden states."""
    flat = feats.reshape(len(feats), -1, feats.shape[-1])  # (L + 1, M*N, D)
    n = len(flat)
    return torch.tensor([[linear_cka(flat[i], flat[j]) for j in range(n)] for i in range(n)])
