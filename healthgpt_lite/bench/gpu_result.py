"""The JSON that ``gpu-check`` writes: its schema, the target rows, the writer.

Schema (``schema_version`` 1); every key is always present, ``null`` where a number could not
be measured (no GPU, an unknown GPU's peak, a stage loaded instead of trained):

    {
      "schema_version": 1,
      "mode": "pipeline" | "m3-step",
      "complete": true,           # false: the pipeline's JSON so far, rewritten after every step
      "created_utc": "2026-12-02T07:00:00Z",
      "device": {"name": "NVIDIA H200", "cuda": true, "bf16_peak_flops": 9.89e14,
                 "peak_source": "table: H200" | "--peak-tflops" | why there is none,
                 "torch_device": "cuda" | "cpu"},
      "torch_version": "2.14.1+cu130", "lightning_version": "2.6.6",
      "config": {...},            # pipeline: preset, profile, precision, seed, artifacts;
                                  # m3-step: the fit config, stage, micro-batch, tokens
      "stages": [                 # one row per timed step of the run
        {"name": "stage3_comprehension", "wall_s": 41.2, "peak_memory_GiB": 3.1,
         # rows of a training stage also have (bench/step_meter.py, bench/flops.py):
         "steps": 600, "timed_steps": 598, "seconds_per_step": 0.05, "tokens_per_step": 7900,
         "tokens_per_s": 158000, "flops_per_step": 2.1e12, "flops_per_s": 4.2e13, "mfu": 0.043,
         "trained": true}, ...],
      "metrics": {...},           # pipeline: evaluate_seed's test metrics with their baselines;
                                  # m3-step: the plan (memory terms, FLOPs) beside the measurement
      "targets": [{"name": "mfu", "description": "...", "measured": 0.41, "threshold": 0.40,
                   "comparison": ">=", "met": true}, ...],   # met: null = not measured
      "all_targets_met": true | false | null,    # null: some target was not measured
      "notes": ["..."]
    }
"""
from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

SCHEMA_VERSION = 1
TOP_LEVEL_KEYS = ("schema_version", "mode", "complete", "created_utc", "device", "torch_version", "lightning_version",
                  "config", "stages", "metrics", "targets", "all_targets_met", "notes")
DEVICE_KEYS = ("name", "cuda", "bf16_peak_flops", "peak_source")
STAGE_KEYS = ("name", "wall_s", "peak_memory_GiB")
TARGET_KEYS = ("name", "description", "measured", "threshold", "comparison", "met")


def target(name: str, description: str, measured: float | None, threshold: float, comparison: str) -> dict:
    """One target row; ``met`` is None when ``measured`` is (never a silent pass)."""
    if comparison not in (">=", "<="):
        raise ValueError(f"comparison must be '>=' or '<=', got {comparison!r}")
    if measured is None or (isinstance(measured, float) and math.isnan(measured)):
        met = None
    else:
        met = bool(measured >= threshold) if comparison == ">=" else bool(measured <= threshold)
    return {"name": name, "description": description, "measured": measured, "threshold": threshold,
            "comparison": comparison, "met": met}


def all_met(targets: list[dict]) -> bool | None:
    """False if any target was missed; None if none was missed but some were not measured."""
    if any(t["met"] is False for t in targets):
        return False
    return None if any(t["met"] is None for t in targets) else True


def make_result(mode: str, device: dict, config: dict, stages: list[dict], metrics: dict, targets: list[dict],
                notes: list[str], complete: bool = True) -> dict:
    import lightning
    import torch

    return {"schema_version": SCHEMA_VERSION, "mode": mode, "complete": complete,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "device": device, "torch_version": torch.__version__, "lightning_version": lightning.__version__,
            "config": config, "stages": stages, "metrics": metrics, "targets": targets,
            "all_targets_met": all_met(targets), "notes": notes}


def schema_problems(result: dict) -> list[str]:
    """What in ``result`` does not follow the schema of the module docstring (empty: all fine)."""
    problems = [f"missing key {k!r}" for k in TOP_LEVEL_KEYS if k not in result]
    if result.get("schema_version") != SCHEMA_VERSION:
        problems.append(f"schema_version {result.get('schema_version')!r} is not {SCHEMA_VERSION}")
    if result.get("mode") not in ("pipeline", "m3-step"):
        problems.append(f"mode {result.get('mode')!r} is not 'pipeline' or 'm3-step'")
    problems += [f"device: missing {k!r}" for k in DEVICE_KEYS if k not in result.get("device", {})]
    for row in result.get("stages", []):
        problems += [f"stage {row.get('name')!r}: missing {k!r}" for k in STAGE_KEYS if k not in row]
    for row in result.get("targets", []):
        problems += [f"target {row.get('name')!r}: missing {k!r}" for k in TARGET_KEYS if k not in row]
    if not result.get("targets"):
        problems.append("no targets: every run reports its targets, met or not")
    return problems


def write_result(result: dict, out: str | Path) -> Path:
    """Check the schema, then write ``out`` (atomically: a crash leaves no half-written JSON)."""
    problems = schema_problems(result)
    if problems:
        raise ValueError(f"gpu-check result breaks its schema: {'; '.join(problems)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=_plain) + "\n", encoding="utf-8")
    tmp.replace(out)
    return out


def _plain(value):
    """numpy / torch scalars and paths as JSON numbers and strings."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def summary_lines(result: dict) -> list[str]:
    """One line per target for the terminal: MET, MISSED or NOT MEASURED, never silent."""
    lines = []
    for t in result["targets"]:
        verdict = {True: "MET", False: "MISSED", None: "NOT MEASURED"}[t["met"]]
        measured = "-" if t["measured"] is None else f"{t['measured']:.4g}"
        lines.append(f"  {verdict:<12} {t['description']}: measured {measured} (need {t['comparison']} {t['threshold']:g})")
    return lines
