"""The thin training path (training/train.py) and the caching layer above it (pipeline.py):
``train_stage`` calls the loss once per task per step, leaves a complete artifact where
``run_stage`` looks, and ``run_stage`` then reuses it instead of training again."""
from healthgpt_lite.artifacts import data_dir_for, is_complete, read_meta
from healthgpt_lite.config import build_config
from healthgpt_lite.data.text_tokenizer import tokenizer_for
from healthgpt_lite.training import pipeline
from healthgpt_lite.training.lit_module import HealthGPTLitModule
from healthgpt_lite.training.pipeline import ensure_prerequisites, model_after, stage_path
from healthgpt_lite.training.train import stage_data, train_stage


def test_train_stage_is_what_run_stage_reuses(shared_artifacts, prerequisites_only, tmp_path, monkeypatch):
    cfg = build_config("tiny", "smoke", {"train.stage1_comprehension_steps": 3})
    ensure_prerequisites(cfg, shared_artifacts)
    root = prerequisites_only(tmp_path / "artifacts")
    data_dir, tok = data_dir_for(cfg, root), tokenizer_for(cfg)
    losses = []
    real_loss = HealthGPTLitModule._loss
    monkeypatch.setattr(HealthGPTLitModule, "_loss", lambda self, batch: losses.append(batch["task"]) or
                        real_loss(self, batch))

    path = stage_path(cfg, "stage1_comprehension", root)
    done = train_stage(cfg, "stage1_comprehension", model_after(cfg, [], root), stage_data(cfg, "stage1_comprehension",
                       tok, data_dir, artifacts_dir=root), path)
    assert done["steps"] == 3 and done["trains"] == ["abstract_adapter"]
    assert losses.count("comprehension") >= 3 and set(losses) == {"comprehension"}  # 3 steps (+ validation)
    assert is_complete(path) and (path / "trained.safetensors").is_file()
    meta = read_meta(path, "stage1_comprehension", "tiny")
    assert meta["steps"] == 3 and meta["sections"] == list(pipeline.MODEL_SECTIONS)

    def no_training(*args, **kwargs):
        raise AssertionError("run_stage trained a stage that train_stage had saved")

    monkeypatch.setattr(pipeline, "train_stage", no_training)
    assert pipeline.run_stage(cfg, "stage1_comprehension", root) == path


def test_lr_overrides_reach_the_optimizer_and_only_their_stage(shared_artifacts, prerequisites_only, tmp_path):
    """``train.lr_overrides`` replaces one group's learning rate of one stage: the optimizer of
    that stage gets it (x lr_scale, like the table's), the others keep the released values, and
    only the artifact keys of that stage and the stages built on it change."""
    import lightning as L
    import pytest

    from healthgpt_lite.errors import ConfigError
    from healthgpt_lite.training.pipeline import stage_key
    from healthgpt_lite.training.stages import ORDER, STAGES, stage_spec

    entry = "stage1_comprehension.abstract_adapter=3e-3"
    cfg = build_config("tiny", "smoke", {"train.stage1_comprehension_steps": 2, "train.lr_overrides": [entry]})
    plain = build_config("tiny", "smoke", {"train.stage1_comprehension_steps": 2})
    assert stage_spec("stage1_comprehension", cfg.train.lr_overrides).lrs == {"abstract_adapter": 3e-3}
    assert stage_spec("stage3_comprehension", cfg.train.lr_overrides) == STAGES["stage3_comprehension"]
    changed = [s for s in ORDER if stage_key(cfg, s) != stage_key(plain, s)]
    assert changed == ["stage1_comprehension", "stage2", "stage3_comprehension", "stage3_generation"]

    ensure_prerequisites(cfg, shared_artifacts)
    root = prerequisites_only(tmp_path / "artifacts")
    seen = {}

    class Lrs(L.Callback):
        def on_train_start(self, trainer, pl_module):
            seen.update({g["name"]: g["initial_lr"] for g in trainer.optimizers[0].param_groups})

    train_stage(cfg, "stage1_comprehension", model_after(cfg, [], root),
                stage_data(cfg, "stage1_comprehension", tokenizer_for(cfg), data_dir_for(cfg, root), artifacts_dir=root),
                tmp_path / "run", callbacks=(Lrs(),))
    assert seen == {"abstract_adapter": 3e-3 * cfg.train.lr_scale}

    for bad, says in (("stage9.abstract_adapter=1e-4", "unknown stage"), ("stage2.gen_plugin=1e-4", "trains"),
                      ("stage2.embeddings=fast", "positive number"), ("stage2=1e-4", "<stage>.<group>")):
        with pytest.raises(ConfigError, match=says):
            stage_key(build_config("tiny", "smoke", {"train.lr_overrides": [bad]}), "stage2")
