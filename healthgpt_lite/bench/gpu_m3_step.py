"""``gpu-check --mode m3-step``: stage-3 training steps of HealthGPT-M3's real shapes on one GPU,
measured against the meta-device plan of notebook 12.

The model is the one ``scale.build_meta_model`` plans (CLIP ViT-L/14-336 + Phi-3-mini with
both H-LoRA plugins + the VQGAN f8-8192), built by the same ``training.pipeline.build_model``
with random weights directly on the GPU: no download. The stage is ``stage3_comprehension``
(paper, "Three-stage Learning Strategy": the comprehension plugin and the abstract adapter train), with the
per-GPU micro-batch of ``configs/m3_stage3.yaml`` and the plan's sample, the longest
comprehension one (``scale/plan.py``: a report):

    input_ids (B, T) = B x [ template + instruction (33) | <image> x 576 | report (150) ]
    pixels    (B, 3, 336, 336)   -> frozen ViT -> (B, 576, 1024) -> adapter -> (B, 576, 3072)

A step is what Lightning's ``bf16-mixed`` does: fp32 weights, forward and loss under
``torch.autocast(bfloat16)``, backward, AdamW step (the stage's own ``configure_optimizers``).
Measured: seconds per step after ``warmup`` steps, MFU (``bench/flops.py``: the LLM's training
FLOPs plus the frozen ViT's forward), and the peak of ``torch.cuda.max_memory_allocated``
over building, warm-up and the timed steps. The plan's memory is ``scale/memory.py``'s DDP
estimate for one GPU without the DDP gradient buckets (one process has none).
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

import torch

from ..config import Config
from .flops import forward_flops, llm_shape, training_step_flops, vision_shape

STAGE = "stage3_comprehension"
SAMPLE = "report"  # the plan's sample for this stage (scale/plan.py: STAGE_SAMPLES)
FIT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "m3_stage3.yaml"
MFU_TARGET, MEMORY_TOLERANCE = 0.40, 0.15


def m3_config(fit_config: str | Path = FIT_CONFIG) -> Config:
    """The config the plan reads for ``fit_config``: preset m3 with that run's per-GPU batch."""
    from ..scale.dry_run import parse_fit_config, plan_config

    return plan_config(parse_fit_config(fit_config))


