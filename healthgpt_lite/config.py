"""Configuration: dataclasses, named presets (model shapes) and profiles (how long to train).

Two independent axes (docs/ARCHITECTURE.md section 4):

* **preset** = the model's shapes: ``tiny`` (2-core CPU), ``small`` (one GPU, minutes),
  ``m3`` (CLIP-L/14-336 + Phi-3-mini + VQGAN f8-8192, HealthGPT-M3), ``l14`` (phi-4).
* **profile** = how much data and how many steps: ``smoke`` (seconds, CI), ``cpu`` (the real
  lite run), ``gpu``, ``full``.

Everything else is a *dotted override*: ``{"vq.n_embed": 1024}`` or ``"vq.n_embed=1024"``.
An unknown key or a value of the wrong type is a :class:`ConfigError` naming the key,
never a silently ignored typo.

>>> cfg = build_config("tiny", "smoke", {"vq.n_embed": 256})
>>> cfg.vq.n_embed, cfg.vq.grid_size
(256, 16)
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from .errors import ConfigError


# ----------------------------------------------------------------------------- sections
@dataclass
class DataConfig:
    """VL-Health-lite: procedurally generated patients (see ``data/phantoms.py``)."""

    n_patients: int = 720  # patients generated; split train/val/test *by patient*
    image_size: int = 64  # side of every rendered image, px
    sr_factor: int = 4  # super-resolution task: low-res input is image_size / sr_factor
    val_fraction: float = 0.1  # 72 of 720: choices are made here
    test_fraction: float = 0.15  # 108 of 720: a per-type score moves by about +-0.05 (was +-0.08 at 24)
    languages: tuple[str, ...] = ("en", "zh")
    seed: int = 0  # the data set's own seed (independent of the training seed)


@dataclass
class VisionConfig:
    """CLIP ViT + hierarchical visual perception (docs/PAPERS.md section 1)."""

    image_size: int = 64
    patch_size: int = 8
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 512
    projection_dim: int = 128  # CLIP's joint image-text space (CLIP-lite pretraining only)
    gen_layer: int = 1  # HVP: generation reads hidden_states[1] ("concrete")
    comp_layer: int = -2  # HVP: comprehension reads hidden_states[-2] ("abstract")
    pretrained_path: str | None = None  # a local HF CLIP folder; None = CLIP-lite / random
    # CLIP-lite (vision/clip_lite.py): a random ViT has no "eyes", so tiny/small first learn to
    # see by image-caption contrastive pretraining on VL-Health-lite; a tiny text tower helps.
    clip_text_hidden_size: int = 128
    clip_text_layers: int = 2
    clip_text_heads: int = 4
    clip_text_max_len: int = 64  # caption tokens (+ EOS); VL-Health-lite reports need <= 47
    clip_pretrain_patients: int = 0  # extra phantoms (another seed, never in the data set) CLIP-lite also learns from
    clip_short_fraction: float = 0.5  # share of steps an image is paired with its short caption instead of its report
    clip_steps: int = 300  # optimiser steps (per profile, below)
    clip_batch_size: int = 32
    clip_lr: float = 5e-4

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:  # visual tokens per image, CLS dropped
        return self.grid_size**2


@dataclass
class VQConfig:
    """taming-transformers VQGAN (docs/PAPERS.md section 1: f8-8192 for the real presets)."""

    resolution: int = 64
    in_channels: int = 3
    ch: int = 16  # tiny: 16/32/64 channels at 64/32/16 px; as good per step as 32/64/64, 1.75x cheaper (measured)
    ch_mult: tuple[int, ...] = (1, 2, 4)  # downsampling factor f = 2 ** (len(ch_mult) - 1)
    num_res_blocks: int = 1
    attn_resolutions: tuple[int, ...] = (16,)
    z_channels: int = 32
    embed_dim: int = 32
    n_embed: int = 512
    quantizer: str = "ema"  # "vq" | "ema" | "gumbel" (the real f8-8192 checkpoint)
    beta: float = 0.25  # commitment weight
    pretrained_path: str | None = None  # a taming checkpoint (.ckpt / .safetensors)
    # codebook health (vq/quantizer.py): k-means init on the first batch, EMA, dead-code restart
    kmeans_iters: int = 10
    ema_decay: float = 0.99
    dead_code_threshold: float = 1.0  # restart codes used < this many times per batch (running mean); 0: never
    gumbel_temperature: float = 1.0
    gumbel_kl_weight: float = 5e-4
    # training (vq/module.py); steps, batch and lr are per profile (PROFILES)
    l1_weight: float = 1.0  # reconstruction loss = l1_weight * L1 + l2_weight * MSE, on [-1, 1] pixels
    l2_weight: float = 1.0  # L1 + MSE: +1.2 dB val PSNR over L1 alone at 600 steps (measured)
    train_steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    val_every: int = 250  # validation (PSNR, SSIM, codebook usage) every this many steps

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def grid_size(self) -> int:
        return self.resolution // self.downsample

    @property
    def num_tokens(self) -> int:  # image tokens per generated image (raster order)
        return self.grid_size**2


@dataclass
class LLMConfig:
    """The Phi-3-architecture language model (HealthGPT-M3: Phi-3-mini; L14: phi-4)."""

    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 4
    intermediate_size: int = 384
    max_position_embeddings: int = 512
    rope_theta: float = 10000.0
    pretrained_path: str | None = None  # a local HF Phi-3 / phi-4 folder
    tokenizer_path: str | None = None  # None: the tokenizer shipped in data_samples/
    # LLM-lite: the tiny/small presets have no pretrained LLM, so they first learn the language
    # of the corpus (causal LM on the train split's text, no images) as Phi-3 did on the web.
    pretrain_steps: int = 600
    pretrain_batch_size: int = 32
    pretrain_lr: float = 2e-3


@dataclass
class ImageTokensConfig:
    """How the LLM sees the image tokens it writes (``model/image_positions.py``)."""

    # where on the grid the next code goes: "grid" adds learned row + column vectors at the
    # code-predicting positions; "none" = 1-D RoPE only, the paper's design (for ablations)
    positions: str = "grid"


TASKS = ("comprehension", "generation")  # the two tasks; each has its own plugin, adapter and ViT layer
PLUGIN_KINDS = ("hlora", "moelora", "lora")  # H-LoRA and the paper's Table 4 baselines


def rank_split_problem(rank: int, experts: int, prefix: str = "") -> str | None:
    """The one rule on plugin shapes: k experts of rank r each, so the total rank r*k must split
    evenly over k >= 1 experts. Returns what is wrong, naming the settings as ``prefix`` + name
    (``"lora.comprehension."``), or None."""
    if experts < 1 or rank < 1 or rank % experts:
        return f"{prefix}rank={rank} must be a positive multiple of {prefix}experts={experts}"
    return None


@dataclass
class PluginConfig:
    """One H-LoRA task plugin (docs/PAPERS.md section 2): k experts of rank r, stored fused."""

    rank: int = 16  # total rank r*k of the fused A/B matrices
    experts: int = 4  # k
    alpha: float = 32.0  # scale = alpha / (r*k) * k = alpha / r
    dropout: float = 0.05

    @property
    def rank_per_expert(self) -> int:
        return self.rank // self.experts

    @property
    def scale(self) -> float:
        return self.alpha / self.rank_per_expert


@dataclass
class LoRAConfig:
    kind: str = "hlora"  # one of PLUGIN_KINDS
    comprehension: PluginConfig = field(default_factory=PluginConfig)
    generation: PluginConfig = field(default_factory=lambda: PluginConfig(rank=32, alpha=64.0))


@dataclass
class BenchConfig:
    """``bench hlora``: training-step time and memory of LoRA, MoELoRA and H-LoRA (paper Table 4)."""

    sizes: tuple[str, ...] = ("tiny", "wide")  # "tiny": the LLM of cfg.llm; "wide": hidden = wide_hidden
    experts: tuple[int, ...] = (2, 4, 8)  # k; every variant has the same total rank r*k
    rank: int = 64  # total rank r*k (M3 comprehension plugin)
    wide_hidden: int = 1024
    wide_layers: int = 2
    vocab_size: int = 2048
    batch_size: int = 4
    seq_len: int = 128
    warmup: int = 2  # untimed steps per variant (also creates the optimizer state)
    repeats: int = 15  # timed samples per variant, variants interleaved; the median is reported
    threads: int = 1  # CPU threads while timing (1: stable on a shared machine; 0: torch's default)


@dataclass
class EvalConfig:
    """How the evaluation decodes and what it compares with (``eval/evaluate.py``)."""

    # one-to-many tasks (a report does not fix the anatomy) are *sampled*, not decoded greedily:
    # the most likely code in every cell is healthy tissue, so a greedy X-ray shows no lesion
    sample_tasks: tuple[str, ...] = ("report2image",)
    temperature: float = 0.7  # chosen on val with guidance (README "What differs from the paper")
    top_k: int | None = None  # sample from the k likeliest codes (None: all)
    samples: int = 4  # draws per record; their scores are averaged
    guidance: float = 3.0  # report->X-ray: steer away from the lesion-free report (image_decoding.py); 0: off
    pixel_reference_steps: int = 800  # the "what the pixels allow" CNN (eval/pixel_reference.py)
    probe_patients: int = 2000  # fresh phantoms the report->X-ray lesion probe learns from (eval/probe.py)
    probe_steps: int = 600
    probe_batch: int = 64  # phantoms per probe step
    probe_width: int = 16  # channels of the probe's first conv (eval/probe.py LesionProbe)
    probe_lr: float = 2e-3


@dataclass
class TrainConfig:
    """How Lightning runs (every stage): Lightning is the distributed engine, nothing home-made."""

    accelerator: str = "auto"  # "cpu" | "gpu" | "auto"
    devices: int = 1
    strategy: str = "auto"  # "ddp" | "fsdp" | "auto"
    precision: str = "32-true"  # "bf16-mixed" in the gpu / full profiles
    num_workers: int = 0
    log_every_n_steps: int = 10
    # the three stages (docs/PAPERS.md section 3): steps and per-device batch sizes per stage and task
    stage1_comprehension_steps: int = 300
    stage1_generation_steps: int = 400
    stage2_steps: int = 150
    stage3_comprehension_steps: int = 600
    stage3_generation_steps: int = 900
    comp_batch_size: int = 32
    gen_batch_size: int = 8
    stage2_samples: int = 1000  # records per task: "a small mixed sample of all stage-1 data"
    lr_scale: float = 5.0  # x the released M3 learning rates (a 1M-parameter model from near scratch)
    warmup_fraction: float = 0.03
    image_token_noise: float = 0.0  # share of image-code inputs replaced by random codes in training (exposure bias)
    comp_turns: int = 8  # comprehension questions about one image per training conversation (LLaVA's multi-turn records)
    balance_generation_tasks: bool = True  # draw every generation task equally often (not by record count)
    # the stages' global batch = per-device batch x devices x accumulate_grad_batches (sampling.py)
    accumulate_grad_batches: int = 1


@dataclass
class QilinConfig:
    """Qilin-Med-VL's two-stage recipe beside HealthGPT's comprehension plugin, on the Chinese
    records (docs/PAPERS.md section 5, notebook 11). Both recipes get these step budgets (batch:
    ``train.comp_batch_size``, learning rates x ``train.lr_scale``), so only the recipe differs."""

    # cpu-sized (notebook 11 in ``cpu`` within ~10 min on 2 cores; both recipes learn clearly by then)
    stage1_steps: int = 100  # alignment: Qilin stage 1 = HealthGPT stage-1 comprehension
    stage2_steps: int = 200  # instruction tuning: Qilin stage 2 (full fine-tune) = HealthGPT stage-3 comprehension


@dataclass
class AblationConfig:
    """``reproduce --ablations`` / notebook 10: the paper's ablations in miniature (docs/PAPERS.md
    section 4). Every row of a table gets the same data, seeds, steps and total rank."""

    step_fraction: float = 0.25  # each ablation stage trains this fraction of its train.*_steps (>= 1 step)
    seeds: int = 2  # seeds cfg.seed, cfg.seed + 1, ... for the tables whose differences are small
    experts: tuple[int, ...] = (2, 4, 8)  # k of MoELoRA and H-LoRA (paper Table 10)
    gen_mix: tuple[float, ...] = (0.0, 0.5, 1.0)  # task conflict: generation batches per comprehension batch
    comp_limit: int | None = None  # test comprehension records scored per run (None: all)
    gen_limit: int | None = 32  # test records per generation task scored per run (None: all; 0: none, SSIM not scored)
    # CPU threads while training and scoring (0: torch's default). One: the tiny model's matmuls gain
    # nothing from a second thread, and on a shared 2-core machine two were 17x slower (measured).
    threads: int = 1


@dataclass
class Config:
    preset: str = "tiny"
    profile: str = "smoke"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    vq: VQConfig = field(default_factory=VQConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    image_tokens: ImageTokensConfig = field(default_factory=ImageTokensConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    qilin: QilinConfig = field(default_factory=QilinConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self, *sections: str) -> str:
        """A short, stable hash of some sections (``cfg.hash("vq", "data")``), used to key
        artifacts: a stage's output is reused only for the exact config that made it."""
        d = self.to_dict()
        picked = {s: _get_dotted(d, s) for s in (sections or tuple(d))}
        blob = json.dumps(picked, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


# ----------------------------------------------------------------------------- presets
# Each preset is a set of dotted overrides on the defaults above (the defaults *are* tiny).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {},
    # One GPU, minutes, random init: 128 px, 16x16 visual tokens, 16x16 image tokens.
    "small": {
        "data.image_size": 128,
        "vision.image_size": 128, "vision.patch_size": 8, "vision.hidden_size": 384,
        "vision.num_layers": 8, "vision.num_heads": 6, "vision.intermediate_size": 1536,
        "vision.projection_dim": 256,
        "vq.resolution": 128, "vq.ch": 64, "vq.ch_mult": (1, 1, 2, 2), "vq.num_res_blocks": 2,
        "vq.attn_resolutions": (16,), "vq.z_channels": 64, "vq.embed_dim": 64, "vq.n_embed": 1024,
        "llm.hidden_size": 512, "llm.num_layers": 8, "llm.num_heads": 8, "llm.num_kv_heads": 8,
        "llm.intermediate_size": 1536, "llm.max_position_embeddings": 1024,
        "lora.comprehension.rank": 32, "lora.comprehension.alpha": 64.0,
        "lora.generation.rank": 64, "lora.generation.alpha": 128.0,
    },
    # HealthGPT-M3: CLIP ViT-L/14-336, Phi-3-mini-4k-instruct, taming VQGAN f8-8192 (Gumbel).
    "m3": {
        "data.image_size": 256,
        "vision.image_size": 336, "vision.patch_size": 14, "vision.hidden_size": 1024,
        "vision.num_layers": 24, "vision.num_heads": 16, "vision.intermediate_size": 4096,
        "vision.projection_dim": 768,
        "vq.resolution": 256, "vq.ch": 128, "vq.ch_mult": (1, 1, 2, 4), "vq.num_res_blocks": 2,
        "vq.attn_resolutions": (32,), "vq.z_channels": 256, "vq.embed_dim": 256,
        "vq.n_embed": 8192, "vq.quantizer": "gumbel",
        "llm.hidden_size": 3072, "llm.num_layers": 32, "llm.num_heads": 32, "llm.num_kv_heads": 32,
        "llm.intermediate_size": 8192, "llm.max_position_embeddings": 4096,
        # released sizes: comprehension r*k = 64 (alpha 128), generation r*k = 256 (alpha 512)
        "lora.comprehension.rank": 64, "lora.comprehension.alpha": 128.0,
        "lora.generation.rank": 256, "lora.generation.alpha": 512.0,
    },
    # HealthGPT-L14: the same with phi-4 (14B; grouped-query attention, 10 KV heads).
    "l14": {
        "data.image_size": 256,
        "vision.image_size": 336, "vision.patch_size": 14, "vision.hidden_size": 1024,
        "vision.num_layers": 24, "vision.num_heads": 16, "vision.intermediate_size": 4096,
        "vision.projection_dim": 768,
        "vq.resolution": 256, "vq.ch": 128, "vq.ch_mult": (1, 1, 2, 4), "vq.num_res_blocks": 2,
        "vq.attn_resolutions": (32,), "vq.z_channels": 256, "vq.embed_dim": 256,
        "vq.n_embed": 8192, "vq.quantizer": "gumbel",
        "llm.hidden_size": 5120, "llm.num_layers": 40, "llm.num_heads": 40, "llm.num_kv_heads": 10,
        "llm.intermediate_size": 17920, "llm.max_position_embeddings": 16384,
        "llm.rope_theta": 250000.0,
        # released: comprehension r*k = 32 (alpha 64). No L14 generation plugin was released;
        # we keep M3's generation size (a choice, written down here).
        "lora.comprehension.rank": 32, "lora.comprehension.alpha": 64.0,
        "lora.generation.rank": 256, "lora.generation.alpha": 512.0,
    },
}

