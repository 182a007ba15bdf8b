"""The VQGAN autoencoder: image -> grid of code indices -> image (docs/PAPERS.md section 1).

    x (B, 3, H, W) in [-1, 1]
      -> encoder -> (B, z_channels, h, w)        h = H / f, f = 2 ** (len(ch_mult) - 1)
      -> quant_conv -> (B, embed_dim, h, w)
      -> quantize -> indices (B, h, w), codes (B, embed_dim, h, w)
      -> post_quant_conv -> decoder -> (B, 3, H, W)

Layout and names follow taming-transformers (``Encoder``/``Decoder`` of
``diffusionmodules/model.py``, ``VQModel``/``GumbelVQ`` of ``models/vqgan.py``) so that the real
HealthGPT tokenizer (f8, 8192 codes, Gumbel) loads by name; see ``vq/convert.py``.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..config import VQConfig
from .blocks import AttnBlock, Downsample, ResnetBlock, Upsample, normalize, swish
from .quantizer import GumbelQuantizer, Quantized, VectorQuantizer


class Encoder(nn.Module):
    """conv_in, then per level ``num_res_blocks`` ResnetBlocks (+ attention at the resolutions in
    ``attn_resolutions``) and a Downsample (not after the last level), mid block, conv_out."""

    def __init__(self, cfg: VQConfig):
        super().__init__()
        ch, mult = cfg.ch, (1, *cfg.ch_mult)
        self.conv_in = nn.Conv2d(cfg.in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        res, block_in = cfg.resolution, ch
        for level in range(len(cfg.ch_mult)):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            block_out = ch * mult[level + 1]
            for _ in range(cfg.num_res_blocks):
                stage.block.append(ResnetBlock(block_in, block_out))
                block_in = block_out
                if res in cfg.attn_resolutions:
                    stage.attn.append(AttnBlock(block_in))
            if level != len(cfg.ch_mult) - 1:
                stage.downsample = Downsample(block_in)
                res //= 2
            self.down.append(stage)
        self.mid = _mid(block_in)
        self.norm_out = normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, cfg.z_channels, 3, padding=1)  # taming: double_z=False

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, z_channels, h, w)
        h = self.conv_in(x)
        for stage in self.down:
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "downsample"):
                h = stage.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(swish(self.norm_out(h)))


class Decoder(nn.Module):
    """The mirror image: conv_in, mid block, per level (lowest resolution first)
    ``num_res_blocks + 1`` ResnetBlocks (+ attention) and an Upsample, conv_out to RGB.
    ``up`` is indexed like ``down`` (``up[0]`` is the full-resolution level), as in taming."""

    def __init__(self, cfg: VQConfig):
        super().__init__()
        ch, levels = cfg.ch, len(cfg.ch_mult)
        block_in = ch * cfg.ch_mult[-1]
        res = cfg.resolution // 2 ** (levels - 1)
        self.conv_in = nn.Conv2d(cfg.z_channels, block_in, 3, padding=1)
        self.mid = _mid(block_in)
        stages = []
        for level in reversed(range(levels)):
            stage = nn.Module()
            stage.block, stage.attn = nn.ModuleList(), nn.ModuleList()
            block_out = ch * cfg.ch_mult[level]
            for _ in range(cfg.num_res_blocks + 1):
                stage.block.append(ResnetBlock(block_in, block_out))
                block_in = block_out
                if res in cfg.attn_resolutions:
                    stage.attn.append(AttnBlock(block_in))
            if level != 0:
                stage.upsample = Upsample(block_in)
                res *= 2
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)
        self.norm_out = normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, cfg.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, z_channels, h, w) -> (B, 3, H, W)
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for stage in reversed(self.up):
            for i, block in enumerate(stage.block):
                h = block(h)
                if len(stage.attn):
                    h = stage.attn[i](h)
            if hasattr(stage, "upsample"):
                h = stage.upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


def _mid(channels: int) -> nn.Module:
    mid = nn.Module()
    mid.block_1, mid.attn_1, mid.block_2 = ResnetBlock(channels, channels), AttnBlock(channels), ResnetBlock(channels, channels)
    return mid


def make_quantizer(cfg: VQConfig) -> nn.Module:
    if cfg.quantizer == "gumbel":
        return GumbelQuantizer(cfg.embed_dim, cfg.n_embed, cfg.embed_dim, cfg.gumbel_temperature, cfg.gumbel_kl_weight)
    return VectorQuantizer(cfg.n_embed, cfg.embed_dim, cfg.beta, ema=cfg.quantizer == "ema", decay=cfg.ema_decay,
                           dead_threshold=cfg.dead_code_threshold, kmeans_iters=cfg.kmeans_iters)


class VQGAN(nn.Module):
    """taming's ``VQModel`` / ``GumbelVQ`` without the loss and the discriminator."""

    def __init__(self, cfg: VQConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.quant_conv = nn.Conv2d(cfg.z_channels, cfg.embed_dim, 1)
        self.quantize = make_quantizer(cfg)
        self.post_quant_conv = nn.Conv2d(cfg.embed_dim, cfg.z_channels, 1)
        self.decoder = Decoder(cfg)

    def encode(self, x: torch.Tensor) -> Quantized:  # x (B, 3, H, W) in [-1, 1]
        return self.quantize(self.quant_conv(self.encoder(x)))

    def decode(self, quantized: torch.Tensor) -> torch.Tensor:  # (B, embed_dim, h, w) -> (B, 3, H, W)
        return self.decoder(self.post_quant_conv(quantized))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:  # (B, h, w) -> (B, 3, H, W)
        return self.decode(self.quantize.lookup(indices))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized]:
        q = self.encode(x)
        return self.decode(q.quantized), q
