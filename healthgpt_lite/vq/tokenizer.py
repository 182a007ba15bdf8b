"""``VQTokenizer``: images become words (docs/PAPERS.md section 1, "image out").

HealthGPT writes an image as ``<start_index> <idx_i>... <end_index>``: the indices are the
codes a frozen VQGAN assigns to the image's grid cells, in raster order, and the VQGAN's
decoder turns indices the LLM generated back into pixels. This class is that frozen tokenizer:
no Lightning, no gradients, strict about its inputs (a wrong shape would otherwise surface as
a deep convolution error, or worse, as a silently wrong image).

    tok = load_vq_tokenizer(cfg)              # vq/artifact.py
    idx = tok.encode(images)                  # (B, 3|1, R, R) in [0, 1] -> (B, h, w) int64
    images = tok.decode(idx)                  # (B, h, w) or (B, h*w)    -> (B, 3, R, R) in [0, 1]
"""
from __future__ import annotations

import torch

from ..errors import InputError
from .module import to_image_range, to_model_range
from .vqgan import VQGAN


class VQTokenizer:
    def __init__(self, model: VQGAN):
        self.model = model.eval().requires_grad_(False)
        self.cfg = model.cfg

    @property
    def grid_size(self) -> int:  # h = w = resolution / f
        return self.cfg.grid_size

    @property
    def n_codes(self) -> int:
        return self.cfg.n_embed

    @property
    def resolution(self) -> int:
        return self.cfg.resolution

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device) -> "VQTokenizer":
        self.model.to(device)
        return self

    def __repr__(self) -> str:
        return (f"VQTokenizer({self.resolution}x{self.resolution} px -> {self.grid_size}x{self.grid_size} = "
                f"{self.grid_size ** 2} tokens, {self.n_codes} codes, quantizer={self.cfg.quantizer!r})")

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) or (B, 1, R, R) float in [0, 1] -> (B, h, w) int64 code indices."""
        self._check_images(images)
        x = to_model_range(images.to(self.device, torch.float32))  # (B, 3, R, R) in [-1, 1]
        return self.model.encode(x).indices.to(images.device)  # (B, h, w)

    @torch.no_grad()
    def decode(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, h, w) or raster-flat (B, h*w) integer indices -> (B, 3, R, R) images in [0, 1]."""
        grid = self._check_indices(indices)  # (B, h, w)
        return to_image_range(self.model.decode_indices(grid.to(self.device))).to(indices.device)

    def codebook(self) -> torch.Tensor:
        """The code vectors, ``(n_codes, embed_dim)``: row k is what ``<idx_k>`` stands for."""
        q = self.model.quantize
        return (q.embed if hasattr(q, "embed") else q.embedding).weight.detach().clone()

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """encode then decode: what the LLM's image tokens can express of ``images``."""
        return self.decode(self.encode(images))

    # ------------------------------------------------------------------ input checks
    def _check_images(self, images) -> None:
        r = self.resolution
        if not isinstance(images, torch.Tensor):
            raise InputError(f"VQTokenizer.encode: expected a torch.Tensor of images, got {type(images).__name__}")
        if images.ndim != 4:
            raise InputError(f"VQTokenizer.encode: images of shape {tuple(images.shape)}; expected (B, C, {r}, {r}) "
                             "(one image: images[None])")
        if not images.is_floating_point():
            raise InputError(f"VQTokenizer.encode: images of dtype {images.dtype}; expected float in [0, 1] "
                             "(8-bit data: images.float() / 255)")
        b, c, h, w = images.shape
        if b == 0:
            raise InputError("VQTokenizer.encode: empty batch (B = 0)")
        if c not in (1, 3):
            raise InputError(f"VQTokenizer.encode: {c} channels; expected 3 (RGB) or 1 (gray, replicated)")
        if (h, w) != (r, r):
            raise InputError(f"VQTokenizer.encode: images are {h}x{w} px; this tokenizer takes {r}x{r} "
                             f"(load with load_image(path, size={r}))")
        if not torch.isfinite(images).all():
            raise InputError("VQTokenizer.encode: images contain NaN or infinite values")
        lo, hi = images.min().item(), images.max().item()
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise InputError(f"VQTokenizer.encode: pixel values span [{lo:.3g}, {hi:.3g}]; expected [0, 1] "
                             "(the [-1, 1] conversion happens inside)")

    def _check_indices(self, indices) -> torch.Tensor:
        g, n = self.grid_size, self.n_codes
        if not isinstance(indices, torch.Tensor):
            raise InputError(f"VQTokenizer.decode: expected a torch.Tensor of indices, got {type(indices).__name__}")
        if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
            raise InputError(f"VQTokenizer.decode: indices of dtype {indices.dtype}; expected an integer tensor")
        if indices.ndim == 2 and indices.shape[1] == g * g:
            indices = indices.view(-1, g, g)  # raster order, as the LLM writes them
        if indices.ndim != 3 or tuple(indices.shape[1:]) != (g, g) or indices.shape[0] == 0:
            raise InputError(f"VQTokenizer.decode: indices of shape {tuple(indices.shape)}; expected (B, {g}, {g}) "
                             f"or (B, {g * g}) with B >= 1")
        lo, hi = indices.min().item(), indices.max().item()
        if lo < 0 or hi >= n:
            raise InputError(f"VQTokenizer.decode: indices span [{lo}, {hi}]; this codebook has codes 0..{n - 1}")
        return indices.long()