# ----------------------------------------------------------------------------- profiles
# Each profile is dotted overrides applied after the preset. Later modules add their own
# keys here (training steps per stage, batch sizes), keeping one table per axis.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "data.n_patients": 24,
        "vision.clip_steps": 12, "vision.clip_batch_size": 16,
        "vq.train_steps": 20, "vq.batch_size": 16, "vq.val_every": 10,
        "llm.pretrain_steps": 6, "llm.pretrain_batch_size": 8,
        "train.stage1_comprehension_steps": 3, "train.stage1_generation_steps": 3, "train.stage2_steps": 2,
        "train.stage3_comprehension_steps": 3, "train.stage3_generation_steps": 3,
        "train.comp_batch_size": 4, "train.gen_batch_size": 2, "train.stage2_samples": 16,
        "bench.sizes": ("tiny",), "bench.seq_len": 32, "bench.warmup": 1, "bench.repeats": 8,
        "qilin.stage1_steps": 3, "qilin.stage2_steps": 3,
        "ablation.step_fraction": 0.34, "ablation.seeds": 1, "ablation.comp_limit": 8, "ablation.gen_limit": 0,
        "eval.samples": 2, "eval.pixel_reference_steps": 20, "eval.probe_patients": 64, "eval.probe_steps": 20,
    },
    "cpu": {
        "vision.clip_steps": 1000, "vision.clip_batch_size": 32,
        "vq.train_steps": 600, "vq.batch_size": 16, "vq.lr": 2e-3, "vq.val_every": 100,
        # measured on val: x20 lowers stage-1 generation loss 3.32 -> 2.63 vs x5; x50 diverges
        "train.lr_scale": 20.0,
    },
    "gpu": {
        "data.n_patients": 2000, "train.precision": "bf16-mixed",
        "vision.clip_steps": 1500, "vision.clip_batch_size": 256,
        "vq.train_steps": 5000, "vq.batch_size": 64, "vq.lr": 2e-3, "vq.val_every": 500,
        "llm.pretrain_steps": 3000,
        "qilin.stage1_steps": 300, "qilin.stage2_steps": 600,
    },
    "full": {
        "data.n_patients": 10000, "train.precision": "bf16-mixed",
        "vision.clip_steps": 5000, "vision.clip_batch_size": 512,
        "vq.train_steps": 20000, "vq.batch_size": 128, "vq.lr": 2e-3, "vq.val_every": 1000,
        "llm.pretrain_steps": 10000,
    },
}


