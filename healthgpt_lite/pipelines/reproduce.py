"""``make reproduce``: the end-to-end pipeline on the embedded default (tiny preset, cpu profile).

    shared_steps.py   data, CLIP-lite + HVP probes, VQ tokenizer, LLM-lite     (made once, ``cfg.seed``)
    seed_steps.py     the three stages, then the evaluation                     (once per seed)
    results.py        mean and spread over seeds, the tables, figures and targets of REPORT.md

Each step loads its artifact when one made with the same config exists, else makes it, then
adds its tables and figures to ``results/REPORT.md`` and its numbers to ``metrics.json``.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..artifacts import default_artifacts_dir
from ..artifacts.store import REUSED
from ..config import Config
from ..eval.report import Report
from .results import write_results
from .seed_steps import evaluate_seed, step_stages, write_stages
from .shared_steps import SHARED_STEPS


def reproduce(cfg: Config, artifacts_dir: str | Path | None = None, out_dir: str | Path = "results",
              seeds: int = 1, split: str = "test") -> Report:
    """The whole pipeline. The data and the pretrained parts (CLIP-lite, VQ, LLM-lite) are made
    once, with ``cfg.seed``, and shared, as the real model shares its pretrained CLIP, VQGAN and
    Phi-3; the three stages and the evaluation run for seeds ``cfg.seed .. cfg.seed + seeds - 1``.
    ``split="val"`` evaluates on the validation patients instead: where options are compared and
    chosen (the report of record is on ``test``)."""
    import dataclasses

    from ..errors import InputError

    if seeds < 1:
        raise InputError(f"--seeds {seeds}: give at least one seed")
    if split not in ("val", "test"):
        raise InputError(f"--split {split!r}: evaluate on 'val' (to choose options) or 'test' (the report)")
    art = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir()
    report = Report(out_dir)
    report.metrics["config"] = {"preset": cfg.preset, "profile": cfg.profile, "seed": cfg.seed,
                                "seeds": list(range(cfg.seed, cfg.seed + seeds)), "split": split}
    report.text(f"Preset `{cfg.preset}`, profile `{cfg.profile}`, seeds {cfg.seed}..{cfg.seed + seeds - 1}. "
                f"Every number below comes from this run; the models are scored on the `{split}` split.")
    reused_from = len(REUSED)
    for step in SHARED_STEPS:
        _timed(step.__name__, report, lambda: step(cfg, art, report))
    evaluations, stage_rows, first_paths = [], [], None
    for seed in range(cfg.seed, cfg.seed + seeds):
        cfg_s = dataclasses.replace(cfg, seed=seed)
        rows, paths = _timed(f"stages (seed {seed})", report, lambda: step_stages(cfg_s, art))
        stage_rows, first_paths = stage_rows + rows, first_paths or paths
        evaluations.append(_timed(f"evaluation (seed {seed})", report, lambda: evaluate_seed(cfg_s, art, split)))
        if seed == cfg.seed:
            report.metrics["minutes_first_seed"] = round((time.time() - report.started) / 60, 1)
            report.metrics["reused_before_first_seed"] = REUSED[reused_from:]  # [] = timed end to end
    write_stages(report, stage_rows, first_paths)
    write_results(report, evaluations)
    report.write()
    print(f"[reproduce] wrote {report.out / 'REPORT.md'}")
    return report


def _timed(name: str, report: Report, work):
    t = time.time()
    print(f"[reproduce] {name} ...", flush=True)
    result = work()
    report.metrics.setdefault("step_seconds", {})[name] = round(time.time() - t, 1)
    report.write()
    return result
