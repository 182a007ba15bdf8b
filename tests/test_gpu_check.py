"""``gpu-check`` on a CPU-only machine: its arguments, its JSON and its parts, never its GPU numbers.

What runs for real here: the step meter inside a real Lightning ``train_stage`` (tiny shapes,
random features), the M3 step's code on the tiny model, the M3 plan on the meta device, the
writer, the exit codes and ``scripts/gpu_check.sh``'s refusal without a GPU. What does not:
the whole ``pipeline`` mode (the tiny/smoke pipeline takes ~70 s on this 2-core machine, over
this file's budget), so its JSON is tested on a fabricated result passed through the real
targets, writer and CLI; and the M3 step on real M3 tensors (19 GiB of weights: a GPU's job).
"""
import json
import os
import subprocess
import sys

import pytest
import torch

from healthgpt_lite.cli import main as cli_main


@pytest.fixture
def no_cuda(monkeypatch):
    """Behave as a CPU-only machine even where a GPU exists."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_importing_needs_no_cuda():
    import healthgpt_lite.bench.gpu_check  # noqa: F401
    import healthgpt_lite.bench.gpu_m3_step  # noqa: F401
    import healthgpt_lite.bench.gpu_pipeline  # noqa: F401

    assert not torch.cuda.is_initialized()


@pytest.mark.parametrize("argv, message", [
    (["gpu-check", "--mode", "train", "--out", "x.json"], "invalid choice: 'train'"),
    (["gpu-check", "--mode", "pipeline"], "the following arguments are required: --out"),
    (["gpu-check", "--out", "x.json"], "the following arguments are required: --mode"),
])
def test_bad_arguments_exit_2_naming_the_problem(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_no_gpu_without_allow_cpu_is_one_clear_line(no_cuda, tmp_path, capsys):
    out = tmp_path / "r.json"
    for mode in ("pipeline", "m3-step"):
        assert cli_main(["gpu-check", "--mode", mode, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "needs a CUDA GPU" in err and "--allow-cpu" in err
    assert not out.exists()
    assert cli_main(["gpu-check", "--mode", "pipeline", "--out", str(out), "--allow-cpu", "--budget-minutes", "0"]) == 2
    assert "--budget-minutes 0" in capsys.readouterr().err


def test_the_script_fails_loudly_without_a_gpu(repo, tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PY": sys.executable, "OUT": str(tmp_path),
           "PYTHONPATH": str(repo)}
    run = subprocess.run(["bash", str(repo / "scripts" / "gpu_check.sh")], cwd=repo, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "needs a CUDA GPU" in run.stderr and "gpu_check.sh: --mode m3-step failed (exit 2)" in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_gpu_peaks():
    from healthgpt_lite.bench.gpu_peaks import bf16_peak
    from healthgpt_lite.errors import InputError

    assert bf16_peak("NVIDIA H200") == (989e12, "table: H200")
    assert bf16_peak("NVIDIA H100 80GB HBM3")[0] == 989e12 and bf16_peak("NVIDIA H100 PCIe")[0] == 756e12
    assert bf16_peak("NVIDIA A100-SXM4-80GB")[0] == 312e12 and bf16_peak("NVIDIA L4")[0] == 121e12
    assert bf16_peak("NVIDIA L40S")[0] == 362e12
    assert bf16_peak("Mystery GPU")[0] is None and "--peak-tflops" in bf16_peak("Mystery GPU")[1]
    assert bf16_peak("Mystery GPU", 100.0) == (100e12, "--peak-tflops")
    with pytest.raises(InputError, match="--peak-tflops"):
        bf16_peak("NVIDIA H200", -1)


def test_targets_are_never_silent():
    from healthgpt_lite.bench.gpu_result import all_met, summary_lines, target

    rows = [target("a", "a >= 1", 2.0, 1.0, ">="), target("b", "b <= 1", 2.0, 1.0, "<="),
            target("c", "c >= 1", None, 1.0, ">=")]
    assert [r["met"] for r in rows] == [True, False, None]
    assert all_met(rows) is False and all_met(rows[::2]) is None and all_met(rows[:1]) is True
    lines = summary_lines({"targets": rows})
    assert lines[0].split()[0] == "MET" and lines[1].split()[0] == "MISSED" and "NOT MEASURED" in lines[2]


def fabricated_metrics() -> dict:
    """evaluate_seed's metrics, only the keys the targets read (pipelines/results.measured_targets)."""
    ssim = lambda *v: {k: {"ssim": x} for k, x in zip(("model", "copy_input", "grey_level_table"), v)}  # noqa: E731
    return {"comprehension": {"closed": 0.95, "open": 0.85, "open/open_location": 0.8, "open/open_size": 0.6},
            "comprehension_baselines": {},
            "generation": {"super_resolution": {"model": {"psnr": 30.0}, "bicubic": {"psnr": 28.0}},
                           "reconstruction": {"model": {"ssim": 0.85}, "vq_ceiling": {"ssim": 0.9}},
                           "ct2mri": ssim(0.7, 0.5, 0.6), "mri2ct": ssim(0.7, 0.5, 0.6)}}