def step_flops(model, batch_size: int, seq_len: int) -> dict:
    """FLOPs of one step: the LLM trains (forward + backward), the frozen ViT only runs forward
    over its patches and CLS token; ``requires_grad`` must be set for the stage."""
    vit = vision_shape(model.vision)
    c = model.vision.clip.config
    vit_tokens = (c.image_size // c.patch_size) ** 2 + 1  # 24 x 24 patches + CLS = 577
    llm = training_step_flops(llm_shape(model, "comprehension"), [seq_len] * batch_size)
    vision = forward_flops(vit, [vit_tokens] * batch_size)
    return {"llm": llm.as_dict(), "vision_forward": vision, "total": llm.total + vision}


def planned_step(cfg: Config, built=None) -> dict:
    """The plan of one stage-3 step on one GPU, all on the meta device (nothing allocated)."""
    from ..scale import build_meta_model
    from ..scale.plan import memory_breakdown, sample_tokens
    from ..training.lit_module import freeze_for_stage, trainable_parameter_count
    from ..training.stages import STAGES

    built = built or build_meta_model(cfg)
    sample, batch = sample_tokens(cfg)[SAMPLE], cfg.train.comp_batch_size
    ddp = memory_breakdown(cfg, STAGE, 1, built)["DDP"]
    for hook in freeze_for_stage(built.model, STAGES[STAGE]):
        hook.remove()
    flops = step_flops(built.model, batch, sample["total"])
    trainable = trainable_parameter_count(built.model, STAGES[STAGE])
    built.model.requires_grad_(False)  # leave the (shared) meta model frozen, as stage_counts does
    return {"stage": STAGE, "micro_batch": batch, "tokens_per_sample": sample, "tokens_per_step": batch * sample["total"],
            "trainable_parameters": trainable, "memory_GiB_ddp": ddp.as_dict(),
            "memory_GiB_one_gpu": round(ddp.total - ddp.buffers, 2), "flops_per_step": flops}


def synthetic_batch(cfg: Config, model, batch_size: int, device, seed: int = 0) -> dict:
    """A comprehension batch of the plan's report sample (module docstring), random token ids
    and pixels in [0, 1]: the shapes are what cost time and memory, not the content."""
    from ..model.multimodal import IGNORE_INDEX
    from ..scale.plan import TEXT_TOKENS, sample_tokens

    tokens = sample_tokens(cfg)[SAMPLE]
    prompt, answer = TEXT_TOKENS["template"] + TEXT_TOKENS["instruction"], TEXT_TOKENS["report"]
    g = torch.Generator().manual_seed(seed)
    text_ids = min(model.layout.image, model.block.start)  # ordinary text tokens lie below both
    image = torch.full((batch_size, tokens["visual"]), model.layout.image)
    input_ids = torch.cat([torch.randint(0, text_ids, (batch_size, prompt), generator=g), image,
                           torch.randint(0, text_ids, (batch_size, answer), generator=g)], dim=1)  # (B, T)
    labels = input_ids.clone()
    labels[:, :prompt + tokens["visual"]] = IGNORE_INDEX  # the loss is on the report only
    size = cfg.vision.image_size
    return {"task": "comprehension", "input_ids": input_ids.to(device), "labels": labels.to(device),
            "attention_mask": torch.ones_like(input_ids).to(device),
            "pixels": torch.rand(batch_size, 3, size, size, generator=g).to(device), "features": None}


def measure_steps(cfg: Config, model, device, warmup: int = 2, steps: int = 5, bf16: bool = True) -> dict:
    """Train ``model`` (a HealthGPTModel with its ViT, on ``device``) for ``warmup + steps``
    stage-3 comprehension steps on a synthetic batch; seconds per step and FLOPs."""
    from ..training.lit_module import HealthGPTLitModule
    from ..training.stages import STAGES

    device = torch.device(device)
    module = HealthGPTLitModule(model, STAGES[STAGE], warmup + steps, cfg.train.lr_scale, cfg.train.warmup_fraction,
                                seed=cfg.seed)
    optimizer = module.configure_optimizers()["optimizer"]
    batch = synthetic_batch(cfg, model, cfg.train.comp_batch_size, device, cfg.seed)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    def step() -> float:
        with autocast:
            loss = module._loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    losses = [step() for _ in range(warmup)]
    sync()
    started = time.perf_counter()
    losses += [step() for _ in range(steps)]
    sync()
    seconds = (time.perf_counter() - started) / steps
    b, t = batch["input_ids"].shape
    flops = step_flops(model, b, t)
    return {"seconds_per_step": seconds, "tokens_per_step": b * t, "tokens_per_s": b * t / seconds,
            "flops_per_step": flops["total"], "flops_per_s": flops["total"] / seconds, "losses": losses,
            "warmup_steps": warmup, "timed_steps": steps}


def run_m3_step(cfg: Config, device, peak_flops: float | None, warmup: int = 2, steps: int = 5) -> dict:
    """The plan (meta), then the same model with random weights on ``device``, measured."""
    from ..scale import build_meta_model
    from .gpu_pipeline import peak_memory_GiB, reset_peak_memory

    plan = planned_step(cfg)
    reset_peak_memory()
    started = time.perf_counter()
    built = build_meta_model(cfg, device=device)  # random weights, fp32, the ViT and the VQGAN included
    build_s = time.perf_counter() - started
    measured = measure_steps(cfg, built.model, device, warmup, steps)
    peak = peak_memory_GiB() if torch.device(device).type == "cuda" else None
    row = {"name": STAGE, "wall_s": round(time.perf_counter() - started, 2), "build_s": round(build_s, 2),
           "peak_memory_GiB": peak, **measured,
           "mfu": measured["flops_per_s"] / peak_flops if peak_flops else None}
    return {"plan": plan, "row": row}


def m3_targets(plan: dict, row: dict) -> list[dict]:
    """MFU >= 40% in bf16; measured peak memory within 15% of the plan (README "Checking on one GPU")."""
    from .gpu_result import target

    planned = plan["memory_GiB_one_gpu"]
    off = abs(row["peak_memory_GiB"] / planned - 1) if row["peak_memory_GiB"] is not None else None
    return [target("mfu", f"M3 {STAGE} step MFU (bf16) >= {MFU_TARGET:.0%}", row["mfu"], MFU_TARGET, ">="),
            target("memory_vs_plan", f"peak memory within {MEMORY_TOLERANCE:.0%} of the plan ({planned:.1f} GiB): "
                   "|measured / plan - 1|", off, MEMORY_TOLERANCE, "<=")]
