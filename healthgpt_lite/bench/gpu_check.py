"""``python -m healthgpt_lite gpu-check``: does the single-GPU path work, how fast, how well?

Two modes, one JSON each (schema: ``bench/gpu_result.py``), both run by ``make gpu-check``
(``scripts/gpu_check.sh``):

* ``--mode pipeline``: the ``small`` preset in the ``gpu`` profile (bf16-mixed), end to end
  (``bench/gpu_pipeline.py``): wall time per step, tokens/s, MFU and peak memory of every
  stage's training step, the test metrics with their baselines. Targets: the whole pipeline
  within ``--budget-minutes`` (8), every task above its baseline.
* ``--mode m3-step``: stage-3 training steps of HealthGPT-M3's real shapes, random weights,
  bf16 (``bench/gpu_m3_step.py``). Targets: MFU >= 40%, peak memory within 15% of the plan.

Exit codes: 0 every target met (or not measurable, as on the CPU), 3 the run finished but
missed a target (the JSON says which), 2 bad input (no GPU without ``--allow-cpu``, a bad
flag), 1 anything that crashed. Importing this module never touches CUDA.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..errors import InputError
from .gpu_peaks import bf16_peak
from .gpu_result import make_result, summary_lines, write_result

MODES = ("pipeline", "m3-step")
NO_GPU = ("gpu-check needs a CUDA GPU and torch sees none (torch.cuda.is_available() is False): run it on a "
          "machine with one, or pass --allow-cpu to exercise the script on the CPU (its numbers then measure nothing)")


def device_info(allow_cpu: bool, peak_tflops: float | None) -> dict:
    """The GPU and its bf16 peak; the CPU only with ``allow_cpu`` (an InputError otherwise)."""
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        peak, source = bf16_peak(name, peak_tflops)
        return {"name": name, "cuda": True, "bf16_peak_flops": peak, "peak_source": source, "torch_device": "cuda"}
    if not allow_cpu:
        raise InputError(NO_GPU)
    peak, source = bf16_peak("cpu", peak_tflops) if peak_tflops is not None else (None, "no GPU: MFU not measured")
    return {"name": "cpu (--allow-cpu)", "cuda": False, "bf16_peak_flops": peak, "peak_source": source,
            "torch_device": "cpu"}


def check_pipeline(cfg, device: dict, budget_minutes: float, artifacts: str | None, out: str | Path) -> dict:
    from .gpu_pipeline import pipeline_targets, run_pipeline
    from .gpu_result import target

    art = Path(artifacts) if artifacts else Path(tempfile.mkdtemp(prefix="gpu_check_artifacts_"))
    config = {"preset": cfg.preset, "profile": cfg.profile, "precision": cfg.train.precision, "seed": cfg.seed,
              "artifacts": str(art), "budget_minutes": budget_minutes, "total_s": None}

    def write_so_far(rows: list[dict]) -> None:  # complete: false until the last step is done
        unknown = target("pipeline_minutes", f"the whole pipeline, one seed, one GPU <= {budget_minutes:g} minutes",
                         None, budget_minutes, "<=")
        write_result(make_result("pipeline", device, config, rows, {}, [unknown],
                                 [f"incomplete: stopped after {rows[-1]['name']!r}, or still running"],
                                 complete=False), out)

    result = run_pipeline(cfg, art, device["bf16_peak_flops"], on_row=write_so_far)
    config["total_s"] = result["total_s"]
    notes = ["MFU counts model FLOPs from the shapes (bench/flops.py), frozen base weights without weight "
             "gradients; seconds per step exclude data loading and validation (bench/step_meter.py)",
             "the evaluation runs where HealthGPTLite.from_config puts the model (the CPU, as in make reproduce); "
             "its wall time includes that"]
    return make_result("pipeline", device, config, result["stages"], result["metrics"],
                       pipeline_targets(result, budget_minutes), notes)


def check_m3_step(cfg, device: dict, fit_config: str, warmup: int, steps: int) -> dict:
    from .gpu_m3_step import STAGE, m3_targets, run_m3_step

    if not device["cuda"]:
        print("[gpu-check] m3-step on the CPU: 4.8B parameters in fp32 (~19 GiB of RAM), minutes per step", flush=True)
    result = run_m3_step(cfg, device["torch_device"], device["bf16_peak_flops"], warmup, steps)
    plan, row = result["plan"], result["row"]
    config = {"fit_config": str(fit_config), "preset": cfg.preset, "stage": STAGE, "precision": "bf16-mixed",
              "micro_batch": plan["micro_batch"], "tokens_per_step": plan["tokens_per_step"],
              "warmup_steps": warmup, "timed_steps": steps}
    notes = ["random weights (no download); plan memory = scale/memory.py's DDP estimate on one GPU "
             "minus the DDP gradient buckets (one process has none)"]
    return make_result("m3-step", device, config, [row], {"plan": plan}, m3_targets(plan, row), notes)


def run_cli(args) -> int:
    """``gpu-check`` from parsed arguments: run the mode, write ``args.out``, print the targets."""
    from ..config import apply_overrides, build_config, parse_overrides, validate

    if args.budget_minutes <= 0:
        raise InputError(f"--budget-minutes {args.budget_minutes}: give the time the pipeline may take, e.g. 8")
    device = device_info(args.allow_cpu, args.peak_tflops)  # before anything slow: no GPU fails at once
    if args.mode == "pipeline":
        cfg = build_config(args.preset, args.profile, args.overrides, seed=args.seed)
        result = check_pipeline(cfg, device, args.budget_minutes, args.artifacts, args.out)
    else:
        from .gpu_m3_step import m3_config

        if not Path(args.fit_config).is_file():
            raise InputError(f"--fit-config {args.fit_config}: no such file (the default is configs/m3_stage3.yaml)")
        if args.steps < 1 or args.warmup < 0:
            raise InputError(f"--steps {args.steps} --warmup {args.warmup}: time at least one step after >= 0 warm-up steps")
        cfg = apply_overrides(m3_config(args.fit_config), parse_overrides(args.overrides), source="--set")
        validate(cfg)
        result = check_m3_step(cfg, device, args.fit_config, args.warmup, args.steps)
    out = write_result(result, args.out)
    print(f"[gpu-check] {args.mode} on {device['name']}: wrote {out}")
    print("\n".join(summary_lines(result)))
    return 3 if result["all_targets_met"] is False else 0
