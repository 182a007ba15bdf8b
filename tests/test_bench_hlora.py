"""The H-LoRA benchmark runs end to end on a very small setting and reports what it promises
(no timing assertions: speed is read from the printed ratios, not tested)."""
import pandas as pd
import pytest

from healthgpt_lite.bench.plugin_speed import bench_llm, variants
from healthgpt_lite.cli import main
from healthgpt_lite.config import build_config
from healthgpt_lite.errors import ConfigError

TINY_BENCH = ["--profile", "smoke", "--set", "bench.experts=[2]", "--set", "bench.rank=8", "--set", "bench.seq_len=8",
              "--set", "bench.batch_size=2", "--set", "bench.repeats=1", "--set", "bench.warmup=1",
              "--set", "llm.num_layers=1", "--set", "bench.vocab_size=64"]


def test_bench_cli_writes_the_table(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("healthgpt_lite.bench.plugin_speed.SAMPLE_S", 0.0)  # one step per sample
    out = tmp_path / "bench.csv"
    assert main(["bench", "hlora", "--out", str(out), *TINY_BENCH]) == 0
    df = pd.read_csv(out)
    assert list(df["variant"]) == ["lora", "moelora k=2", "hlora k=2"]
    assert df.loc[0, "time_vs_lora"] == 1.0 and (df["step_ms"] > 0).all() and (df["step_peak_mb"] > 0).all()
    # same total rank: H-LoRA and MoELoRA hold exactly the same number of weights, LoRA lacks only the router
    assert df.loc[1, "adapter_params"] == df.loc[2, "adapter_params"] > df.loc[0, "adapter_params"]
    printed = capsys.readouterr().out
    assert "time_vs_lora" in printed and "load average" in printed


def test_bench_settings_are_checked():
    cfg = build_config("tiny", "smoke", {"bench.experts": [3]})
    with pytest.raises(ConfigError, match="bench.rank=64 must be a positive multiple"):
        variants(cfg.bench)
    with pytest.raises(ConfigError, match="unknown size 'huge'"):
        bench_llm(cfg, "huge")
    assert bench_llm(build_config("tiny", "cpu"), "wide").hidden_size == 1024
