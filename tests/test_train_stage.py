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
