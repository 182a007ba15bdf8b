"""Train and score the ablation runs of ``runs.py``; every stage and every score load-or-make.

Each stage of a run is an artifact ``abl_<stage>-<hash>``, keyed by the run's model config
(plugin kind, experts, ranks, HVP layers), its seed, steps, the artifacts it starts from and how
it mixes tasks: a stage two runs have in common (the reference's stages 1-2 under every
``plugin`` and ``conflict`` run) is trained once. Scores are ``abl_eval-<hash>`` artifacts, so
notebook 10 and ``reproduce --ablations`` reuse each other's work.

What every run stands on comes from the base config, load-or-train: the data, CLIP-lite, the VQ
tokenizer, LLM-lite and the feature cache. HVP variants read that same cache: it holds both
layers the paper uses, so "both deep" hands generation the comprehension layer's features
(the same frozen encoder would compute exactly these) instead of re-training CLIP-lite under
another key.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..artifacts import artifact_dir, default_artifacts_dir, is_complete, read_meta
from ..config import Config, apply_overrides, validate
from ..data.text_tokenizer import tokenizer_for
from ..errors import ConfigError
from ..model.healthgpt_model import HealthGPTModel
from ..training.features import FeatureStore, ensure_features
from ..training.pipeline import MODEL_SECTIONS, apply_stage, build_model, ensure_prerequisites, stages_before
from ..training.train import stage_data, train_stage
from ..training.stages import ORDER, STAGES, StageSpec
from .mixing import TaskMixModule
from .runs import Run, budget, stage_steps

_ALL_TASKS = tuple(dict.fromkeys(t for s in ORDER for t in STAGES[s].record_tasks))
# One run, both tasks, every group the three stages train, each at the first rate the recipe gives it
# (the abstract adapter's stage-1 rate; embeddings and head as in stage 2), through one shared plugin.
MIXED = StageSpec("mixed", "mixed", {"abstract_adapter": 1e-3, "concrete_adapter": 2e-5, "comp_plugin": 2e-4,
                                     "gen_plugin": 2e-4, "embeddings": 2e-4, "head": 2e-4}, _ALL_TASKS,
                  note="all data at once, one shared plugin (paper Table 5's mixed training)")
# Stage 3 of both tasks in one run: what the conflict table adds generation data with.
CONFLICT = StageSpec("stage3", "mixed", {**STAGES["stage3_comprehension"].lrs, **STAGES["stage3_generation"].lrs},
                     STAGES["stage3_comprehension"].record_tasks + STAGES["stage3_generation"].record_tasks,
                     note="stage-3 comprehension plus generation batches at a set ratio")
SCORED = {"three_stage": ("comprehension", "ct2mri", "reconstruction"), "mixed": ("comprehension", "ct2mri", "reconstruction")}


@dataclass
class Context:
    """What every run shares: the base config, folders, the feature cache and the tokenizer."""

    base: Config
    art: Path
    data_dir: Path
    store: FeatureStore
    tokenizer: Any
    progress: bool = False

    @classmethod
    def create(cls, cfg: Config, artifacts_dir=None, data_dir=None, progress: bool = False) -> "Context":
        art = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir()
        data_dir = ensure_prerequisites(cfg, art, data_dir, progress)
        store = FeatureStore.load(ensure_features(cfg, art, data_dir, progress))
        return cls(cfg, art, data_dir, store, tokenizer_for(cfg), progress)

    def config(self, run: Run | None, seed: int) -> Config:
        return run_config(self.base, run, seed)


def run_config(base: Config, run: Run | None, seed: int) -> Config:
    """The base config at ``seed`` with the run's overrides (``None``: the reference)."""
    cfg = copy.deepcopy(base)
    cfg.seed = seed
    apply_overrides(cfg, dict(run.overrides) if run else {}, source=f"ablation run {run.name if run else ''!r}")
    validate(cfg)
    return cfg


def is_plugin_tensor(name: str) -> bool:
    return ".plugins." in name or ".lora_" in name


def features_for(ctx: Context, cfg: Config) -> FeatureStore:
    """The cached features with each task reading the ViT layer ``cfg.vision`` gives it (HVP)."""
    b, n = ctx.base.vision, cfg.vision.num_layers + 1
    cached = {b.comp_layer % n: ctx.store.comp, b.gen_layer % n: ctx.store.gen}

    def table(layer: int, key: str):
        if layer % n not in cached:
            raise ConfigError(f"{key}={layer}: the ablations read the cached HVP layers {b.gen_layer} and "
                              f"{b.comp_layer} only")
        return cached[layer % n]

    return dataclasses.replace(ctx.store, comp=table(cfg.vision.comp_layer, "vision.comp_layer"),
                               gen=table(cfg.vision.gen_layer, "vision.gen_layer"))