def test_pipeline_json_through_the_real_cli(no_cuda, monkeypatch, tmp_path, capsys):
    """The pipeline's JSON: a fabricated run (wall times, one stage row, metrics) through the
    real targets, schema check, writer and exit code (the real run is too slow for this file)."""
    from healthgpt_lite.bench import gpu_pipeline
    from healthgpt_lite.bench.gpu_result import SCHEMA_VERSION, schema_problems

    stage = {"name": "stage3_comprehension", "wall_s": 30.0, "peak_memory_GiB": None, "steps": 10, "mfu": None}
    fake = {"stages": [{"name": "data", "wall_s": 12.0, "peak_memory_GiB": None}, stage], "total_s": 600.0,
            "metrics": fabricated_metrics()}
    out, partial = tmp_path / "sub" / "pipeline.json", []

    def fake_run(cfg, art, peak, on_row):
        on_row(fake["stages"][:1])  # after the first step: the JSON so far
        partial.append(json.loads(out.read_text()))
        return fake

    monkeypatch.setattr(gpu_pipeline, "run_pipeline", fake_run)
    code = cli_main(["gpu-check", "--mode", "pipeline", "--out", str(out), "--allow-cpu", "--artifacts", str(tmp_path)])
    assert schema_problems(partial[0]) == [] and partial[0]["complete"] is False and len(partial[0]["stages"]) == 1
    assert partial[0]["all_targets_met"] is None
    result = json.loads(out.read_text())
    assert schema_problems(result) == [] and result["schema_version"] == SCHEMA_VERSION and result["complete"]
    assert result["device"]["cuda"] is False and result["device"]["bf16_peak_flops"] is None
    assert result["config"]["preset"] == "small" and result["config"]["profile"] == "gpu"
    assert result["config"]["precision"] == "bf16-mixed" and result["config"]["budget_minutes"] == 8.0
    targets = {t["name"]: t for t in result["targets"]}
    assert targets["pipeline_minutes"]["measured"] == 10.0 and targets["pipeline_minutes"]["met"] is False  # 10 > 8
    assert targets["open_size"]["met"] is False and targets["closed_accuracy"]["met"] is True
    assert targets["sr_vs_bicubic"]["measured"] == 2.0 and targets["report2image_probe"]["met"] is None  # no probe
    assert result["all_targets_met"] is False and code == 3  # ran, missed targets: exit 3, not 0
    assert "MISSED" in capsys.readouterr().out


def test_m3_step_json_through_the_real_cli(no_cuda, monkeypatch, tmp_path):
    """The m3-step JSON: the real plan (meta) beside a fabricated measurement that meets both targets."""
    from healthgpt_lite.bench import gpu_m3_step
    from healthgpt_lite.bench.gpu_result import schema_problems

    def fake_run(cfg, device, peak, warmup, steps):
        plan = gpu_m3_step.planned_step(cfg)
        return {"plan": plan, "row": {"name": gpu_m3_step.STAGE, "wall_s": 60.0, "mfu": 0.41,
                                      "peak_memory_GiB": plan["memory_GiB_one_gpu"] * 1.1}}

    monkeypatch.setattr(gpu_m3_step, "run_m3_step", fake_run)
    out = tmp_path / "m3.json"
    assert cli_main(["gpu-check", "--mode", "m3-step", "--out", str(out), "--allow-cpu"]) == 0
    result = json.loads(out.read_text())
    assert schema_problems(result) == [] and result["mode"] == "m3-step" and result["all_targets_met"] is True
    assert result["config"]["micro_batch"] == 4 and result["config"]["tokens_per_step"] == 3036
    assert result["targets"][1]["measured"] == pytest.approx(0.1)
    assert cli_main(["gpu-check", "--mode", "m3-step", "--out", str(out), "--allow-cpu", "--steps", "0"]) == 2


