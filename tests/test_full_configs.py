"""The full-run YAMLs parse through the project's LightningCLI and give the paper's global batch
sizes, bf16, real weights from local paths and the intended strategy; the GPU settings are
built on the CPU (Lightning's CUDA count is mocked; nothing runs on a GPU)."""
import json
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import lightning as L
import pytest
from lightning.pytorch.strategies import FSDPStrategy
from transformers.models.clip.modeling_clip import CLIPEncoderLayer
from transformers.models.phi3.modeling_phi3 import Phi3DecoderLayer

from healthgpt_lite.errors import ConfigError
from healthgpt_lite.scale.dry_run import (build_strategy, config_of, parse_fit_config, run_summary, stages_of,
                                          trainer_kwargs)
from healthgpt_lite.training.fit_cli import StageModule
from healthgpt_lite.training.pipeline import stage_path
from healthgpt_lite.training.stages import STAGES

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FULL = sorted(p.name for p in CONFIGS.glob("*_stage*.yaml"))
# docs/PAPERS.md section 3 (M3; L14 uses the same): global batch per stage and task (stage 2: both, 16 + 16)
GLOBAL_BATCH = {"stage1_comprehension": 256, "stage1_generation": 64, "stage3_comprehension": 128,
                "stage3_generation": 64}


def test_every_preset_and_stage_has_a_config():
    assert FULL == [f"{p}_stage{s}.yaml" for p in ("l14", "m3") for s in (1, 2, 3)]


@pytest.mark.parametrize("name", FULL)
def test_config_parses_with_the_papers_batches_and_real_weights(name):
    ns = parse_fit_config(CONFIGS / name)
    preset = name.split("_")[0]
    assert ns.model.preset == preset and ns.trainer.precision == "bf16-mixed" and ns.trainer.accelerator == "gpu"
    overrides = ns.model.overrides
    for key in ("vision.pretrained_path", "llm.pretrained_path", "llm.tokenizer_path", "vq.pretrained_path"):
        assert overrides[key].startswith("/"), key
    assert ("phi-4" in overrides["llm.pretrained_path"]) == (preset == "l14")
    assert ns.model.images_inline  # real LLaVA JSON: the ViT and VQGAN run inline
    assert "train.lr_scale" not in overrides and config_of(ns).train.lr_scale == 1.0  # the preset says it
    for stage in stages_of(ns):
        summary = run_summary(parse_fit_config(CONFIGS / name, "--model.stage", stage))
        if stage == "stage2":
            assert summary["global_batch_comprehension"] + summary["global_batch_generation"] == 32
        else:
            assert summary[f"global_batch_{STAGES[stage].task}"] == GLOBAL_BATCH[stage], (name, stage)
        assert summary["optimizer_steps"] == overrides[f"train.{stage}_steps"]
        assert set(ns.data.train_records) >= set(STAGES[stage].tasks)


@pytest.mark.parametrize("name", FULL)
def test_strategy_and_trainer_build_on_the_cpu(name):
    ns = parse_fit_config(CONFIGS / name)
    strategy = build_strategy(ns)
    if name.startswith("l14"):
        assert isinstance(strategy, FSDPStrategy)
        assert strategy.kwargs["use_orig_params"]  # frozen and trained weights share wrapped units
        assert strategy.kwargs["auto_wrap_policy"]._module_classes == {Phi3DecoderLayer, CLIPEncoderLayer}
        assert strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes == {Phi3DecoderLayer}
    else:
        assert strategy.startswith("ddp")
    with mock.patch("lightning.fabric.accelerators.cuda.num_cuda_devices", return_value=ns.trainer.devices), \
            mock.patch("torch.cuda.is_available", return_value=True), \
            mock.patch("torch.cuda.device_count", return_value=ns.trainer.devices):
        trainer = L.Trainer(**trainer_kwargs(ns))
    assert trainer.world_size == ns.trainer.devices * ns.trainer.num_nodes
    assert trainer.accumulate_grad_batches == ns.trainer.accumulate_grad_batches
    assert Path(trainer.default_root_dir).name.startswith(ns.model.stage)  # the stage's artifact folder


@pytest.mark.parametrize("preset", ["m3", "l14"])
def test_the_stages_of_a_preset_find_each_other(preset):
    """A stage locates the stages it builds on by its own config: every file of a preset must
    give the same one (per-device batches live in data.batch_size, outside that config)."""
    runs = [parse_fit_config(CONFIGS / f"{preset}_stage{s}.yaml") for s in (1, 2, 3)]
    assert all(ns.model.overrides == runs[0].model.overrides for ns in runs)
    paths = {str(stage_path(config_of(ns), "stage1_generation", ns.model.artifacts_dir)) for ns in runs}
    assert len(paths) == 1
    assert len({json.dumps(ns.data.batch_size, sort_keys=True) for ns in runs}) == 3  # each stage its own batch


def test_l14_stage1_generation_runs_with_ddp_and_checkpointing():
    ns = parse_fit_config(CONFIGS / "l14_stage1.yaml", "--model.stage", "stage1_generation",
                          "--trainer.strategy", "ddp", "--model.activation_checkpointing", "true")
    assert build_strategy(ns) == "ddp" and ns.model.activation_checkpointing
    assert run_summary(ns)["global_batch_generation"] == 64


def test_fsdp_is_refused_where_the_row_mask_would_be_bypassed():
    fake = SimpleNamespace(spec=STAGES["stage1_generation"], stage_name="stage1_generation",
                           trainer=SimpleNamespace(strategy=FSDPStrategy()))
    with pytest.raises(ConfigError, match="--trainer.strategy ddp"):
        StageModule.setup(fake, "fit")
    StageModule.setup(SimpleNamespace(**{**vars(fake), "spec": STAGES["stage3_generation"]}), "fit")  # fine


def test_explicit_max_steps_is_also_the_schedule_length():
    ns = parse_fit_config(CONFIGS / "m3_stage3.yaml", "--trainer.max_steps", "123")
    assert ns.trainer.max_steps == 123 and ns.model.overrides["train.stage3_comprehension_steps"] == 123
    assert ns.data.overrides == ns.model.overrides


def test_tiny_config_still_parses_to_the_generated_data():
    ns = parse_fit_config(CONFIGS / "tiny_cpu.yaml")
    assert not ns.model.images_inline and ns.data.train_records is None and ns.trainer.accelerator == "cpu"


def test_unknown_stage_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown stage"):
        parse_fit_config(CONFIGS / "m3_stage1.yaml", "--model.stage", "stage4")


def test_print_config_shows_the_real_shapes(capsys):
    """``fit --print_config`` prints the fit settings and what ``preset: m3`` resolves to."""
    import yaml

    from healthgpt_lite.cli import main

    assert main(["fit", "--config", str(CONFIGS / "m3_stage3.yaml"), "--model.stage", "stage3_generation",
                 "--print_config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["stage"] == "stage3_generation" and printed["trainer"]["devices"] == 8
    resolved = printed["resolved"]
    assert resolved["llm"]["hidden_size"] == 3072 and resolved["vq"]["n_embed"] == 8192
    assert resolved["lora"]["generation"]["rank"] == 256 and resolved["train"]["lr_scale"] == 1.0
    assert resolved["train"]["stage3_generation_steps"] == 12200  # from the YAML's model.overrides
