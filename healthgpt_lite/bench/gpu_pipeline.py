"""``gpu-check --mode pipeline``: the whole pipeline of one preset (``small``, ``gpu`` profile)
on one GPU, every step timed, the stages' training steps measured from the inside.

Nothing is re-implemented: the same functions ``make reproduce`` runs, in the same order as
``training.pipeline.ensure_prerequisites`` and ``ensure_stages``:

    data          data.generate.ensure_dataset        VL-Health-lite (2000 patients in ``gpu``)
    clip_lite     vision.ensure_clip_lite             the ViT learns to see (the paper uses CLIP)
    vq            vq.ensure_vq                        the VQ tokenizer of the generated images
    llm_lite      training.llm_pretrain.ensure_llm_lite   the LLM learns the corpus' language
    features      training.features.ensure_features   frozen ViT features and VQ codes, cached
    stage1_* .. stage3_*   training.pipeline.run_stage   the three stages (paper, "Three-stage Learning Strategy"),
                  each with a ``StepMeter`` inside its Lightning fit (tokens/s, FLOPs, MFU)
    evaluation    pipelines/seed_steps.evaluate_seed        test-split metrics and every baseline

Each row also has the peak GPU memory of that step (``torch.cuda.max_memory_allocated``,
reset before it). The stages train into a fresh artifacts folder unless ``--artifacts`` names
one: a stage found there already is loaded, not trained, and its row says so (no steps).
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from ..config import Config
from ..scale.memory import GiB


def reset_peak_memory() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_GiB() -> float | None:
    return torch.cuda.max_memory_allocated() / GiB if torch.cuda.is_available() else None


def timed_row(rows: list[dict], name: str, work, meter=None, peak_flops: float | None = None):
    """Run ``work()``, append its row (wall time, peak memory, the meter's step numbers, MFU)."""
    print(f"[gpu-check] {name} ...", flush=True)
    reset_peak_memory()
    started = time.perf_counter()
    result = work()
    row = {"name": name, "wall_s": round(time.perf_counter() - started, 2), "peak_memory_GiB": peak_memory_GiB()}
    if meter is not None:
        steps = meter.summary()
        row.update(steps)
        row["mfu"] = steps["flops_per_s"] / peak_flops if peak_flops and steps["flops_per_s"] else None
        row["trained"] = steps["steps"] > 0  # False: the stage was found in --artifacts and loaded
    rows.append(row)
    print(f"[gpu-check] {name}: {row['wall_s']:.1f} s", flush=True)
    return result


def run_pipeline(cfg: Config, artifacts_dir: str | Path, peak_flops: float | None, on_row=None) -> dict:
    """Every step of the pipeline for ``cfg`` (one seed); returns the rows and the test metrics.
    ``on_row(rows)`` after each step (``gpu-check`` writes the JSON so far: a run stopped by a
    time limit still leaves its rows)."""
    from ..artifacts import data_dir_for
    from ..data.generate import ensure_dataset
    from ..pipelines.seed_steps import evaluate_seed
    from ..training.features import ensure_features
    from ..training.llm_pretrain import ensure_llm_lite
    from ..training.pipeline import run_stage
    from ..training.stages import ORDER
    from ..vision import ensure_clip_lite
    from ..vq import ensure_vq
    from .step_meter import StepMeter

    art, rows = Path(artifacts_dir), []

    def step(name, work, meter=None):
        result = timed_row(rows, name, work, meter, peak_flops)
        if on_row is not None:
            on_row(rows)
        return result

    started = time.perf_counter()
    data_dir = step("data", lambda: ensure_dataset(data_dir_for(cfg, art), cfg.data, progress=True))
    if not cfg.vision.pretrained_path:
        step("clip_lite", lambda: ensure_clip_lite(cfg, art, data_dir, True))
    if not cfg.vq.pretrained_path:
        step("vq", lambda: ensure_vq(cfg, art, data_dir, True))
    step("llm_lite", lambda: ensure_llm_lite(cfg, art, data_dir, True))
    step("features", lambda: ensure_features(cfg, art, data_dir, True))
    for name in ORDER:
        meter = StepMeter()
        step(name, lambda: run_stage(cfg, name, art, data_dir, True, callbacks=[meter.callback]), meter)
    evaluation = step("evaluation", lambda: evaluate_seed(cfg, art, "test"))
    return {"stages": rows, "total_s": round(time.perf_counter() - started, 1), "metrics": evaluation["metrics"]}


def pipeline_targets(result: dict, budget_minutes: float) -> list[dict]:
    """The issue's targets: the whole pipeline within the budget, every task above its
    baseline as ``make reproduce`` defines it for tiny (``pipelines/results.TARGETS``)."""
    from ..pipelines.results import TARGETS, measured_targets
    from .gpu_result import target

    minutes = result["total_s"] / 60
    rows = [target("pipeline_minutes", f"the whole pipeline, one seed, one GPU <= {budget_minutes:g} minutes",
                   minutes, budget_minutes, "<=")]
    measured = measured_targets(result["metrics"])
    for name, description, threshold in TARGETS:
        rows.append(target(name, description, measured.get(name), threshold, ">="))
    return rows
