"""Vector quantizers: continuous encoder vectors -> indices into a codebook (docs/PAPERS.md section 1).

* :class:`VectorQuantizer`: nearest code (L2), straight-through gradients, commitment loss
  (van den Oord et al. 2017, "Neural Discrete Representation Learning", eq. 3). Codebook
  health, without which most codes die on a small data set:
  - **data init**: on the first training batch the codebook becomes k-means centroids of the
    encoder's outputs (instead of taming's tiny uniform init, far from the data);
  - **EMA updates** (``ema=True``, Razavi et al. 2019, VQ-VAE-2 appendix): the codebook is a
    running average of the vectors assigned to each code, not a gradient-trained parameter;
  - **dead-code restart**: a code used less than ``dead_threshold`` times per batch (running
    average) is moved onto a random encoder output of the current batch (Jukebox, Dhariwal 2020).
* :class:`GumbelQuantizer`: the quantizer of the real HealthGPT tokenizer (taming f8-8192):
  a 1x1 conv gives logits over the codes; training samples a hard Gumbel-softmax one-hot.

Both return a :class:`Quantized` ``(quantized, loss, indices)`` and offer ``lookup(indices)``.
Parameter names follow taming (``embedding.weight``; Gumbel: ``proj``, ``embed``) so real
checkpoints load by name (``vq/convert.py``).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F


class Quantized(NamedTuple):
    quantized: torch.Tensor  # (B, D, h, w) codebook vectors, gradients pass straight through to z
    loss: torch.Tensor  # () codebook + commitment loss (Gumbel: the KL-to-uniform prior)
    indices: torch.Tensor  # (B, h, w) int64 code per position, raster order


class VectorQuantizer(nn.Module):
    # buffers a taming checkpoint does not have: training statistics, rebuilt by `reset_statistics`
    STATISTICS = ("initialized", "cluster_size", "embed_sum")

    def __init__(self, n_embed: int, embed_dim: int, beta: float = 0.25, ema: bool = False,
                 decay: float = 0.99, dead_threshold: float = 1.0, kmeans_iters: int = 10):
        super().__init__()
        self.n_embed, self.embed_dim, self.beta, self.ema = n_embed, embed_dim, beta, ema
        self.decay, self.dead_threshold, self.kmeans_iters = decay, dead_threshold, kmeans_iters
        self.embedding = nn.Embedding(n_embed, embed_dim)  # taming: quantize.embedding.weight
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)
        self.embedding.weight.requires_grad_(not ema)  # EMA: moved by averages, not by the optimiser
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("cluster_size", torch.zeros(n_embed))  # running count per code, (N,)
        self.register_buffer("embed_sum", torch.zeros(n_embed, embed_dim))  # running sum per code, (N, D)

    # ------------------------------------------------------------------ assignment
    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of ``flat`` (M, D) -> (M,), squared L2."""
        codes = self.embedding.weight  # (N, D)
        d2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ codes.t() + codes.pow(2).sum(1)  # (M, N)
        return d2.argmin(1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) indices -> (B, D, h, w) codebook vectors."""
        return self.embedding(indices).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> Quantized:
        with torch.autocast(z.device.type, enabled=False):  # distances in the codebook dtype (float32), even under bf16-mixed
            return self._quantize(z.to(self.embedding.weight.dtype))

    def _quantize(self, z: torch.Tensor) -> Quantized:
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)  # (B*h*w, D)
        if self.training and not bool(self.initialized):
            self._init_from_data(flat.detach())
        idx = self.nearest(flat)  # (B*h*w,)
        z_q = self.embedding(idx)  # (B*h*w, D)
        commitment = F.mse_loss(flat, z_q.detach())  # pulls the encoder towards its code
        if self.ema:
            loss = self.beta * commitment
        else:  # the codebook term pulls codes towards the encoder (taming's legacy mode swaps beta)
            loss = F.mse_loss(z_q, flat.detach()) + self.beta * commitment
        if self.training:
            self._update_statistics(flat.detach(), idx)
        z_q = flat + (z_q - flat).detach()  # straight-through estimator: d z_q / d z = identity
        quantized = z_q.view(b, h, w, d).permute(0, 3, 1, 2).contiguous()  # (B, D, h, w)
        return Quantized(quantized, loss, idx.view(b, h, w))

    # ------------------------------------------------------------------ codebook health
    @torch.no_grad()
    def _init_from_data(self, flat: torch.Tensor) -> None:
        """k-means on the first batch: k-means++ seeds (Arthur & Vassilvitskii 2007), then Lloyd steps."""
        codes = _kmeans_plus_plus(flat, self.n_embed)  # (N, D)
        for _ in range(self.kmeans_iters):
            assign = torch.cdist(flat, codes).argmin(1)  # (M,)
            counts = torch.bincount(assign, minlength=self.n_embed).float()  # (N,)
            sums = torch.zeros_like(codes).index_add_(0, assign, flat)  # (N, D)
            filled = counts > 0  # an empty cluster keeps its seed
            codes[filled] = sums[filled] / counts[filled, None]
        self.embedding.weight.data.copy_(_from_rank0(codes))
        self.reset_statistics()

    @torch.no_grad()
    def reset_statistics(self, count: float | None = None) -> None:
        """Restart the running statistics from the current codebook (after init or loading
        weights that came without them, e.g. a taming checkpoint)."""
        count = self.dead_threshold if count is None else count
        self.cluster_size.fill_(max(count, 1e-3))
        self.embed_sum.copy_(self.embedding.weight.data * self.cluster_size[:, None])
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update_statistics(self, flat: torch.Tensor, idx: torch.Tensor) -> None:
        counts = _summed(torch.bincount(idx, minlength=self.n_embed).to(flat.dtype))  # (N,), over all processes
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.ema:
            sums = _summed(torch.zeros_like(self.embed_sum).index_add_(0, idx, flat))  # (N, D)
            self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            # Laplace smoothing keeps a rarely used code from dividing by ~0
            n, eps = self.cluster_size.sum(), 1e-5
            size = (self.cluster_size + eps) / (n + self.n_embed * eps) * n  # (N,)
            self.embedding.weight.data.copy_(self.embed_sum / size[:, None])
        if self.dead_threshold > 0:
            self._restart_dead_codes(flat)

    @torch.no_grad()
    def _restart_dead_codes(self, flat: torch.Tensor) -> None:
        dead = (self.cluster_size < self.dead_threshold).nonzero().squeeze(1)  # (n_dead,)
        if len(dead) == 0:
            return
        pick = _from_rank0(flat[torch.randint(len(flat), (len(dead),), device=flat.device)])  # (n_dead, D)
        self.embedding.weight.data[dead] = pick
        self.cluster_size[dead] = self.dead_threshold  # one batch of grace before it can die again
        self.embed_sum[dead] = pick * self.dead_threshold


# Under DDP every process sees its own batch: statistics are summed over processes and random
# choices (init, restarts) come from rank 0, so all copies of the codebook stay identical.
def _summed(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t


def _from_rank0(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(t, src=0)
    return t


def _kmeans_plus_plus(flat: torch.Tensor, k: int) -> torch.Tensor:
    """k seeds from the rows of ``flat`` (M, D), each drawn with probability proportional to its
    squared distance to the seeds so far: spread out, so no two codes start in one cluster."""
    seeds = [flat[torch.randint(len(flat), ()).item()]]
    d2 = (flat - seeds[0]).pow(2).sum(1)  # (M,) squared distance to the nearest seed
    for _ in range(k - 1):
        i = torch.multinomial(d2, 1).item() if d2.sum() > 0 else torch.randint(len(flat), ()).item()
        seeds.append(flat[i])
        d2 = torch.minimum(d2, (flat - flat[i]).pow(2).sum(1))
    return torch.stack(seeds).clone()  # (k, D)


class GumbelQuantizer(nn.Module):
    """taming's GumbelQuantize (Jang et al. 2016, Gumbel-softmax): ``proj`` is a 1x1 conv from the
    encoder's features to one logit per code; ``embed`` holds the code vectors.

    A choice written down here: at eval time the index is the *argmax* of the logits (taming
    samples Gumbel noise even in eval, which makes encoding random); training samples a hard
    one-hot with straight-through gradients."""

    STATISTICS: tuple[str, ...] = ()

    def __init__(self, in_channels: int, n_embed: int, embed_dim: int, temperature: float = 1.0,
                 kl_weight: float = 5e-4):
        super().__init__()
        self.n_embed, self.embed_dim = n_embed, embed_dim
        self.temperature, self.kl_weight = temperature, kl_weight
        self.proj = nn.Conv2d(in_channels, n_embed, 1)  # taming: quantize.proj
        self.embed = nn.Embedding(n_embed, embed_dim)  # taming: quantize.embed

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) indices -> (B, D, h, w) codebook vectors."""
        return self.embed(indices).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> Quantized:
        logits = self.proj(z)  # (B, N, h, w)
        indices = logits.argmax(1)  # (B, h, w)
        if self.training:
            one_hot = F.gumbel_softmax(logits, tau=self.temperature, dim=1, hard=True)  # (B, N, h, w)
            indices = one_hot.argmax(1)
            quantized = torch.einsum("bnhw,nd->bdhw", one_hot, self.embed.weight)  # (B, D, h, w)
        else:
            quantized = self.lookup(indices)
        # KL(q || uniform prior) keeps the code distribution spread out
        q = F.softmax(logits, dim=1)  # (B, N, h, w)
        loss = self.kl_weight * (q * torch.log(q * self.n_embed + 1e-10)).sum(1).mean()
        return Quantized(quantized, loss, indices)
