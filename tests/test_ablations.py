"""The ablations (notebook 10, ``reproduce --ablations``): every table is complete and fair (same
total rank and step budget in every row), a one-step smoke run writes the report with a record
per run, the mixed run really trains one plugin for both tasks, and cached runs are reused."""
import copy
import json

import pytest

from healthgpt_lite.ablations import budget, tables
from healthgpt_lite.ablations.mixing import check_batches, keeps_batch
from healthgpt_lite.ablations.runner import run_config
from healthgpt_lite.ablations.runs import runs_of
from healthgpt_lite.config import apply_overrides, build_config
from healthgpt_lite.errors import ConfigError

SMALL = {"ablation.experts": [4], "ablation.gen_mix": [0.0, 1.0]}  # fewer rows: a quick smoke run


def total_rank(cfg, run) -> int:
    c = copy.deepcopy(cfg)
    apply_overrides(c, dict(run.overrides))
    return c.lora.comprehension.rank + (0 if run.share else c.lora.generation.rank)


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_every_table_is_complete_and_fair(profile):
    cfg = build_config("tiny", profile)
    tabs = {t.key: t for t in tables(cfg)}
    assert list(tabs) == ["peft", "experts", "tls", "hvp", "conflict"]
    assert [r.run.name for r in tabs["peft"].rows] == ["lora", "moelora_k4", "hlora_k4"]
    assert len(tabs["experts"].rows) == 2 * len(cfg.ablation.experts) == 6
    assert [r.run.recipe for r in tabs["tls"].rows] == ["three_stage", "mixed"] and tabs["tls"].rows[1].run.share
    hvp = [dict(r.run.overrides) for r in tabs["hvp"].rows]
    assert hvp == [{}, {"vision.gen_layer": cfg.vision.comp_layer}, {"vision.comp_layer": cfg.vision.gen_layer}]
    assert len(tabs["conflict"].rows) == 2 * len(cfg.ablation.gen_mix)
    runs_of(list(tabs.values()))  # one name, one run
    for t in tabs.values():
        ranks = {total_rank(cfg, r.run) for r in t.rows}
        assert len(ranks) == 1, (t.key, ranks)
        budgets = [budget(cfg, r.run) for r in t.rows]
        if t.key == "conflict":  # the variable is the generation data added; comprehension is fixed
            assert len({b["comprehension"] for b in budgets}) == 1
            n = budgets[0]["comprehension"]
            assert [b["generation"] for b in budgets] == [int(n * p) for _ in (0, 1) for p in cfg.ablation.gen_mix]
        else:
            assert all(b == budgets[0] for b in budgets), (t.key, budgets)
        assert t.paper_ref and t.question and t.metrics


def test_papers_numbers_are_beside_the_rows():
    tabs = {t.key: t for t in tables(build_config("tiny", "cpu"))}
    assert [r.paper["slake_closed"] for r in tabs["peft"].rows] == [70.0, 66.4, 74.6]
    assert [r.paper["time"] for r in tabs["experts"].rows] == [1.22, 1.49, 2.09, 0.99, 1.00, 0.99]
    assert [r.paper["ct_ssim"] for r in tabs["tls"].rows] == [70.8, 65.6]


def test_bad_ablation_settings_are_config_errors():
    with pytest.raises(ConfigError, match="step_fraction"):
        build_config("tiny", "smoke", {"ablation.step_fraction": 0.0})
    with pytest.raises(ConfigError, match="gen_mix"):
        tables(build_config("tiny", "smoke", {"ablation.gen_mix": [1.5]}))
    cfg = build_config("tiny", "smoke", {"ablation.experts": [3]})
    with pytest.raises(ConfigError, match="experts"):  # rank 16 of the comprehension plugin is not a multiple of 3
        run_config(cfg, tables(cfg)[1].rows[0].run, 0)


