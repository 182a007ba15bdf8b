"""Train one stage: model, stage, data, steps -> trained model, saved as a stage artifact.

This is the whole training path, with nothing cached: build the stage's batches
(:func:`stage_data`), then :func:`train_stage` wraps the model in the stage's Lightning
module (the freeze rule of ``stages.py``, the loss, one AdamW group per trained group) and
runs the steps. From a notebook to the loss is three calls of this package::

    train_stage -> HealthGPTLitModule.training_step -> HealthGPTLitModule._loss -> model

Deciding whether a stage must be trained at all (reuse the artifact a run with the same
config made) is the separate layer of ``pipeline.py`` (``run_stage``, ``ensure_stages``),
used by ``reproduce`` and the notebooks.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..artifacts import atomic_save_safetensors, is_writer, wait_for_writer, write_meta
from ..config import Config
from ..errors import InputError
from ..model.healthgpt_model import HealthGPTModel
from .datamodule import StageDataModule
from .features import FeatureStore, ensure_features
from .stages import MODEL_SECTIONS, StageSpec, stage_spec


def stage_data(cfg: Config, stage: str | StageSpec, tokenizer, data_dir: Path, store: FeatureStore | None = None,
               artifacts_dir=None, progress: bool = False) -> StageDataModule:
    """The stage's batches as ``cfg.train`` says (``StageDataModule``), validated on 64 records per
    task (4 in ``smoke``). ``store``: the cached ViT features to train on (default: this config's
    cache, computed if missing)."""
    store = store or FeatureStore.load(ensure_features(cfg, artifacts_dir, data_dir, progress))
    return StageDataModule(cfg, stage_spec(stage), store, tokenizer, data_dir,
                           val_per_task=64 if cfg.profile != "smoke" else 4)


def train_stage(cfg: Config, stage: str | StageSpec, model: HealthGPTModel, data: StageDataModule, run_dir: Path,
                steps: int | None = None, progress: bool = False, name: str | None = None, module_cls=None,
                val_every: int | None = None, callbacks=(), **meta) -> dict:
    """Train ``model`` (in place) as ``stage`` says, for ``steps`` (default: ``train.<stage>_steps``),
    on ``data``; resume from ``run_dir``'s last checkpoint after an interruption; save the trained
    tensors and ``meta.json`` (``name``, default the stage's; ``meta``: extra fields) into
    ``run_dir``, which marks the artifact complete. Returns what the stage did (steps, final
    losses, seconds, weights that learned).

    ``module_cls``: a ``HealthGPTLitModule`` variant (the ablations' mixed-task module);
    ``val_every``: steps between validations (default: five in the run); ``callbacks``: extra
    Lightning callbacks (``bench stages`` and ``gpu-check`` time the steps with one)."""
    from .lit_module import HealthGPTLitModule, trainable_parameter_count
    from .trainer import last_checkpoint, make_trainer

    spec, t, run_dir = stage_spec(stage, cfg.train.lr_overrides), cfg.train, Path(run_dir)
    steps = steps or getattr(t, f"{spec.name}_steps")
    if str(t.precision).startswith("64"):  # Lightning loads last.ckpt *before* it converts the module to
        model.double()                      # float64: convert first, or a resumed run rounds every weight to float32
    module = (module_cls or HealthGPTLitModule)(model, spec, steps, t.lr_scale, t.warmup_fraction, seed=cfg.seed,
                                                image_token_noise=t.image_token_noise)
    # the step-indexed sampler shards itself across ranks; Lightning's DistributedSampler cannot (sampling.py)
    trainer = make_trainer(run_dir, steps, t, progress, val_check_interval=val_every or max(1, steps // 5),
                           accumulate_grad_batches=t.accumulate_grad_batches, use_distributed_sampler=False,
                           callbacks=callbacks)
    started = time.time()
    trainer.fit(module, datamodule=data, ckpt_path=last_checkpoint(run_dir))
    if trainer.global_step < steps:  # Ctrl-C: Lightning stops gracefully; do not mark it done
        raise InputError(f"{spec.name} stopped at step {trainer.global_step} of {steps}; run it again to resume "
                         f"from {run_dir / 'checkpoints' / 'last.ckpt'}")
    done = {"stage": spec.name, "trains": list(spec.trains), "steps": steps,
            "final_metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "train_seconds": round(time.time() - started, 1),
            "trainable_parameters": trainable_parameter_count(model, spec)}
    save_stage_tensors(module, run_dir, cfg=cfg, name=name or spec.name, sections=list(MODEL_SECTIONS),
                       **done, **meta)
    wait_for_writer()
    return done


def save_stage_tensors(module, path: Path, **meta) -> None:
    """The one place a trained stage is written, for the pipeline and the fit CLI alike: the
    tensors the stage trained (``trained.safetensors``), whole (FSDP gathers them; every rank must
    enter), by rank 0 only; with ``meta``, also its ``meta.json`` (``write_meta``'s fields), last."""
    with module.full_parameters():
        if is_writer():
            atomic_save_safetensors(module.trained_tensors(), Path(path) / "trained.safetensors")
            if meta:
                write_meta(path, **meta)


