"""Score each ablation run on the test split and gather the tables (mean, std and every seed).

Nothing here chooses anything: the runs, steps and seeds are fixed in ``runs.py`` and the
config before any score exists; the test split is only ever measured.
"""
from __future__ import annotations

import math
import statistics

import torch

from ..artifacts import load_or_make, read_meta
from ..config import Config
from ..eval.evaluate import evaluate_comprehension, evaluate_generation
from ..model.inference import HealthGPTLite
from ..training.pipeline import MODEL_SECTIONS
from .runner import RECIPE_STAGES, Context, branch_model, trunk
from .runs import Run, Table, tables

GEN_KEYS = {"ct2mri": "ct2mri_ssim", "reconstruction": "recon_ssim"}
# closed and open questions (the tables' comprehension metrics); reports would cost 96 tokens each
QUESTIONS = ("yes_no", "choice", "open_modality", "open_count", "open_location", "open_size")


def score(ctx: Context, cfg: Config, stages: list, what: tuple[str, ...], share: bool = False) -> dict:
    """Test-split scores (load-or-compute) of the model after the artifacts ``stages``."""
    a = ctx.base.ablation
    key = {"stages": [p.name for p in stages], "what": list(what), "share": share, "limits": [a.comp_limit, a.gen_limit]}

    def make(path) -> dict:
        from ..vq import load_vq_tokenizer

        gpt = HealthGPTLite(branch_model(ctx, cfg, stages, share, with_vision=True), ctx.tokenizer,
                            load_vq_tokenizer(ctx.base, ctx.art), cfg)
        scores = {}
        if "comprehension" in what:
            s = evaluate_comprehension(gpt, ctx.data_dir, "test", limit=a.comp_limit, question_types=QUESTIONS)["scores"]
            scores.update(closed=s.get("closed"), open=s.get("open"))  # None: none in the scored records
        tasks = tuple(t for t in what if t in GEN_KEYS) if a.gen_limit != 0 else ()
        if tasks:
            g = evaluate_generation(gpt, ctx.data_dir, "test", limit=a.gen_limit, tasks=tasks, baselines=False)["scores"]
            scores.update({GEN_KEYS[t]: g[t]["model"]["ssim"] for t in tasks})
        return {"scores": scores}

    return read_meta(load_or_make(cfg, "abl_eval", MODEL_SECTIONS, make, ctx.art, extra=key))["scores"]


def run_record(ctx: Context, run: Run, seed: int) -> dict:
    """Train (or load) one run at one seed and score it: one flat record of numbers."""
    cfg = ctx.config(run, seed)
    stages = RECIPE_STAGES[run.recipe](ctx, cfg, run)
    metas = {name: read_meta(p) for name, p in stages.items()}
    record = {"run": run.name, "recipe": run.recipe, "seed": seed,
              "train_s": round(sum(m["train_seconds"] for m in metas.values()), 1),
              "stages": {name: p.name for name, p in stages.items()}}
    if run.recipe in ("three_stage", "mixed"):
        record.update(score(ctx, cfg, list(stages.values()), ("comprehension", "ct2mri", "reconstruction"), run.share))
    elif run.recipe == "plugin":
        record.update(score(ctx, cfg, trunk(ctx, seed) + [stages["stage3_comprehension"]], ("comprehension",)))
        record.update(score(ctx, cfg, [stages["stage1_generation"]], ("reconstruction",)))
        record["recon_val_loss"] = metas["stage1_generation"]["final_metrics"].get("val/loss_generation")
    else:  # conflict
        record.update(score(ctx, cfg, trunk(ctx, seed) + [stages["stage3"]], ("comprehension",), run.share))
        record["gen_val_loss"] = metas["stage3"]["final_metrics"].get("val/loss_generation")  # None: no gen data
    return record


def seeds_of(cfg: Config, table: Table) -> list[int]:
    return [cfg.seed + i for i in range(cfg.ablation.seeds if table.all_seeds else 1)]


def run_ablations(cfg: Config, artifacts_dir=None, data_dir=None, progress: bool = False, log=print) -> list[dict]:
    """Every run of every table at the seeds it needs, load-or-train; one record per (run, seed)."""
    ctx = Context.create(cfg, artifacts_dir, data_dir, progress)
    todo = {}  # (run, seed) -> run, the first seed of every table first
    for seed in range(cfg.seed, cfg.seed + cfg.ablation.seeds):
        for table in tables(cfg):
            for row in table.rows if seed in seeds_of(cfg, table) else ():
                todo.setdefault((row.run.name, seed), row.run)
    records, threads = [], torch.get_num_threads()
    torch.set_num_threads(cfg.ablation.threads or threads)
    try:
        for i, ((name, seed), run) in enumerate(todo.items()):
            log(f"[ablations] {i + 1}/{len(todo)}: {name}, seed {seed}")
            records.append(run_record(ctx, run, seed))
    finally:
        torch.set_num_threads(threads)
    return records


def _stats(values: list) -> dict:
    """Mean, std and the values themselves; ``None`` where nothing was measured (JSON has no NaN)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return {"mean": None, "std": None, "values": []}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def table_rows(cfg: Config, records: list[dict], table: Table) -> list[dict]:
    """Each row of ``table``: ours (mean, std, values over its seeds) beside the paper's numbers."""
    by = {(r["run"], r["seed"]): r for r in records}
    lora = next(t for t in tables(cfg) if t.key == "peft").rows[0].run.name
    rows = []
    for row in table.rows:
        per_seed = [by[(row.run.name, s)] for s in seeds_of(cfg, table) if (row.run.name, s) in by]
        ours = {}
        for m in table.metrics:
            if m == "time_vs_lora":
                vals = [r["train_s"] / by[(lora, r["seed"])]["train_s"] for r in per_seed if (lora, r["seed"]) in by]
            else:
                vals = [r.get(m) for r in per_seed]
            ours[m] = _stats(vals)
        rows.append({"row": row.label, "run": row.run.name, "seeds": [r["seed"] for r in per_seed],
                     "ours": ours, "paper": dict(row.paper)})
    return rows


PAPER_COLUMNS = {"slake_closed": "paper SLAKE closed", "reconstruction": "paper recon", "ct_ssim": "paper CT SSIM",
                 "time": "paper time"}


def fmt(stat: dict, digits: int = 3) -> str:
    """``mean ± std`` (the std only with more than one seed), ``-`` when not measured."""
    if stat["mean"] is None:
        return "-"
    return f"{stat['mean']:.{digits}f}" + (f" ± {stat['std']:.{digits}f}" if len(stat["values"]) > 1 else "")


def flat_table(rows: list[dict]) -> list[dict]:
    """``table_rows`` as printable rows: ours as ``mean ± std``, then the paper's columns."""
    papers = [k for k in PAPER_COLUMNS if any(k in r["paper"] for r in rows)]
    return [{"row": r["row"], "seeds": len(r["seeds"]),
             **{m: fmt(s, 1 if m == "train_s" else 3) for m, s in r["ours"].items()},
             **{PAPER_COLUMNS[k]: f"{r['paper'][k]:g}" if k in r["paper"] else "-" for k in papers}} for r in rows]