# ----------------------------------------------------------------------------- building
def build_config(
    preset: str = "tiny",
    profile: str = "smoke",
    overrides: Mapping[str, Any] | list[str] | str | None = None,
    seed: int = 0,
) -> Config:
    """The one way to make a :class:`Config`: defaults <- preset <- profile <- overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    cfg = Config(preset=preset, profile=profile, seed=int(seed))
    apply_overrides(cfg, PRESETS[preset], source=f"preset {preset!r}")
    apply_overrides(cfg, PROFILES[profile], source=f"profile {profile!r}")
    apply_overrides(cfg, parse_overrides(overrides), source="overrides")
    validate(cfg)
    return cfg


def parse_overrides(overrides: Mapping[str, Any] | list[str] | str | None) -> dict[str, Any]:
    """Accept a dict, a list of ``"key=value"`` strings, or one comma-free such string.
    Values in strings are parsed as YAML literals (``3``, ``1e-3``, ``[1, 2]``, ``null``)."""
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    if isinstance(overrides, str):
        overrides = [overrides] if overrides.strip() else []
    out: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. vq.n_embed=256)")
        key, raw = item.split("=", 1)
        out[key.strip()] = _yaml_literal(raw)
    return out


def _yaml_literal(raw: str) -> Any:
    value = yaml.safe_load(raw)
    if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string; a number was meant
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(cfg: Config, overrides: Mapping[str, Any], source: str = "overrides") -> Config:
    """Set dotted keys in place, strictly: unknown keys and ill-typed values are errors."""
    for key, value in overrides.items():
        parent, name = _resolve(cfg, key, source)
        hint = typing.get_type_hints(type(parent))[name]
        setattr(parent, name, _coerce(value, hint, key, source))
    return cfg


def validate(cfg: Config) -> None:
    """Shape consistency that would otherwise fail deep inside torch."""
    v, q, m = cfg.vision, cfg.vq, cfg.llm
    if v.image_size % v.patch_size:
        raise ConfigError(f"vision.image_size={v.image_size} is not a multiple of vision.patch_size={v.patch_size}")
    if q.resolution % q.downsample:
        raise ConfigError(f"vq.resolution={q.resolution} is not a multiple of the VQ downsampling {q.downsample}")
    if q.quantizer not in ("vq", "ema", "gumbel"):
        raise ConfigError(f"vq.quantizer={q.quantizer!r}; choose 'vq', 'ema' or 'gumbel'")
    if m.hidden_size % m.num_heads or m.num_heads % m.num_kv_heads:
        raise ConfigError(
            f"llm.hidden_size={m.hidden_size}, num_heads={m.num_heads}, num_kv_heads={m.num_kv_heads}: "
            "heads must divide the hidden size and KV heads must divide the heads")
    if cfg.image_tokens.positions not in ("none", "grid"):
        raise ConfigError(f"image_tokens.positions={cfg.image_tokens.positions!r}; choose 'grid' or 'none' "
                          "(the paper's 1-D RoPE only)")
    if cfg.lora.kind not in PLUGIN_KINDS:
        raise ConfigError(f"lora.kind={cfg.lora.kind!r}; choose one of {PLUGIN_KINDS}")
    for task in TASKS:
        p = getattr(cfg.lora, task)
        if problem := rank_split_problem(p.rank, p.experts, f"lora.{task}."):
            raise ConfigError(problem)
    for layer, name in ((v.gen_layer, "gen_layer"), (v.comp_layer, "comp_layer")):
        if not -(v.num_layers + 1) <= layer <= v.num_layers:
            raise ConfigError(f"vision.{name}={layer} is not a hidden-state index of a {v.num_layers}-layer ViT")
    if not 0 < cfg.ablation.step_fraction <= 1 or cfg.ablation.seeds < 1:
        raise ConfigError(f"ablation.step_fraction={cfg.ablation.step_fraction} must lie in (0, 1] and "
                          f"ablation.seeds={cfg.ablation.seeds} must be >= 1")
    if not 0 < cfg.data.val_fraction + cfg.data.test_fraction < 1:
        raise ConfigError("data.val_fraction + data.test_fraction must lie in (0, 1)")
    if cfg.data.image_size % cfg.data.sr_factor:
        raise ConfigError(f"data.image_size={cfg.data.image_size} is not a multiple of data.sr_factor={cfg.data.sr_factor}")


def config_from_dict(d: Mapping[str, Any]) -> Config:
    """Rebuild a Config saved with ``to_dict()`` (artifact metadata), strictly."""
    d = copy.deepcopy(dict(d))
    cfg = build_config(d.pop("preset", "tiny"), d.pop("profile", "smoke"), seed=d.pop("seed", 0))
    flat = dict(_flatten(d))
    apply_overrides(cfg, flat, source="saved config")
    validate(cfg)
    return cfg


# ----------------------------------------------------------------------------- helpers
def _flatten(d: Mapping[str, Any], prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, Mapping):
            yield from _flatten(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _get_dotted(d: Mapping[str, Any], key: str) -> Any:
    for part in key.split("."):
        d = d[part]
    return d


def _resolve(cfg: Config, key: str, source: str):
    parts = key.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(obj)]
        if part not in names:
            prefix = ".".join(parts[:i])
            known = [f"{prefix}.{n}" if prefix else n for n in names]
            close = difflib.get_close_matches(key, sorted(set(known + _all_keys(cfg))), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known here: {', '.join(known)}"
            raise ConfigError(f"unknown config key {key!r} in {source}{hint}")
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(obj, part)):
                raise ConfigError(f"{key!r} in {source} is a section, not a value; set one of its keys")
            return obj, part
        obj = getattr(obj, part)
        if not dataclasses.is_dataclass(obj):
            raise ConfigError(f"unknown config key {key!r} in {source}: {'.'.join(parts[:i + 1])} is a value")
    raise ConfigError(f"empty config key in {source}")


def _all_keys(cfg: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        keys += _all_keys(v, f"{prefix}{f.name}.") if dataclasses.is_dataclass(v) else [prefix + f.name]
    return keys


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    bad = ConfigError(f"{key}={value!r} in {source}: expected {_type_name(hint)}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, source)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        return tuple(_coerce(v, args[0], key, source) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad
        return value
    return value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