@pytest.mark.parametrize("n,total", [(0, 7), (3, 7), (5, 10), (10, 10), (1, 1)])
def test_task_batches_are_spread_exactly(n, total):
    kept = [s for s in range(total) if keeps_batch(s, n, total)]
    assert len(kept) == n
    if n:
        assert max(b - a for a, b in zip([-1] + kept, kept + [total])) <= -(-total // n)  # evenly spread


def test_a_step_without_any_batch_is_refused():
    check_batches({"comprehension": 10, "generation": 3}, 10)
    with pytest.raises(ValueError, match="each of the 10 steps"):
        check_batches({"comprehension": 4, "generation": 7}, 10)


@pytest.fixture(scope="module")
def smoke_report(shared_artifacts, tmp_path_factory):
    from healthgpt_lite.pipelines.ablations import reproduce_ablations

    cfg = build_config("tiny", "smoke", SMALL)
    out = tmp_path_factory.mktemp("ablations")
    report = reproduce_ablations(cfg, shared_artifacts, out)
    return cfg, out, report


def test_smoke_run_writes_every_table_and_a_record_per_run(smoke_report):
    cfg, out, _ = smoke_report
    data = json.loads((out / "ablations.json").read_text())
    assert {"config", "runs", "tables", "wall_time_s"} <= set(data)
    assert list(data["tables"]) == ["peft", "experts", "tls", "hvp", "conflict"]
    expected = {(r.name, cfg.seed) for r in runs_of(tables(cfg)).values()}
    assert {(r["run"], r["seed"]) for r in data["runs"]} == expected and len(data["runs"]) == len(expected)
    for key, t in data["tables"].items():
        assert len(t["rows"]) == len(next(x for x in tables(cfg) if x.key == key).rows) and t["findings"]
        for row in t["rows"]:
            assert set(row["ours"]) == set(next(x for x in tables(cfg) if x.key == key).metrics)
    assert all(r["train_s"] > 0 for r in data["runs"])
    md = (out / "ablations.md").read_text()
    assert "paper SLAKE closed" in md and "74.6" in md and (out / "figures" / "ablation_conflict_curve.png").is_file()


def test_mixed_run_trains_one_plugin_for_both_tasks(smoke_report, shared_artifacts):
    from safetensors.torch import load_file

    from healthgpt_lite.ablations.runner import Context, branch_model
    from healthgpt_lite.lora import plugin_configs

    cfg, out, _ = smoke_report
    record = next(r for r in json.loads((out / "ablations.json").read_text())["runs"] if r["run"] == "mixed")
    path = shared_artifacts / record["stages"]["mixed"]
    names = list(load_file(str(path / "trained.safetensors")))
    assert any(".plugins.shared." in n for n in names)
    assert not any(".plugins.comprehension." in n or ".plugins.generation." in n for n in names)
    ctx = Context.create(cfg, shared_artifacts)
    run = next(r.run for r in tables(cfg)[2].rows if r.run.name == "mixed")
    model = branch_model(ctx, ctx.config(run, cfg.seed), [path], share=True)
    assert list(plugin_configs(model.llm)) == ["shared"]
    assert plugin_configs(model.llm)["shared"].rank == cfg.lora.comprehension.rank + cfg.lora.generation.rank
    groups = model.parameter_groups()
    assert [id(p) for p in groups["comp_plugin"]] == [id(p) for p in groups["gen_plugin"]]


def test_cached_runs_are_reused(smoke_report, shared_artifacts, monkeypatch):
    from healthgpt_lite.ablations import run_ablations, runner

    cfg, out, _ = smoke_report

    def no_training(*args, **kwargs):
        raise AssertionError("a cached ablation stage was trained again")

    monkeypatch.setattr(runner, "train_stage", no_training)
    records = run_ablations(cfg, shared_artifacts, log=lambda s: None)
    assert records == json.loads((out / "ablations.json").read_text())["runs"]


def test_hvp_variants_read_the_other_cached_layer():
    import torch

    from healthgpt_lite.ablations.runner import Context, features_for
    from healthgpt_lite.training.features import FeatureStore

    base = build_config("tiny", "smoke")
    comp, gen = torch.zeros(2, 4, 8), torch.ones(2, 4, 8)
    ctx = Context(base, None, None, FeatureStore({}, comp, gen, {}, torch.zeros(0, 2, 2)), None)
    hvp = {r.run.name: r.run for r in tables(base)[3].rows}
    deep = features_for(ctx, run_config(base, hvp["hvp_both_deep"], 0))
    shallow = features_for(ctx, run_config(base, hvp["hvp_both_shallow"], 0))
    assert deep.comp is comp and deep.gen is comp and shallow.comp is gen and shallow.gen is gen
    assert features_for(ctx, base).gen is gen
    other = copy.deepcopy(base)
    other.vision.gen_layer = 2  # a layer the cache does not hold
    with pytest.raises(ConfigError, match="cached HVP layers"):
        features_for(ctx, other)
