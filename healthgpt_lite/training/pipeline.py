"""The caching layer over ``train.py``: load-or-train a stage, and rebuild the model after any stage.

A stage artifact stores only what the stage trained (``trained.safetensors``) plus metadata;
the model after stage S is: seeded initialisation -> base LLM -> image vocabulary -> H-LoRA
plugins and adapters -> the trained tensors of every earlier stage, applied in order.
A stage refuses to start when a stage it builds on is missing, naming what makes it.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..artifacts import artifact_dir, data_dir_for, is_complete, read_meta, read_safetensors
from ..config import Config
from ..data.generate import ensure_dataset
from ..data.records import GENERATION_TASKS
from ..data.text_tokenizer import image_token_ids, tokenizer_for
from ..errors import InputError
from ..model.image_positions import image_positions_for
from ..model.multimodal import SequenceLayout
from ..model.healthgpt_model import HealthGPTModel
from ..model.vocab import extend_vocabulary
from .features import ensure_features
from .llm_pretrain import load_base_llm
from .stages import MODEL_SECTIONS, ORDER, STAGES, StageSpec, check_stage_names, lr_overrides
from .train import stage_data, train_stage

STAGE_HINT = "`python -m healthgpt_lite fit --stage {name}` or notebooks 06-08 (or `make reproduce`)"


def build_model(cfg: Config, tokenizer=None, artifacts_dir=None, with_vision: bool = False,
                shared_plugin: bool = False, base_llm: nn.Module | None = None, plugins: bool = True) -> HealthGPTModel:
    """The model before any stage: base LLM + image vocabulary + plugins + adapters (seeded).
    ``base_llm`` (text-only) replaces the preset's pretrained one, e.g. a random LLM in tests.
    ``plugins=False``: the LLaVA-style model of Qilin-Med-VL (docs/PAPERS.md section 5): the base LLM
    with its vocabulary unchanged (no image tokens) and no H-LoRA plugins, plus the adapters."""
    from ..lora import inject_hlora
    from ..vision import load_vision_encoder, make_adapters

    tokenizer = tokenizer or tokenizer_for(cfg)
    block = image_token_ids(tokenizer)
    llm = base_llm if base_llm is not None else load_base_llm(cfg, artifacts_dir)
    if plugins:
        extend_vocabulary(llm, len(tokenizer), first_new_id=block.start)
    torch.manual_seed(cfg.seed)
    if plugins:
        tasks = {"shared": cfg.lora.comprehension} if shared_plugin else \
            {"comprehension": cfg.lora.comprehension, "generation": cfg.lora.generation}
        inject_hlora(llm, tasks, kind=cfg.lora.kind)
    adapters = make_adapters(cfg)
    vision = load_vision_encoder(cfg, artifacts_dir) if with_vision else None
    plugin_of_task = {"comprehension": "shared", "generation": "shared"} if shared_plugin else None
    positions = image_positions_for(cfg) if plugins else None
    return HealthGPTModel(llm, adapters, vision, block, SequenceLayout.from_tokenizer(tokenizer), cfg.vq.num_tokens,
                          plugin_of_task, image_positions=positions)


def options_used(spec: StageSpec) -> tuple[str, ...]:
    """The ``train.*`` options that change what this stage learns (beyond steps, batch and lr)."""
    used = ["accumulate_grad_batches"]
    if "generation" in spec.tasks:
        used.append("image_token_noise")
        if len([t for t in spec.record_tasks if t in GENERATION_TASKS]) > 1:
            used.append("balance_generation_tasks")
    if {"vqa_closed", "vqa_open"} & set(spec.record_tasks):
        used.append("comp_turns")
    return tuple(used)


def stage_key(cfg: Config, name: str) -> dict:
    """What, besides the model sections, decides a stage's result: the seed, the shared training
    settings and the steps of this stage and every stage it builds on (not the later ones), and
    the options those stages use when they are not at their defaults (so artifacts made before
    an option existed keep their keys)."""
    import dataclasses

    t = cfg.train
    chain = stages_before(name) + [name]
    key = {"seed": cfg.seed, "steps": {s: getattr(t, f"{s}_steps") for s in chain},
           "batch": [t.comp_batch_size, t.gen_batch_size, t.stage2_samples], "lr": [t.lr_scale, t.warmup_fraction]}
    defaults = {f.name: f.default for f in dataclasses.fields(t)}
    used = {o for s in chain for o in options_used(STAGES[s])}
    key.update({o: getattr(t, o) for o in sorted(used) if getattr(t, o) != defaults[o]})
    changed = lr_overrides(t.lr_overrides)  # checked here, before anything trains
    if mine := {s: changed[s] for s in chain if s in changed}:
        key["lr_overrides"] = mine
    return key


def stage_path(cfg: Config, name: str, artifacts_dir=None) -> Path:
    return artifact_dir(cfg, name, MODEL_SECTIONS, artifacts_dir, stage_key(cfg, name))


def apply_stage(model: nn.Module, path: Path, cfg: Config, name: str, hint: str = STAGE_HINT, keep=None) -> None:
    """Overlay a stage's trained tensors; refuses a stage made for another preset, or tensors
    whose names or shapes do not fit this model. ``hint``: what makes the stage; ``keep(name)``:
    overlay only these tensors."""
    read_meta(path, name, cfg.preset, hint.format(name=name))
    tensors = {k: v for k, v in read_safetensors(path / "trained.safetensors").items() if keep is None or keep(k)}
    own = dict(model.named_parameters())
    unknown = [k for k in tensors if k not in own]
    wrong = [k for k in tensors if k in own and own[k].shape != tensors[k].shape]
    if unknown or wrong:
        raise InputError(f"{path}: stage {name} does not fit this model (unknown {unknown[:3]}, wrong shape {wrong[:3]})")
    with torch.no_grad():
        for k, v in tensors.items():
            own[k].copy_(v)


def stages_before(name: str) -> list[str]:
    """Every stage ``name`` builds on, in training order."""
    needed, todo = set(), list(STAGES[name].depends_on)
    while todo:
        dep = todo.pop()
        if dep not in needed:
            needed.add(dep)
            todo += STAGES[dep].depends_on
    return [s for s in ORDER if s in needed]


def model_after(cfg: Config, stages: list[str], artifacts_dir=None, with_vision: bool = False, tokenizer=None) -> HealthGPTModel:
    check_stage_names(stages)
    model = build_model(cfg, tokenizer, artifacts_dir, with_vision)
    for s in stages:
        apply_stage(model, stage_path(cfg, s, artifacts_dir), cfg, s)
    return model


def run_stage(cfg: Config, name: str, artifacts_dir=None, data_dir=None, progress: bool = False,
              callbacks=()) -> Path:
    """Load-or-train one stage: reuse the artifact a run with this config made, else train it
    (``train.train_stage``; it resumes from its last checkpoint after an interruption).
    ``callbacks``: extra Lightning callbacks while it trains (``gpu-check`` times the steps)."""
    check_stage_names([name])
    path = stage_path(cfg, name, artifacts_dir)
    if not is_complete(path):
        data_dir = ensure_dataset(data_dir or data_dir_for(cfg, artifacts_dir), cfg.data)
        tokenizer = tokenizer_for(cfg)
        model = model_after(cfg, stages_before(name), artifacts_dir, tokenizer=tokenizer)
        data = stage_data(cfg, name, tokenizer, data_dir, artifacts_dir=artifacts_dir, progress=progress)
        train_stage(cfg, name, model, data, path, progress=progress, callbacks=callbacks)
    return path


def ensure_prerequisites(cfg: Config, artifacts_dir=None, data_dir=None, progress: bool = False) -> Path:
    """Everything the stages stand on, load-or-train: data, CLIP-lite eyes, the VQ tokenizer,
    the LLM's language, and the cached features. Returns the data folder."""
    from ..vision import ensure_clip_lite
    from ..vq import ensure_vq
    from .llm_pretrain import ensure_llm_lite

    data_dir = ensure_dataset(data_dir or data_dir_for(cfg, artifacts_dir), cfg.data, progress=progress)
    if not cfg.vision.pretrained_path:
        ensure_clip_lite(cfg, artifacts_dir, data_dir, progress)
    if not cfg.vq.pretrained_path:
        ensure_vq(cfg, artifacts_dir, data_dir, progress)
    ensure_llm_lite(cfg, artifacts_dir, data_dir, progress)
    ensure_features(cfg, artifacts_dir, data_dir, progress)
    return data_dir


def ensure_stages(cfg: Config, names: list[str] | tuple[str, ...] = ORDER, artifacts_dir=None, data_dir=None,
                  progress: bool = False) -> dict[str, Path]:
    """Load-or-train ``names`` and every stage they build on, in training order (what a
    notebook calls so that it also runs on its own)."""
    data_dir = ensure_prerequisites(cfg, artifacts_dir, data_dir, progress)
    wanted = {d for n in names for d in stages_before(n)} | set(names)
    return {s: run_stage(cfg, s, artifacts_dir, data_dir, progress) for s in ORDER if s in wanted}
