"""The frozen CLIP ViT and hierarchical visual perception (HVP), docs/PAPERS.md section 1.

A ViT cuts a ``(3, H, W)`` image into ``(H/p) x (W/p)`` patches, embeds each as a token, prepends
a CLS token and runs ``L`` transformer blocks. HuggingFace returns every block's output:

    hidden_states[0]  = pre_layrnorm(patch + position embeddings)   (no block run yet)
    hidden_states[i]  = output of block i, i = 1..L                  (L + 1 entries in all)

HVP (HealthGPT paper, "Hierarchical Visual Perception") reads **one** of them per task, no fusion:
generation reads ``hidden_states[1]`` ("concrete": close to the pixels), comprehension reads
``hidden_states[-2]`` ("abstract"), as LLaVA does. The CLS token is dropped: ``(B, N, D)`` with
``N = (image_size / patch_size) ** 2`` (576 for CLIP-L/14-336, 64 for tiny).

Weights: ``tiny`` / ``small`` build the ViT from ``cfg.vision`` (random, then CLIP-lite
pretrained, see ``clip_lite.py``); ``m3`` / ``l14`` load ``openai/clip-vit-large-patch14-336``
from a local folder (``cfg.vision.pretrained_path``); nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModel

from ..config import TASKS, VisionConfig
from ..errors import InputError

# CLIP's pixel statistics (OpenAI CLIP preprocessing); inputs arrive in [0, 1] from load_image.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Fields a loaded checkpoint must agree on with cfg.vision (HF name -> our name).
SHAPE_FIELDS = {"image_size": "image_size", "patch_size": "patch_size", "hidden_size": "hidden_size",
                "num_hidden_layers": "num_layers", "num_attention_heads": "num_heads",
                "intermediate_size": "intermediate_size", "num_channels": None}


def clip_vision_config(v: VisionConfig) -> CLIPVisionConfig:
    """The HF config of the ViT described by ``cfg.vision`` (quick_gelu, as OpenAI's CLIP)."""
    return CLIPVisionConfig(image_size=v.image_size, patch_size=v.patch_size, hidden_size=v.hidden_size,
                            num_hidden_layers=v.num_layers, num_attention_heads=v.num_heads,
                            intermediate_size=v.intermediate_size, projection_dim=v.projection_dim,
                            num_channels=3, hidden_act="quick_gelu")


def build_clip_vision(v: VisionConfig, seed: int | None = None) -> CLIPVisionModel:
    """A randomly initialised CLIP ViT with the shapes of ``cfg.vision`` (seeded if asked)."""
    if seed is not None:
        torch.manual_seed(seed)
    return CLIPVisionModel(clip_vision_config(v))


def load_clip_vision(path: str | Path, v: VisionConfig, dtype: torch.dtype = torch.float32) -> CLIPVisionModel:
    """Load a CLIP ViT saved with ``save_pretrained`` (a ``CLIPVisionModel`` folder, or a whole
    ``CLIPModel`` folder such as ``openai/clip-vit-large-patch14-336``), refusing one whose
    shapes differ from ``cfg.vision`` or whose vision weights are incomplete."""
    from transformers.utils import logging as hf_logging

    path = Path(path)
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: no CLIP checkpoint here (config.json missing); vision.pretrained_path must be "
                         "a local folder saved with save_pretrained, e.g. openai/clip-vit-large-patch14-336")
    try:
        hf_cfg = CLIPVisionConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path}/config.json is not a CLIP config ({e})") from None
    expected = clip_vision_config(v)
    wrong = [f"{k}={getattr(hf_cfg, k)} (expected {getattr(expected, k)}"
             + (f", vision.{ours})" if ours else ")")
             for k, ours in SHAPE_FIELDS.items() if getattr(hf_cfg, k) != getattr(expected, k)]
    if wrong:
        raise InputError(f"{path}: this CLIP does not have the shapes of the configured vision encoder: "
                         f"{', '.join(wrong)}; pick the matching preset or override the vision.* fields")
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # a whole CLIPModel folder has text weights we skip on purpose
    hf_logging.disable_progress_bar()
    try:
        model, info = CLIPVisionModel.from_pretrained(str(path), local_files_only=True, dtype=dtype,
                                                      output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise InputError(f"{path}: cannot load the CLIP vision weights ({e})") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:  # restore, never switch on bars a caller (a smoke notebook) switched off
            hf_logging.enable_progress_bar()
    if info["missing_keys"] or info["mismatched_keys"]:  # strict: never a half-random encoder
        bad = sorted(info["missing_keys"]) + sorted(str(k) for k in info["mismatched_keys"])
        raise InputError(f"{path}: the checkpoint lacks or mis-shapes {len(bad)} vision weights, e.g. {bad[:3]}")
    return model


# ----------------------------------------------------------------------------- HVP
def check_pixels(pixels, image_size: int) -> None:
    """Pixels must be a float batch ``(B, 3, S, S)`` in [0, 1] (what ``load_image`` returns, stacked)."""
    if not isinstance(pixels, torch.Tensor):
        raise InputError(f"pixels: expected a torch.Tensor (B, 3, {image_size}, {image_size}), got {type(pixels).__name__}")
    if pixels.ndim != 4:
        hint = "; add a batch dimension: pixels[None]" if pixels.ndim == 3 else ""
        raise InputError(f"pixels: expected 4 dims (B, 3, H, W), got shape {tuple(pixels.shape)}{hint}")
    if pixels.shape[1] != 3:
        raise InputError(f"pixels: expected 3 channels, got {pixels.shape[1]} (shape {tuple(pixels.shape)}); "
                         "load images with load_image(..., channels=3)")
    if tuple(pixels.shape[-2:]) != (image_size, image_size):
        raise InputError(f"pixels: expected {image_size}x{image_size} images (vision.image_size), got "
                         f"{pixels.shape[-2]}x{pixels.shape[-1]}; load them with load_image(..., size={image_size})")
    if not pixels.is_floating_point():
        raise InputError(f"pixels: expected floats in [0, 1], got dtype {pixels.dtype}")
    if pixels.numel() and not (torch.isfinite(pixels).all() and pixels.min() >= -1e-3 and pixels.max() <= 1 + 1e-3):
        raise InputError(f"pixels: values must be finite and in [0, 1] (got min {pixels.min().item():.3g}, "
                         f"max {pixels.max().item():.3g}); give raw pixels, the encoder normalises them itself")


def normalize_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> CLIP's input statistics, channel by channel."""
    mean = pixels.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = pixels.new_tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std  # (B, 3, H, W)


class HVPEncoder(nn.Module):
    """Frozen CLIP ViT; ``forward(pixels, task)`` returns the patch tokens of the task's layer.

    >>> enc = HVPEncoder.from_config(build_config("tiny").vision)   # doctest: +SKIP
    >>> enc(torch.rand(2, 3, 64, 64), "comprehension").shape        # doctest: +SKIP
    torch.Size([2, 64, 128])
    """

    def __init__(self, clip: CLIPVisionModel, v: VisionConfig):
        super().__init__()
        self.clip = clip
        self.image_size = clip.config.image_size
        self.layers = {"comprehension": v.comp_layer, "generation": v.gen_layer}  # HVP: one layer per task
        self.clip.requires_grad_(False)  # always frozen (paper: the vision encoder is never trained)
        self.clip.eval()

    @classmethod
    def from_config(cls, v: VisionConfig, seed: int | None = None) -> "HVPEncoder":
        return cls(build_clip_vision(v, seed), v)

    @classmethod
    def from_pretrained(cls, path: str | Path, v: VisionConfig, dtype: torch.dtype = torch.float32) -> "HVPEncoder":
        return cls(load_clip_vision(path, v, dtype), v)

    @property
    def hidden_size(self) -> int:
        return self.clip.config.hidden_size

    @property
    def num_tokens(self) -> int:
        return (self.image_size // self.clip.config.patch_size) ** 2

    def train(self, mode: bool = True) -> "HVPEncoder":
        super().train(mode)
        self.clip.eval()  # frozen means eval too: no dropout, whatever the parent model does
        return self

    @torch.no_grad()
    def hidden_states(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """All ``L + 1`` hidden states, CLS included: each ``(B, 1 + N, D)``."""
        check_pixels(pixels, self.image_size)
        dtype = next(self.clip.parameters()).dtype
        x = normalize_pixels(pixels.float()).to(dtype)  # (B, 3, H, W)
        return self.clip(pixel_values=x, output_hidden_states=True).hidden_states

    def forward(self, pixels: torch.Tensor, task: str) -> torch.Tensor:
        """``(B, 3, S, S)`` in [0, 1] -> ``(B, N, D)`` patch tokens of the task's layer."""
        if task not in self.layers:
            raise InputError(f"task={task!r}: expected one of {TASKS}")
        return self.hidden_states(pixels)[self.layers[task]][:, 1:]  # (B, N, D): CLS dropped