def branch_model(ctx: Context, cfg: Config, parents: list[Path], share: bool, with_vision: bool = False) -> HealthGPTModel:
    """The model of ``cfg`` after the artifacts ``parents``. A parent trained with other plugins
    (another kind, k, rank, or a shared one) hands on everything but its plugin weights."""
    model = build_model(cfg, ctx.tokenizer, ctx.art, shared_plugin=share)
    for path in parents:
        meta = read_meta(path, preset=cfg.preset)
        same = meta.get("share", False) == share and meta["config"]["lora"] == cfg.to_dict()["lora"]
        apply_stage(model, path, cfg, meta["name"], keep=None if same else (lambda k: not is_plugin_tensor(k)))
    if with_vision:
        from ..vision import load_vision_encoder

        model.vision = load_vision_encoder(ctx.base, ctx.art)  # CLIP-lite of the base config
        model.vision.layers = {"comprehension": cfg.vision.comp_layer, "generation": cfg.vision.gen_layer}
    return model


def train(ctx: Context, cfg: Config, spec: StageSpec, steps: int, parents: list[Path], name: str | None = None,
          batches: dict[str, int] | None = None, share: bool = False) -> Path:
    """Load-or-train one stage of a run, starting from ``parents`` (artifacts, applied in order)."""
    t = cfg.train
    key = {"seed": cfg.seed, "steps": steps, "parents": [p.name for p in parents], "batches": batches, "share": share,
           "train": [t.comp_batch_size, t.gen_batch_size, t.stage2_samples, t.lr_scale, t.warmup_fraction]}

    artifact = f"abl_{name or spec.name}"
    path = artifact_dir(cfg, artifact, MODEL_SECTIONS, ctx.art, key)
    if not is_complete(path):
        data = stage_data(cfg, spec, ctx.tokenizer, ctx.data_dir, store=features_for(ctx, cfg))
        train_stage(cfg, spec, branch_model(ctx, cfg, parents, share), data, path, steps, ctx.progress, name=artifact,
                    module_cls=functools.partial(TaskMixModule, batches=batches) if batches else None,
                    val_every=steps,  # one validation, at the end: the losses the tables report
                    share=share, batches=batches)
        shutil.rmtree(path / "checkpoints", ignore_errors=True)  # only for resuming; the tensors are saved
    return path


# ----------------------------------------------------------------------------- recipes (runs.py)
def chain(ctx: Context, cfg: Config, names=ORDER) -> dict[str, Path]:
    """Stages ``names`` of the three-stage recipe (and those they build on), in order."""
    steps, done = stage_steps(cfg), {}
    wanted = {d for n in names for d in stages_before(n)} | set(names)
    for name in (n for n in ORDER if n in wanted):
        done[name] = train(ctx, cfg, STAGES[name], steps[name], [done[s] for s in stages_before(name)])
    return done


def trunk(ctx: Context, seed: int) -> list[Path]:
    """The reference's model before stage 3 (stages 1 and 2) at ``seed``."""
    return list(chain(ctx, ctx.config(None, seed), ("stage2",)).values())


def plugin_stages(ctx: Context, cfg: Config, run: Run) -> dict[str, Path]:
    steps, parents = stage_steps(cfg), trunk(ctx, cfg.seed)
    return {"stage1_generation": train(ctx, cfg, STAGES["stage1_generation"], steps["stage1_generation"], []),
            "stage3_comprehension": train(ctx, cfg, STAGES["stage3_comprehension"], steps["stage3_comprehension"],
                                          parents)}


def mixed_stages(ctx: Context, cfg: Config, run: Run) -> dict[str, Path]:
    b = budget(cfg, run)
    return {"mixed": train(ctx, cfg, MIXED, max(b.values()), [], batches=b, share=run.share)}


def conflict_stages(ctx: Context, cfg: Config, run: Run) -> dict[str, Path]:
    b = budget(cfg, run)
    spec, batches = (STAGES["stage3_comprehension"], None) if b["generation"] == 0 else (CONFLICT, b)
    name = "stage3_comprehension" if batches is None else "conflict"  # p = 0, separate: the reference's stage 3
    return {"stage3": train(ctx, cfg, spec, b["comprehension"], trunk(ctx, cfg.seed), name, batches, run.share)}


RECIPE_STAGES: dict[str, Callable] = {"three_stage": lambda ctx, cfg, run: chain(ctx, cfg), "plugin": plugin_stages,
                                      "mixed": mixed_stages, "conflict": conflict_stages}