def test_the_writer_refuses_a_result_off_its_schema(tmp_path):
    from healthgpt_lite.bench.gpu_result import write_result

    with pytest.raises(ValueError, match="missing key 'targets'"):
        write_result({"schema_version": 1, "mode": "pipeline"}, tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()


def test_step_meter_inside_a_real_lightning_fit(smoke_cfg, smoke_data, tmp_path):
    """The pipeline's stage rows: a real train_stage (tiny shapes, random features) with the meter."""
    from healthgpt_lite.bench.flops import llm_shape, training_step_flops
    from healthgpt_lite.bench.gpu_pipeline import timed_row
    from healthgpt_lite.bench.stages import stand_in_store
    from healthgpt_lite.bench.step_meter import StepMeter
    from healthgpt_lite.data.text_tokenizer import image_token_ids, tokenizer_for
    from healthgpt_lite.model.llm import build_llm
    from healthgpt_lite.training.pipeline import build_model
    from healthgpt_lite.training.train import stage_data, train_stage
    from healthgpt_lite.training.stages import STAGES

    cfg, tok = smoke_cfg, tokenizer_for(smoke_cfg)
    model = build_model(cfg, tok, base_llm=build_llm(cfg.llm, image_token_ids(tok).start, tok.pad_token_id))
    meter, rows = StepMeter(skip=1), []
    spec = STAGES["stage3_comprehension"]
    data = stage_data(cfg, spec, tok, smoke_data, stand_in_store(smoke_data, cfg))
    timed_row(rows, spec.name, lambda: train_stage(cfg, spec, model, data, tmp_path / "run", 3, callbacks=[meter.callback],
                                                   val_every=10**9), meter, peak_flops=1e12)
    row = rows[0]
    assert row["steps"] == 3 and row["timed_steps"] == 2 and row["trained"] and row["peak_memory_GiB"] is None
    assert row["wall_s"] > 2 * row["seconds_per_step"] > 0
    (b, t), = meter.steps[-1].batches.values()
    assert b == cfg.train.comp_batch_size
    assert meter.step_flops(meter.steps[-1]) == training_step_flops(llm_shape(model, "comprehension"), [t] * b).total
    assert row["mfu"] == pytest.approx(row["flops_per_s"] / 1e12)
    assert row["tokens_per_s"] == pytest.approx(row["tokens_per_step"] / row["seconds_per_step"])


def test_m3_plan_on_the_meta_device():
    """The numbers the M3 step is measured against, from notebook 12's plan (nothing allocated)."""
    from healthgpt_lite.bench.gpu_m3_step import m3_config, m3_targets, planned_step

    plan = planned_step(m3_config())
    assert plan["micro_batch"] == 4 and plan["tokens_per_sample"]["total"] == 576 + 18 + 15 + 150  # a report
    assert plan["tokens_per_step"] == 4 * 759
    assert plan["trainable_parameters"] == 102_891_520 + 12_589_056  # comprehension H-LoRA + abstract adapter
    ddp = plan["memory_GiB_ddp"]
    assert plan["memory_GiB_one_gpu"] == pytest.approx(ddp["total"] - ddp["buffers"], abs=0.1)
    assert 25 < plan["memory_GiB_one_gpu"] < 40  # fp32 weights of 4.8B parameters are ~18 GiB alone
    # Phi-3-mini: 32 layers of qkv, o, gate_up, down; the head; the comprehension plugin (tokens x 2 FLOPs)
    n = 32 * (3072 * 9216 + 3072 * 3072 + 3072 * 16384 + 8192 * 3072) + 40207 * 3072 + 102_891_520
    llm = plan["flops_per_step"]["llm"]
    assert llm["forward"] == 2 * n * 3036 + 4 * 32 * 759**2 * 3072 * 4
    assert llm["backward_weights"] == 2 * 102_891_520 * 3036
    assert 4e13 < plan["flops_per_step"]["total"] < 6e13  # ~0.05 s of an H200 at 100%
    unmeasured = m3_targets(plan, {"mfu": None, "peak_memory_GiB": None})
    assert [t["met"] for t in unmeasured] == [None, None]
    measured = m3_targets(plan, {"mfu": 0.45, "peak_memory_GiB": plan["memory_GiB_one_gpu"] * 1.2})
    assert [t["met"] for t in measured] == [True, False]


def test_m3_step_code_on_the_tiny_model():
    """The M3 step's batch and training loop, on the tiny model on the CPU (fp32: no bf16 matmuls here)."""
    from healthgpt_lite.config import build_config
    from healthgpt_lite.bench.gpu_m3_step import measure_steps, step_flops, synthetic_batch
    from healthgpt_lite.data.text_tokenizer import image_token_ids, tokenizer_for
    from healthgpt_lite.model.llm import build_llm
    from healthgpt_lite.training.pipeline import build_model
    from healthgpt_lite.vision import HVPEncoder

    cfg = build_config("tiny", "smoke", {"train.comp_batch_size": 2})
    tok = tokenizer_for(cfg)
    model = build_model(cfg, tok, base_llm=build_llm(cfg.llm, image_token_ids(tok).start, tok.pad_token_id))
    model.vision = HVPEncoder.from_config(cfg.vision)
    batch = synthetic_batch(cfg, model, 2, "cpu")
    assert batch["input_ids"].shape == (2, 64 + 33 + 150)
    assert int((batch["input_ids"] == model.layout.image).sum()) == 2 * 64
    assert int((batch["labels"] != -100).sum()) == 2 * 150
    result = measure_steps(cfg, model, "cpu", warmup=0, steps=1, bf16=False)
    assert all(torch.isfinite(torch.tensor(result["losses"])))
    b, t = 2, 247
    assert result["tokens_per_step"] == b * t and result["flops_per_step"] == step_flops(model, b, t)["total"]
