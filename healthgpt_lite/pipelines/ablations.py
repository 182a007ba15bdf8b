"""``reproduce --ablations``: the five ablation tables -> ``results/ablations.md`` + ``.json``.

Every run is load-or-train in the artifacts folder (notebook 10 reuses them, and they reuse the
notebook's). The JSON holds one record per (run, seed) under ``runs`` and, per table, each row's
mean, std and per-seed values beside the paper's numbers under ``tables``.
"""
from __future__ import annotations

from pathlib import Path

from ..artifacts import default_artifacts_dir
from ..config import Config
from ..eval.report import Report
from ..ablations.findings import findings
from ..ablations.runs import METRICS, stage_steps, tables
from ..ablations.scoring import flat_table, run_ablations, seeds_of, table_rows


def figures_of(cfg: Config, key: str, rows: list[dict]) -> list:
    """The figures of one table (``viz/ablations.py``): ``(name, Figure, caption)``."""
    from ..viz.ablations import conflict_figure, metric_bars, time_ratio_figure

    table = next(t for t in tables(cfg) if t.key == key)
    shown = [m for m in table.metrics if m not in ("train_s", "time_vs_lora")]
    figs = [(f"ablation_{key}", metric_bars(rows, shown, table.title),
             f"{table.title}: mean over seeds (bars) and every seed (dots), test split.")]
    if "time_vs_lora" in table.metrics:
        figs.append((f"ablation_{key}_time", time_ratio_figure(rows), "Training time relative to LoRA: ours "
                     "(CPU, this run's wall time of the stages the row trains) beside the paper's (GPU)."))
    if key == "conflict":
        figs.append(("ablation_conflict_curve", conflict_figure(rows, cfg.ablation.gen_mix),
                     "Comprehension as generation batches join its training: one shared plugin vs two."))
    return figs


def reproduce_ablations(cfg: Config, artifacts_dir: str | Path | None = None, out_dir: str | Path = "results") -> Report:
    art = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir()
    report = Report(out_dir, "healthgpt_lite: the paper's ablations in miniature",
                    markdown="ablations.md", metrics="ablations.json")
    a, steps = cfg.ablation, stage_steps(cfg)
    report.metrics["config"] = {"preset": cfg.preset, "profile": cfg.profile, "seed": cfg.seed,
                                "step_fraction": a.step_fraction, "seeds": a.seeds, "stage_steps": steps,
                                "lr_scale": cfg.train.lr_scale, "threads": a.threads}
    report.text(f"Preset `{cfg.preset}`, profile `{cfg.profile}`. Every ablation stage trains "
                f"{a.step_fraction:g} of its steps ({', '.join(f'{k} {v}' for k, v in steps.items())}); "
                f"seeds {cfg.seed}..{cfg.seed + a.seeds - 1} where differences are small. Scores on the test split; "
                "nothing was chosen by looking at it. The paper's numbers (HealthGPT-M3 on real data, GPU) are "
                "beside ours for the direction of each effect, not as targets. Notebook 10 explains every table.")
    print("[reproduce --ablations] training or loading every run ...", flush=True)
    records = run_ablations(cfg, art, progress=True)
    report.metrics["runs"] = records
    report.metrics["tables"] = {}
    rows_by = {t.key: table_rows(cfg, records, t) for t in tables(cfg)}
    words = findings(rows_by)
    for table in tables(cfg):
        rows = rows_by[table.key]
        report.metrics["tables"][table.key] = {"title": table.title, "question": table.question,
                                               "paper_ref": table.paper_ref, "seeds": seeds_of(cfg, table),
                                               "rows": rows, "findings": words[table.key]}
        report.section(table.title, f"{table.question} ({table.paper_ref}; seeds {seeds_of(cfg, table)})")
        report.table(flat_table(rows))
        report.text("\n".join(f"- {w}" for w in words[table.key]))
        for name, fig, caption in figures_of(cfg, table.key, rows):
            report.figure(name, fig, caption)
    report.section("Metrics", "\n".join(f"- `{k}`: {v}" for k, v in METRICS.items()))
    path = report.write()
    print(f"[reproduce --ablations] wrote {path}")
    return report
