"""The report->X-ray lesion probe takes every setting from ``cfg.eval.probe_*`` (no constants in
the notebook or the pipeline)."""
from healthgpt_lite.config import build_config
from healthgpt_lite.eval import probe


def test_train_probe_from_config_passes_every_setting(monkeypatch):
    seen = {}
    monkeypatch.setattr(probe, "train_probe", lambda *args, **kwargs: seen.update(args=args, kwargs=kwargs))
    cfg = build_config("tiny", "smoke", {"eval.probe_width": 8, "eval.probe_lr": 1e-3, "eval.probe_batch": 16})
    probe.train_probe_from_config(cfg)
    assert seen["args"] == (cfg.vq.resolution, cfg.eval.probe_patients, cfg.eval.probe_steps)
    assert {k: seen["kwargs"][k] for k in ("width", "lr", "batch", "seed")} == {"width": 8, "lr": 1e-3, "batch": 16,
                                                                               "seed": cfg.seed}
