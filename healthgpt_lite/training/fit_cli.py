"""``python -m healthgpt_lite fit``: one stage through Lightning's ``LightningCLI``.

    python -m healthgpt_lite fit --config configs/tiny_cpu.yaml --model.stage stage1_comprehension
    python -m healthgpt_lite fit --config configs/m3_stage1.yaml            # GPUs, bf16, FSDP

Lightning is the distributed engine (DDP, FSDP, multi-node, bf16): the YAML's ``trainer``
section picks it; nothing here is home-made. The ``model`` section names the preset, profile,
stage, overrides (e.g. the local paths of real weights) and the artifacts folder. When ``fit`` ends, the stage is saved as the same artifact ``run_stage``
makes, so notebooks, ``reproduce`` and the CLI hand stages on to each other.

Data: by default the generated VL-Health-lite set with cached features. With
``data.train_records`` (LLaVA JSON files per task type, ``data.image_root``) it trains on real
data instead, and the model encodes images inline with its frozen ViT and VQGAN
(``records_data.py``); ``model.images_inline`` follows from it. ``data.batch_size``
(``{task: per-device batch}``) sets this run's batch without changing the config a stage is
keyed by, so the stages of a full run (different batches, one shared ``model.overrides``) find
each other. ``trainer.max_steps``, when given, is also the length of the learning-rate schedule.
``--print_config`` prints the settings and, under ``resolved``, every value the model section's
preset, profile and overrides resolve to (the real shapes of ``preset: m3``).
"""
from __future__ import annotations

import random
from pathlib import Path

import torch
from lightning.pytorch.cli import LightningCLI

from ..artifacts import data_dir_for
from ..config import build_config
from ..data.generate import ensure_dataset
from ..data.text_tokenizer import tokenizer_for
from ..errors import ConfigError
from .datamodule import StageDataModule
from .features import FeatureStore, ensure_features
from .lit_module import HealthGPTLitModule
from .pipeline import MODEL_SECTIONS, model_after, stage_key, stage_path, stages_before
from .train import save_stage_tensors
from .records_data import PixelCollator, RecordsDataset, fill_target_codes, load_task_records
from .stages import STAGES, check_stage_names, stage_spec


class StageModule(HealthGPTLitModule):
    """The stage module built from plain arguments, so a YAML file can describe it.

    ``images_inline``: batches carry pixels (real data); the model then holds its frozen ViT and,
    for generation, the frozen VQGAN that turns target images into codes on the GPU.
    ``activation_checkpointing``: recompute each Phi3 layer in backward (for DDP; FSDP configs
    use the strategy's ``activation_checkpointing_policy`` instead)."""

    def __init__(self, stage: str = "stage1_comprehension", preset: str = "tiny", profile: str = "cpu",
                 seed: int = 0, overrides: dict | None = None, artifacts_dir: str = "artifacts",
                 images_inline: bool = False, activation_checkpointing: bool = False):
        cfg = build_config(preset, profile, overrides or {}, seed=seed)
        check_stage_names([stage], ConfigError)
        model = model_after(cfg, stages_before(stage), artifacts_dir, with_vision=images_inline)
        t = cfg.train
        super().__init__(model, stage_spec(stage, t.lr_overrides), getattr(t, f"{stage}_steps"), t.lr_scale,
                         t.warmup_fraction, seed=seed,
                         image_token_noise=t.image_token_noise)
        self.cfg, self.stage_name, self.artifacts_dir = cfg, stage, artifacts_dir
        self.vq_model = None
        if images_inline and "generation" in self.spec.tasks:
            from ..vq import load_vq_tokenizer

            self.vq_model = load_vq_tokenizer(cfg, artifacts_dir).model  # frozen; moves with the module
        if activation_checkpointing:
            model.llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})

    def train(self, mode: bool = True) -> "StageModule":
        super().train(mode)
        if self.vq_model is not None:
            self.vq_model.eval()  # a Gumbel quantizer samples in train mode; codes must be argmax
        return self

    def _loss(self, batch: dict) -> torch.Tensor:
        if batch.get("target_pixels") is not None:  # real data: target image -> VQ codes, in fp32
            from ..vq.tokenizer import VQTokenizer

            with torch.autocast(self.device.type, enabled=False):
                codes = VQTokenizer(self.vq_model).encode(batch["target_pixels"])  # (B, h, w)
            fill_target_codes(batch, codes, self.model.block.first_idx)
        return super()._loss(batch)

    def on_fit_end(self) -> None:
        """Save the stage as an artifact (rank 0 writes), through the same function as ``run_stage``."""
        path = stage_path(self.cfg, self.stage_name, self.artifacts_dir)
        path.mkdir(parents=True, exist_ok=True)
        save_stage_tensors(self, path, cfg=self.cfg, name=self.stage_name, sections=list(MODEL_SECTIONS),
                           stage_key=stage_key(self.cfg, self.stage_name), trains=list(self.spec.trains), via="fit")


