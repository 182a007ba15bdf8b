"""``reproduce --recipe qilin``: Qilin-Med-VL's two-stage recipe beside HealthGPT's comprehension
plugin on the Chinese side of VL-Health-lite -> ``results/qilin.md`` + ``results/qilin.json``.

Both recipes train at the same step budget (``cfg.qilin``) on the same Chinese records; see
``training/qilin_stages.py`` for the recipes and ``eval/recipes.py`` for what is measured.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..artifacts import default_artifacts_dir
from ..config import Config
from ..eval.report import Report


def reproduce_qilin(cfg: Config, artifacts_dir: str | Path | None = None, out_dir: str | Path = "results") -> Report:
    from ..eval.recipes import compare_recipes
    from ..training.qilin import recipe
    from ..training.trainer import read_metrics
    from ..viz.diagrams import stage_figure
    from ..viz.recipes import overlay_curves, recipe_grid_figure

    art = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir()
    report = Report(out_dir, "healthgpt_lite: Qilin-Med-VL's recipe beside HealthGPT (Chinese records)",
                    markdown="qilin.md", metrics="qilin.json")
    report.metrics["config"] = {"preset": cfg.preset, "profile": cfg.profile, "seed": cfg.seed,
                                "steps": [cfg.qilin.stage1_steps, cfg.qilin.stage2_steps],
                                "batch": cfg.train.comp_batch_size, "lr_scale": cfg.train.lr_scale}
    report.text(f"Preset `{cfg.preset}`, profile `{cfg.profile}`, seed {cfg.seed}. Both recipes: "
                f"{cfg.qilin.stage1_steps} + {cfg.qilin.stage2_steps} steps of batch {cfg.train.comp_batch_size} "
                f"on the Chinese records (docs/PAPERS.md section 5; notebook 11). Every number below comes from this run.")
    print("[reproduce --recipe qilin] training or loading both recipes ...", flush=True)
    started = time.time()
    result = compare_recipes(cfg, art, progress=True)
    report.metrics["seconds"] = round(time.time() - started, 1)
    recipes = [recipe("qilin"), recipe("healthgpt_zh")]

    report.section("1. The two recipes", "What trains in each stage (learning rates before `train.lr_scale`):")
    counts = {r["stage"]: r["trainable params"] for r in result["stages"]}
    report.figure("qilin_recipes", recipe_grid_figure(recipes, counts), "What trains in each stage of each recipe.")
    report.figure("qilin_stage2", stage_figure(recipes[0].stages[1], plugins=False),
                  "Qilin-Med-VL stage 2: the projector and every LLM weight train.")
    report.table(result["stages"])
    report.metrics["stages"] = result["stages"]

    report.section("2. Chinese test records", "Closed questions: accuracy; open ones: normalised exact match. "
                   "Trainable weights of the instruction-tuning stage; `train s`: wall time of both stages in this "
                   "run (a shared machine: noisy); `step ms`: one instruction-tuning step of each recipe, the two "
                   "interleaved on the same batch (median).")
    report.table(result["summary"])
    report.metrics["summary"], report.metrics["scores"] = result["summary"], result["scores"]
    report.text("One instruction-tuning step: its peak memory and the training state of the trained weights "
                "(fp32 weight, gradient, AdamW m and v: 16 bytes each):")
    report.table(result["costs"])
    report.metrics["costs"] = result["costs"]
    runs = {name: read_metrics(paths[rec.stages[1].name]) for name, rec, paths in
            (("Qilin stage 2 (full fine-tune)", recipes[0], result["paths"]["qilin"]),
             ("HealthGPT stage 3 (H-LoRA)", recipes[1], result["paths"]["healthgpt_zh"]))}
    report.figure("qilin_curves", overlay_curves(runs, "val/loss_comprehension", "instruction tuning: validation loss"),
                  "Validation loss of the instruction-tuning stage of both recipes (same steps, same data).")
    report.text("The same two stages at HealthGPT-M3's shapes (Phi-3-mini + CLIP-L/14, meta device; memory per GPU "
                "on 8 GPUs, bf16-mixed, activation checkpointing; `scale/memory.py`):")
    report.table(result["scale"])
    report.metrics["scale"] = result["scale"]

    report.section("3. Answers side by side")
    report.table(result["answers"])
    report.metrics["answers"] = result["answers"]

    report.section("4. What the LLM kept", "The base LLM's next-token loss on English text (LLM-lite's validation "
                   "text; neither recipe trains on it) and the relative change of the base LLM's weights.")
    report.table(result["forgetting"])
    report.metrics["forgetting"] = result["forgetting"]
    path = report.write()
    print(f"[reproduce --recipe qilin] wrote {path}")
    return report
