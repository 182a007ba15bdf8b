"""The steps of ``make reproduce`` run once per seed: the three stages, then the evaluation of the
trained model beside every baseline on one split."""
from __future__ import annotations

import json
from pathlib import Path

from ..artifacts import data_dir_for
from ..config import Config
from ..eval.report import Report


def step_stages(cfg: Config, art: Path) -> tuple[list[dict], dict[str, Path]]:
    """The three stages of one seed (paper, "Three-stage Learning Strategy"), each load-or-train: table rows, artifacts."""
    from ..training.pipeline import ensure_stages

    paths = ensure_stages(cfg, artifacts_dir=art, progress=True)
    rows = []
    for name, path in paths.items():
        meta = json.loads((path / "meta.json").read_text())
        losses = {k.split("/", 1)[1]: round(v, 3) for k, v in meta["final_metrics"].items() if k.startswith("val/")}
        rows.append({"seed": cfg.seed, "stage": name, "trains": ", ".join(meta["trains"]), "steps": meta["steps"],
                     "trainable params": meta["trainable_parameters"], "minutes": round(meta["train_seconds"] / 60, 1),
                     **losses})
    return rows, paths


def write_stages(report: Report, rows: list[dict], paths: dict[str, Path]) -> None:
    """Section 5: every seed's stage rows, and the curves of the first seed's stages."""
    from ..training.stages import STAGES
    from ..training.trainer import plot_curves, read_metrics

    report.metrics["stages"] = rows
    report.section("5. The three stages", "What each stage trained, for how long, and its final validation losses "
                   "(one row per seed and stage; curves of the first seed):")
    report.table(rows)
    for name, path in paths.items():
        task_keys = [f"val/loss_{t}" for t in STAGES[name].tasks]
        report.figure(f"curves_{name}", plot_curves(read_metrics(path), ["train/loss", *task_keys], name, logy=True),
                      f"{name} (seed {rows[0]['seed']}): {STAGES[name].note}.")


def evaluate_seed(cfg: Config, art: Path, split: str = "test") -> dict:
    """Metrics of one seed's model on ``split`` with every baseline, a few answers and images
    (choices are made on ``val``; the report is on ``test``)."""
    from ..eval.evaluate import comprehension_baselines, evaluate_comprehension, evaluate_generation
    from ..eval.probe import train_probe_from_config
    from ..model.inference import HealthGPTLite
    from ..training.stages import ORDER

    data_dir = data_dir_for(cfg, art)
    gpt = HealthGPTLite.from_config(cfg, art, stages=ORDER)
    comp = evaluate_comprehension(gpt, data_dir, split, progress=True)
    baselines = comprehension_baselines(data_dir, split, cfg.vision.image_size, cfg.eval.pixel_reference_steps,
                                        seed=cfg.seed, progress=True, encoder=gpt.model.vision)
    probe = train_probe_from_config(cfg, progress=True)
    gen = evaluate_generation(gpt, data_dir, split, probe=probe, progress=True)
    answers = [{k: r[k] for k in ("modality", "lang", "question", "answer", "prediction")}
               for r in comp["rows"] if r["question_type"] != "report"][:12]
    return {"metrics": {"comprehension": comp["scores"], "comprehension_baselines": baselines, "generation": gen["scores"]},
            "answers": answers, "samples": gen["samples"], "seed": cfg.seed}