class StageData(StageDataModule):
    """The stage's batches: VL-Health-lite with cached features, or real LLaVA JSON files
    (``train_records`` / ``val_records``: ``{task type: path}``, images under ``image_root``).
    ``batch_size``: ``{task type: per-device batch}`` for this run (default: ``cfg.train``'s)."""

    def __init__(self, stage: str = "stage1_comprehension", preset: str = "tiny", profile: str = "cpu", seed: int = 0,
                 overrides: dict | None = None, artifacts_dir: str = "artifacts", data_dir: str | None = None,
                 train_records: dict[str, str] | None = None, val_records: dict[str, str] | None = None,
                 image_root: str | None = None, batch_size: dict[str, int] | None = None):
        cfg = build_config(preset, profile, overrides or {}, seed=seed)
        check_stage_names([stage], ConfigError)
        spec = STAGES[stage]
        store, data = None, None
        if train_records:
            for files, name in ((train_records, "train_records"), (val_records, "val_records")):
                missing = [task for task in spec.tasks if files and task not in files]
                if missing:
                    raise ConfigError(f"data.{name} has files for {sorted(files)}; {stage} also needs {missing}")
        else:
            data = ensure_dataset(Path(data_dir) if data_dir else data_dir_for(cfg, artifacts_dir), cfg.data)
            store = FeatureStore.load(ensure_features(cfg, artifacts_dir, data))
        super().__init__(cfg, spec, store, tokenizer_for(cfg), data, batch_size)
        self.record_files = {"train": train_records, "val": val_records} if train_records else None
        self.image_root = Path(image_root) if image_root else Path(".")

    def setup(self, stage: str | None = None) -> None:
        if self.record_files is None:
            return super().setup(stage)
        rng = random.Random(self.cfg.seed)
        self.train_sets, self.val_sets = {}, {}
        for split, target in (("train", self.train_sets), ("val", self.val_sets)):
            for task in self.spec.tasks if self.record_files[split] else ():
                recs = load_task_records(self.record_files[split][task], task, self.image_root)
                if split == "train" and self.sample is not None and len(recs) > self.sample:
                    recs = rng.sample(recs, self.sample)  # stage 2: "a small mixed sample"
                target[task] = RecordsDataset(recs, self.tok, self.cfg, task, self.image_root)

    def collator(self, task: str):
        return PixelCollator(self.tok.pad_token_id, task) if self.record_files else super().collator(task)

    def val_dataloader(self):
        return super().val_dataloader() if self.val_sets else []


class HealthGPTCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # the stage, preset, profile, seed, overrides and artifacts folder are set once, for both
        for key in ("stage", "preset", "profile", "seed", "overrides", "artifacts_dir"):
            parser.link_arguments(f"model.{key}", f"data.{key}")
        # real data (LLaVA JSON files) has no feature cache: the model encodes its images inline
        parser.link_arguments("data.train_records", "model.images_inline", compute_fn=bool)

    def before_instantiate_classes(self) -> None:
        """The stage's step count comes from the config (one source of truth), and its
        checkpoints go into the stage's artifact folder, so ``--ckpt_path last`` resumes."""
        c = self.config[self.subcommand] if self.subcommand else self.config
        m = c.model
        check_stage_names([m.stage], ConfigError)
        if c.trainer.max_steps not in (None, -1):  # an explicit max_steps is also the schedule's length
            m.overrides = c.data.overrides = {**(m.overrides or {}), f"train.{m.stage}_steps": c.trainer.max_steps}
        cfg = build_config(m.preset, m.profile, m.overrides or {}, seed=m.seed)
        c.trainer.max_steps = getattr(cfg.train, f"{m.stage}_steps")
        if c.data.train_records and not c.data.val_records:
            c.trainer.limit_val_batches = 0  # real data without a validation file: no validation loop
        if c.trainer.default_root_dir is None:
            c.trainer.default_root_dir = str(stage_path(cfg, m.stage, m.artifacts_dir))


# use_distributed_sampler: the step-indexed batches shard themselves across ranks (sampling.py)
TRAINER_DEFAULTS = {"enable_model_summary": False, "num_sanity_val_steps": 0, "use_distributed_sampler": False}


def main(args: list[str] | None = None, run: bool = True) -> HealthGPTCLI | None:
    if args is not None and "--print_config" in args:
        return print_config([a for a in args if a not in ("fit", "--print_config")])
    return HealthGPTCLI(StageModule, StageData, args=args, run=run, save_config_callback=None,
                        trainer_defaults=TRAINER_DEFAULTS)


def print_config(args: list[str]) -> None:
    """``fit ... --print_config``: the fit settings as LightningCLI reads them, then every value
    the model section resolves to (preset shapes, profile budgets, overrides), so a YAML that
    says ``preset: m3`` shows M3's real shapes (the project config is built from
    ``model.preset/profile/seed/overrides``, which LightningCLI alone prints as given)."""
    from ..config import as_yaml
    from ..scale.dry_run import config_of, parse_fit_config

    ns = parse_fit_config(None, *args)
    print(as_yaml(ns.as_dict()), end="")
    print("# the project config model.preset, profile, seed and overrides resolve to (healthgpt-lite config):")
    print(as_yaml({"resolved": config_of(ns).to_dict()}), end="")


