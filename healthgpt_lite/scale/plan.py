"""The plan of a full run, per stage: parameters (vs the released model), tokens, memory per GPU.

    python -m healthgpt_lite plan --preset m3 --gpus 8        # tables for every stage
    plan = stage_plan(build_config("m3", "full"))           # list of dicts, one per stage

Everything is computed on the ``meta`` device (``scale/meta.py``): the same ``build_model``,
the same stage table (``training/stages.py``) and the same ``trainable_parameter_count`` as a
real run, so the figures are the real model's, not a second description of it.
"""
from __future__ import annotations

from torch import nn

from ..config import Config
from ..training.lit_module import freeze_for_stage, trainable_parameter_count
from ..training.stages import ORDER, STAGES, StageSpec
from .memory import MemoryEstimate, ModelCounts, count_for_fsdp, estimate_memory
from .meta import MetaBuild, build_meta_model, count

# docs/PAPERS.md section 2: sizes of the released HealthGPT weights (parameters), where published.
RELEASED = {
    ("m3", "stage3_comprehension"): (115e6, "comprehension H-LoRA + projector"),
    ("m3", "stage3_generation"): (405e6, "generation H-LoRA"),
}

# Text tokens of a typical sample (our assumptions; Phi-3's tokenizer, English): the chat
# template (system prompt, markers, newlines) is ~18 tokens; VL-Health questions 10-40 tokens;
# captions and reports 50-200; VQA answers 1-10.
TEXT_TOKENS = {"template": 18, "question": 25, "instruction": 15, "caption": 100, "report": 150, "short_answer": 5}
# Which kind of sample each stage learns from (docs/PAPERS.md section 3), for the token budget.
STAGE_SAMPLES = {
    "stage1_comprehension": ("caption",),
    "stage1_generation": ("reconstruction",),
    "stage2": ("caption", "reconstruction"),  # one batch of each per step, both graphs live
    "stage3_comprehension": ("report",),  # the longest comprehension sample (VQA is shorter)
    "stage3_generation": ("conversion",),
}


def sample_tokens(cfg: Config) -> dict[str, dict[str, int]]:
    """Tokens of one sample by kind: visual (N patch tokens), image out (start + h*w + end), text."""
    t, n_vis, n_img = TEXT_TOKENS, cfg.vision.num_tokens, cfg.vq.num_tokens + 2
    kinds = {
        "caption": {"visual": n_vis, "text": t["template"] + t["instruction"] + t["caption"], "image_out": 0},
        "vqa": {"visual": n_vis, "text": t["template"] + t["question"] + t["short_answer"], "image_out": 0},
        "report": {"visual": n_vis, "text": t["template"] + t["instruction"] + t["report"], "image_out": 0},
        "reconstruction": {"visual": n_vis, "text": t["template"] + t["instruction"] + 1, "image_out": n_img},
        "conversion": {"visual": n_vis, "text": t["template"] + t["instruction"] + 1, "image_out": n_img},
        "report2image": {"visual": 0, "text": t["template"] + t["instruction"] + t["report"] + 1, "image_out": n_img},
    }
    return {k: v | {"total": sum(v.values())} for k, v in kinds.items()}


def micro_batches(cfg: Config) -> dict[str, int]:
    """Samples per GPU per forward, by task: the config's per-device batch sizes."""
    return {"comprehension": cfg.train.comp_batch_size, "generation": cfg.train.gen_batch_size}


def stage_counts(built: MetaBuild, name: str | StageSpec) -> ModelCounts:
    """P, T and the FSDP unit sizes with ``requires_grad`` set as stage ``name`` (or a
    ``StageSpec`` of another recipe, e.g. Qilin-Med-VL's) sets it."""
    model = built.model
    for h in freeze_for_stage(model, STAGES[name] if isinstance(name, str) else name):
        h.remove()
    counts = count_for_fsdp(nn.ModuleList([model, built.vq]), model.llm.config, len(built.vocabulary))
    model.requires_grad_(False)  # leave the shared meta model frozen
    return counts


def stage_tokens(cfg: Config, name: str) -> int:
    """Tokens one GPU holds activations for in one step of stage ``name`` (all its micro-batches)."""
    tokens, batch = sample_tokens(cfg), micro_batches(cfg)
    return sum(tokens[k]["total"] * batch[_task_of(k)] for k in STAGE_SAMPLES[name])


def memory_breakdown(cfg: Config, name: str, n_gpus: int, built: MetaBuild) -> dict[str, MemoryEstimate]:
    """The four ways to run stage ``name``: DDP / FSDP, without / with activation checkpointing."""
    counts, n_tokens = stage_counts(built, name), stage_tokens(cfg, name)
    rank = max(getattr(cfg.lora, t).rank for t in STAGES[name].tasks)
    return {f"{strategy.upper()}{' + AC' if ckpt else ''}": estimate_memory(counts, strategy, n_gpus, n_tokens, rank, ckpt)
            for strategy in ("ddp", "fsdp") for ckpt in (False, True)}


