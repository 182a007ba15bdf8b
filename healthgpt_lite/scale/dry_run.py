"""Dry runs of the full-run configs on a laptop: parse, check, build the strategy; train nothing.

    ns = parse_fit_config("configs/m3_stage1.yaml")          # exactly what `fit --config` parses
    config_of(ns), plan_config(ns)  # the config the stages are keyed by; the same with this run's batch
    run_summary(ns)     # preset, stage, GPUs, per-device batch x accumulation = global batch
    build_strategy(ns)  # the Lightning strategy object (FSDPStrategy with its wrap policy, or "ddp")
    trainer_kwargs(ns)  # everything `L.Trainer(**kwargs)` gets (needs GPUs to build for real)
    run_fit(laptop_fit_args("configs/m3_stage1.yaml", ...))  # the same file, tiny shapes, one CPU

The parser is the project's ``HealthGPTCLI`` itself, with instantiation switched off, so a
config that passes here fails on a cluster only for what a laptop cannot check (GPUs, files).
"""
from __future__ import annotations

import importlib
import json
import logging
import warnings
from pathlib import Path

from ..config import Config, build_config
from ..training.fit_cli import TRAINER_DEFAULTS, HealthGPTCLI, StageData, StageModule
from ..training.stages import ORDER, STAGES


class _ParseOnlyCLI(HealthGPTCLI):
    def instantiate_classes(self) -> None:  # parse and link, build nothing (no weights needed)
        pass


def parse_fit_config(config: str | Path | None, *args: str):
    """The namespace ``python -m healthgpt_lite fit --config CONFIG ARGS`` would train with
    (``config=None``: ``fit ARGS``)."""
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")
    level = seed_log.level
    seed_log.setLevel(logging.WARNING)  # "Seed set to 0": nothing is trained here
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*args parameter is intended.*")  # called from a CLI
            warnings.filterwarnings("ignore", message=".*No seed found.*")
            cli = _ParseOnlyCLI(StageModule, StageData, args=[*(["--config", str(config)] if config else []), *args], run=False,
                                save_config_callback=None, trainer_defaults=TRAINER_DEFAULTS)
    finally:
        seed_log.setLevel(level)
    return cli.config


def config_of(ns) -> Config:
    """The project config of a parsed fit config (preset, profile, overrides): the config its
    stages are keyed by, so also the one that loads them (``HealthGPTLite.from_config``)."""
    m = ns.model
    return build_config(m.preset, m.profile, m.overrides or {}, seed=m.seed)


def per_device_batch(ns) -> dict[str, int]:
    """Samples per GPU per forward, by task: ``data.batch_size`` over the config's defaults."""
    t = config_of(ns).train
    return {"comprehension": t.comp_batch_size, "generation": t.gen_batch_size} | dict(ns.data.batch_size or {})


def plan_config(ns) -> Config:
    """``config_of(ns)`` with this run's per-device batch in ``train`` (what ``scale.plan`` reads)."""
    batch = per_device_batch(ns)
    return build_config(ns.model.preset, ns.model.profile, {**(ns.model.overrides or {}),
                        "train.comp_batch_size": batch["comprehension"], "train.gen_batch_size": batch["generation"]},
                        seed=ns.model.seed)


def stages_of(ns) -> tuple[str, ...]:
    """The stage of the config and its sibling task (stage 1 and 3 have one run per task)."""
    stage = STAGES[ns.model.stage].stage
    return tuple(n for n in ORDER if STAGES[n].stage == stage)


def run_summary(ns) -> dict:
    """Who trains what on how many GPUs, and the global batch per task (docs/PAPERS.md section 3)."""
    cfg, t = config_of(ns), ns.trainer
    world = int(t.devices) * int(t.num_nodes)
    accumulate = int(t.accumulate_grad_batches)
    per_device = per_device_batch(ns)
    tasks = STAGES[ns.model.stage].tasks
    strategy = t.strategy if isinstance(t.strategy, str) else t.strategy.class_path.rsplit(".", 1)[-1]
    return {"preset": cfg.preset, "stage": ns.model.stage, "precision": t.precision, "strategy": strategy,
            "gpus": f"{t.devices} x {t.num_nodes} node(s) = {world}", "accumulate_grad_batches": accumulate,
            "optimizer_steps": t.max_steps,
            **{f"global_batch_{task}": per_device[task] * world * accumulate for task in tasks},
            **{f"per_device_{task}": per_device[task] for task in tasks},
            "llm": cfg.llm.pretrained_path, "vision": cfg.vision.pretrained_path, "vq": cfg.vq.pretrained_path,
            "train_records": dict(ns.data.train_records or {}), "image_root": ns.data.image_root}


def build_strategy(ns):
    """The strategy object of ``trainer.strategy`` (a string such as ``"ddp"`` stays a string)."""
    s = ns.trainer.strategy
    if isinstance(s, str):
        return s
    module, _, name = s.class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**dict(s.init_args or {}))


def trainer_kwargs(ns) -> dict:
    """Keyword arguments for ``lightning.Trainer`` (strategy built), as ``fit`` would pass them."""
    kw = {k: v for k, v in vars(ns.trainer).items() if v is not None and k != "strategy"}
    kw["strategy"] = build_strategy(ns)
    return kw


def laptop_fit_args(config: str | Path, stage: str, overrides: dict, train_records: dict, image_root: str | Path,
                    artifacts_dir: str | Path, steps: int = 2, log_dir: str | Path | None = None,
                    batch_size: int = 2) -> list[str]:
    """``fit`` arguments that run a full-run YAML on this machine: everything from the file
    except the shapes (``tiny``), the weights (``overrides``: e.g. stand-ins), the data and the
    hardware (one CPU, fp32, ``batch_size`` per task, no accumulation). ``log_dir``: a CSVLogger
    there (``read_metrics``)."""
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger",
              "init_args": {"save_dir": str(log_dir), "name": "", "version": "logs"}} if log_dir else False
    return ["fit", "--config", str(config), "--model.stage", stage, "--model.preset", "tiny", "--model.profile", "smoke",
            "--model.overrides", json.dumps(overrides), "--model.artifacts_dir", str(artifacts_dir),
            "--data.train_records", json.dumps(train_records), "--data.image_root", str(image_root),
            "--data.batch_size", json.dumps({"comprehension": batch_size, "generation": batch_size}),
            "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.num_nodes", "1",
            "--trainer.strategy", "auto", "--trainer.precision", "32-true", "--trainer.accumulate_grad_batches", "1",
            "--trainer.max_steps", str(steps), "--trainer.log_every_n_steps", "1", "--trainer.logger", json.dumps(logger),
            "--trainer.callbacks", "null", "--trainer.enable_checkpointing", "false",
            "--trainer.enable_progress_bar", "false"]


def run_fit(args: list[str], quiet: bool = True):
    """``training.cli.main(args)`` from Python (a notebook), without Lightning's chatter when quiet."""
    from ..training.fit_cli import main

    if quiet:
        for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero",
                     "lightning.fabric.utilities.rank_zero", "lightning.fabric.utilities.seed"):
            logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")  # a kernel's own argv
        if quiet:
            warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # the frozen ViT, by design
            warnings.filterwarnings("ignore", message=".*tensorboardX.*")
        return main(args)
