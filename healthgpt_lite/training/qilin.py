"""Load-or-train the two recipes of notebook 11 (``qilin_stages.RECIPES``) and rebuild their models.

The same machinery as HealthGPT's stages (``pipeline.py``): a stage artifact holds only what the
stage trained (for Qilin's stage 2 that is the whole LLM), keyed by the model's config sections,
the recipe, the seed and the step budgets up to this stage; training goes through
``train.train_stage`` (the same Lightning module, data module, checkpoints and resume).

    paths = ensure_recipe(cfg, "qilin", artifacts_dir)        # both stages, load-or-train
    gpt = recipe_lite(cfg, "qilin", artifacts_dir)            # HealthGPTLite: .answer_batch(...)
"""
from __future__ import annotations

from pathlib import Path

from ..artifacts import artifact_dir, data_dir_for, is_complete
from ..config import Config
from ..data.generate import ensure_dataset
from ..data.text_tokenizer import tokenizer_for
from ..errors import InputError
from ..model.healthgpt_model import HealthGPTModel
from .pipeline import MODEL_SECTIONS, apply_stage, build_model, ensure_prerequisites
from .train import stage_data, train_stage
from .qilin_stages import RECIPES, Recipe, step_budget

RECIPE_HINT = "notebooks/11_qilin_med_vl or `python -m healthgpt_lite reproduce --recipe qilin` ({name})"


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise InputError(f"unknown recipe {name!r}; choose one of {list(RECIPES)}")
    return RECIPES[name]


def recipe_key(cfg: Config, rec: Recipe, stage_name: str) -> dict:
    """Besides the model sections: the recipe, the seed, the batch, the learning-rate settings and
    the steps of this stage and the ones before it."""
    upto = [s.name for s in rec.stages].index(stage_name) + 1
    return {"recipe": rec.name, "seed": cfg.seed, "steps": [step_budget(cfg, i) for i in range(upto)],
            "batch": cfg.train.comp_batch_size, "lr": [cfg.train.lr_scale, cfg.train.warmup_fraction]}


def recipe_stage_path(cfg: Config, rec: Recipe, stage_name: str, artifacts_dir=None) -> Path:
    return artifact_dir(cfg, stage_name, MODEL_SECTIONS, artifacts_dir, recipe_key(cfg, rec, stage_name))


def recipe_model(cfg: Config, name: str, stages: int | None = None, artifacts_dir=None, with_vision: bool = False,
                 tokenizer=None) -> HealthGPTModel:
    """The recipe's model after its first ``stages`` stages (None: all of them; 0: untrained)."""
    rec = recipe(name)
    model = build_model(cfg, tokenizer, artifacts_dir, with_vision, plugins=rec.plugins)
    for spec in rec.stages[:stages]:
        apply_stage(model, recipe_stage_path(cfg, rec, spec.name, artifacts_dir), cfg, spec.name, RECIPE_HINT)
    return model


def run_recipe_stage(cfg: Config, name: str, stage_name: str, artifacts_dir=None, data_dir=None,
                     progress: bool = False) -> Path:
    """Load-or-train one stage of a recipe (the stages before it must exist)."""
    rec = recipe(name)
    names = [s.name for s in rec.stages]
    if stage_name not in names:
        raise InputError(f"recipe {name!r} has no stage {stage_name!r}; its stages are {names}")
    index = names.index(stage_name)
    data_dir = ensure_dataset(data_dir or data_dir_for(cfg, artifacts_dir), cfg.data)

    path = recipe_stage_path(cfg, rec, stage_name, artifacts_dir)
    if not is_complete(path):
        tokenizer = tokenizer_for(cfg)
        model = recipe_model(cfg, name, index, artifacts_dir, tokenizer=tokenizer)
        data = stage_data(cfg, rec.stages[index], tokenizer, data_dir, artifacts_dir=artifacts_dir, progress=progress)
        train_stage(cfg, rec.stages[index], model, data, path, step_budget(cfg, index), progress, name=stage_name,
                    recipe=name)
    return path


def ensure_recipe(cfg: Config, name: str, artifacts_dir=None, data_dir=None, progress: bool = False) -> dict[str, Path]:
    """Load-or-train every stage of a recipe in order (and what they stand on: data, encoders,
    LLM-lite, cached features). Returns ``{stage name: artifact folder}``."""
    data_dir = ensure_prerequisites(cfg, artifacts_dir, data_dir, progress)
    return {s.name: run_recipe_stage(cfg, name, s.name, artifacts_dir, data_dir, progress) for s in recipe(name).stages}


def recipe_lite(cfg: Config, name: str, artifacts_dir=None, stages: int | None = None):
    """A ``HealthGPTLite`` (``answer``, ``answer_batch``) around the recipe's model with its
    vision encoder. No VQ tokenizer: both recipes here are comprehension only."""
    from ..model.inference import HealthGPTLite

    model = recipe_model(cfg, name, stages, artifacts_dir, with_vision=True)
    return HealthGPTLite(model, tokenizer_for(cfg), None, cfg)