def stage_plan(cfg: Config, n_gpus: int = 8, built: MetaBuild | None = None,
               stages: tuple[str, ...] = ORDER) -> list[dict]:
    """One row per stage: parameters (total, trained, vs released), tokens per micro-batch, and
    memory per GPU (GiB) for DDP and FSDP on ``n_gpus``, each without / with activation
    checkpointing. Per-device batch sizes come from ``cfg.train`` (the full-run YAMLs set them)."""
    built = built or build_meta_model(cfg)
    tokens, batch = sample_tokens(cfg), micro_batches(cfg)
    total = count(built.model) + count(built.vq)
    rows = []
    for name in stages:
        spec, kinds = STAGES[name], STAGE_SAMPLES[name]
        released = RELEASED.get((cfg.preset, name))
        row = {"stage": name, "trains": "+".join(spec.trains), "total_params": total,
               "trainable": trainable_parameter_count(built.model, spec),
               "requires_grad": stage_counts(built, name).trained,
               "released": released[0] if released else None, "released_what": released[1] if released else "",
               "tokens_per_sample": "+".join(str(tokens[k]["total"]) for k in kinds),
               "micro_batch": "+".join(str(batch[_task_of(k)]) for k in kinds),
               "tokens_per_gpu_step": stage_tokens(cfg, name)}
        for variant, est in memory_breakdown(cfg, name, n_gpus, built).items():
            row[variant.lower().replace(" + ", "+") + "_GiB"] = round(est.total, 1)
        rows.append(row)
    return rows


def _task_of(kind: str) -> str:
    return "generation" if kind in ("reconstruction", "conversion", "report2image") else "comprehension"


def parameter_breakdown(built: MetaBuild) -> dict[str, int]:
    """Parameters of each part of the model (meta)."""
    from ..lora import count_plugin_parameters

    m = built.model
    llm_all = count(m.llm)
    plugins = {t: count_plugin_parameters(m.llm, t) for t in ("comprehension", "generation")}
    return {"vision (CLIP ViT)": count(m.vision), "adapter comprehension": count(m.adapters["comprehension"]),
            "adapter generation": count(m.adapters["generation"]),
            "LLM (base + new rows)": llm_all - sum(plugins.values()),
            "H-LoRA comprehension": plugins["comprehension"], "H-LoRA generation": plugins["generation"],
            "VQGAN": count(built.vq)}


def format_table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table (the CLI prints it; notebooks use pandas)."""
    cells = [[_fmt(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(columns)]
    line = lambda xs: "  ".join(x.rjust(w) for x, w in zip(xs, widths))  # noqa: E731
    return "\n".join([line(columns), *(line(x) for x in cells)])


def _fmt(v) -> str:
    if isinstance(v, int) and v >= 10**6:
        return f"{v / 1e6:,.1f}M"
    if isinstance(v, float) and v >= 10**6:
        return f"{v / 1e6:,.0f}M"
    return "-" if v is None else str(v)


def print_plan(cfg: Config, n_gpus: int = 8, stages: tuple[str, ...] = ORDER) -> str:
    built = build_meta_model(cfg)
    rows = stage_plan(cfg, n_gpus, built, stages)
    parts = parameter_breakdown(built)
    text = [f"preset {cfg.preset}: {sum(parts.values()) / 1e9:.2f}B parameters on the meta device, "
            f"vocabulary {len(built.vocabulary)} rows ({built.vocabulary.base.name})",
            *(f"  {k:<24}{v / 1e6:>10,.1f}M" for k, v in parts.items()), "",
            format_table(rows, ["stage", "trainable", "requires_grad", "released", "released_what"]), "",
            f"memory per GPU, GiB, bf16-mixed, {n_gpus} GPUs (ac = activation checkpointing):",
            format_table(rows, ["stage", "micro_batch", "tokens_per_sample", "ddp_GiB", "ddp+ac_GiB",
                                "fsdp_GiB", "fsdp+ac_GiB"])]
    return "\n".join(text)


def parameter_summary(cfg: Config) -> str:
    """One line of a preset's parameters by part (meta device; the comments of ``config.PRESETS``)."""
    b = parameter_breakdown(build_meta_model(cfg))
    parts = {"ViT": b["vision (CLIP ViT)"], "adapters": b["adapter comprehension"] + b["adapter generation"],
             "LLM": b["LLM (base + new rows)"], "H-LoRA": b["H-LoRA comprehension"] + b["H-LoRA generation"],
             "VQGAN": b["VQGAN"]}
    return ", ".join(f"{name} {n / 1e6:.2f}M" for name, n in parts.items())
