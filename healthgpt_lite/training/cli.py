"""``python -m healthgpt_lite fit``: one stage through Lightning's ``LightningCLI``.

    python -m healthgpt_lite fit --config configs/tiny_cpu.yaml --model.stage stage1_comprehension
    python -m healthgpt_lite fit --config configs/m3_stage1.yaml            # GPUs, bf16, FSDP

Lightning is the distributed engine (DDP, FSDP, multi-node, bf16): the YAML's ``trainer``
section picks it; nothing here is home-made. The ``model`` section names the preset, profile,
stage, overrides (e.g. the local paths of real weights) and the artifacts folder. When ``fit``
ends, the stage is saved as the same artifact ``run_stage`` makes, so notebooks, ``reproduce``
and the CLI hand stages on to each other.
"""
from __future__ import annotations

from pathlib import Path

from lightning.pytorch.cli import LightningCLI

from ..artifacts import atomic_save_safetensors, data_dir_for, write_meta
from ..config import build_config
from ..data.generate import ensure_dataset
from ..data.tokenizer import tokenizer_for
from .datamodule import StageDataModule
from .features import FeatureStore, ensure_features
from .lit_module import HealthGPTLitModule
from .pipeline import MODEL_SECTIONS, model_after, stage_key, stage_path, stages_before
from .stages import STAGES


class StageModule(HealthGPTLitModule):
    """The stage module built from plain arguments, so a YAML file can describe it."""

    def __init__(self, stage: str = "stage1_comprehension", preset: str = "tiny", profile: str = "cpu",
                 seed: int = 0, overrides: dict | None = None, artifacts_dir: str = "artifacts"):
        cfg = build_config(preset, profile, overrides or {}, seed=seed)
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; choose one of {list(STAGES)}")
        model = model_after(cfg, stages_before(stage), artifacts_dir)
        t = cfg.train
        super().__init__(model, STAGES[stage], getattr(t, f"{stage}_steps"), t.lr_scale, t.warmup_fraction, seed=seed)
        self.cfg, self.stage_name, self.artifacts_dir = cfg, stage, artifacts_dir

    def on_fit_end(self) -> None:
        """Save the stage as an artifact (rank 0 only), exactly as ``run_stage`` would."""
        if self.trainer.is_global_zero:
            path = stage_path(self.cfg, self.stage_name, self.artifacts_dir)
            path.mkdir(parents=True, exist_ok=True)
            atomic_save_safetensors(self.model.trainable_state(self.spec.trains), path / "trained.safetensors")
            write_meta(path, self.cfg, self.stage_name, sections=list(MODEL_SECTIONS), stage_key=stage_key(self.cfg, self.stage_name),
                       trains=list(self.spec.trains), via="fit")


class StageData(StageDataModule):
    def __init__(self, stage: str = "stage1_comprehension", preset: str = "tiny", profile: str = "cpu", seed: int = 0,
                 overrides: dict | None = None, artifacts_dir: str = "artifacts", data_dir: str | None = None):
        cfg = build_config(preset, profile, overrides or {}, seed=seed)
        data = ensure_dataset(Path(data_dir) if data_dir else data_dir_for(cfg, artifacts_dir), cfg.data)
        store = FeatureStore.load(ensure_features(cfg, artifacts_dir, data))
        spec, t = STAGES[stage], cfg.train
        super().__init__(cfg, spec, store, tokenizer_for(cfg), data,
                         {"comprehension": t.comp_batch_size, "generation": t.gen_batch_size},
                         sample_per_task=t.stage2_samples if spec.stage == "stage2" else None)


class HealthGPTCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # the stage, preset, profile, seed, overrides and artifacts folder are set once, for both
        for key in ("stage", "preset", "profile", "seed", "overrides", "artifacts_dir"):
            parser.link_arguments(f"model.{key}", f"data.{key}")

    def before_instantiate_classes(self) -> None:
        """The stage's step count comes from the config (one source of truth), and its
        checkpoints go into the stage's artifact folder, so ``--ckpt_path last`` resumes."""
        c = self.config[self.subcommand] if self.subcommand else self.config
        m = c.model
        cfg = build_config(m.preset, m.profile, m.overrides or {}, seed=m.seed)
        if c.trainer.max_steps in (None, -1):
            c.trainer.max_steps = getattr(cfg.train, f"{m.stage}_steps")
        if c.trainer.default_root_dir is None:
            c.trainer.default_root_dir = str(stage_path(cfg, m.stage, m.artifacts_dir))


def main(args: list[str] | None = None, run: bool = True) -> HealthGPTCLI:
    return HealthGPTCLI(StageModule, StageData, args=args, run=run, save_config_callback=None,
                        trainer_defaults={"enable_model_summary": False, "num_sanity_val_steps": 0})


def fit_entry(argv: list[str]) -> int:
    main(["fit", *argv])
    return 0

