"""One rank of a distributed stage run, launched by tests/test_distributed.py with

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed_driver.py SPEC.json

``SPEC.json`` (one file, so that torchrun parses no option of ours): ``{"log": LOGDIR, "jobs":
[{"stages": [...], "root": ARTIFACTS, "overrides": {"train.strategy": "ddp", ...}, ...}], "slow":
{stage: seconds per step}, "fsdp_config": a full-run YAML}`` (``run_job`` says what a job holds).
Every rank trains the stages through the real pipeline (``run_stage``: load-or-train, resume from
``last.ckpt``, rank-0 writes) and records what the test checks afterwards:
``writes-<rank>.jsonl`` every artifact file it wrote (through ``atomic_write_bytes``),
``batches-<rank>.jsonl`` the example indices of every micro-batch it drew and ``pid-<rank>`` its
process id (the test kills the ranks by it). ``slow`` gives the test time to kill a stage mid-way.
The test's single-process reference records the same logs in its own process (``record_runs``).

torchrun, not Lightning's own launcher: ``strategy="ddp"`` re-runs ``sys.argv`` for the other
ranks (that would be pytest itself) and ``ddp_spawn`` trains in spawned copies and runs the code
after ``fit()`` (where the artifact is written) in the calling process only. torchrun starts every
rank as this same script, as a cluster (torchrun, SLURM srun) starts ``python -m healthgpt_lite
fit``, so every rank runs the whole pipeline and the rank-0 rules are really exercised.
"""
import argparse
import json
import os
import time
from pathlib import Path

import healthgpt_lite.artifacts.store as artifacts  # patched where its functions look names up
import healthgpt_lite.training.datamodule as datamodule
import healthgpt_lite.training.trainer as trainer_module


def record_runs(monkeypatch, log: Path, rank: int, slow: dict[str, float] | None = None) -> dict:
    """Log this process's artifact writes and micro-batches under ``log``; returns a dict whose
    ``"job"``, ``"stage"`` and ``"attempt"`` the caller sets to what it runs (the logs name them)."""
    import lightning as L

    log.mkdir(parents=True, exist_ok=True)
    current = {"job": None, "stage": None, "attempt": 0}

    def record(kind: str, **row) -> None:
        with open(log / f"{kind}-{rank}.jsonl", "a") as f:
            f.write(json.dumps({**current, **row}) + "\n")

    write_bytes = artifacts.atomic_write_bytes

    def logged_write(path, data):
        import torch.distributed as dist

        record("writes", path=str(path), group_rank=dist.get_rank() if dist.is_initialized() else None)
        return write_bytes(path, data)

    class LoggedSampler(datamodule.StepBatchSampler):
        def batch(self, step, micro=0):
            indices = super().batch(step, micro)
            record("batches", n=self.n, seed=self.seed, step=step, micro=micro, indices=indices)
            return indices

    class Slow(L.Callback):
        def on_train_batch_end(self, *a):
            time.sleep((slow or {}).get(current["stage"], 0.0))

    # atomic_save_safetensors and write_meta both write through atomic_write_bytes
    monkeypatch.setattr(artifacts, "atomic_write_bytes", logged_write)
    monkeypatch.setattr(datamodule, "StepBatchSampler", LoggedSampler)
    if slow:
        make = trainer_module.make_trainer
        monkeypatch.setattr(trainer_module, "make_trainer", lambda *a, callbacks=(), **k: make(*a, callbacks=[*callbacks, Slow()], **k))
    return current


def register_cpu_fsdp(config: Path) -> str:
    """Lightning's ``FSDPStrategy`` with the settings of a full-run YAML (wrapping and activation
    checkpointing policies, sharding, sharded checkpoints), made to run on the CPU; returns the
    name it is registered under (``train.strategy``). Lightning refuses FSDP without a GPU
    (``type(strategy) is FSDPStrategy`` and accelerator "cpu") and passes ``device_id=None``, which
    torch's FSDP refuses on a machine without an accelerator; torch's FSDP itself runs on CPU
    tensors with gloo when given ``device_id=cpu``, which is all this subclass adds."""
    import torch
    import torch.distributed.fsdp as torch_fsdp
    from lightning.pytorch.strategies import FSDPStrategy, StrategyRegistry

    from healthgpt_lite.scale.dry_run import parse_fit_config

    class OnCPU(torch_fsdp.FullyShardedDataParallel):
        def __init__(self, *args, device_id=None, **kwargs):
            super().__init__(*args, device_id=torch.device("cpu"), **kwargs)

    class CPUFSDPStrategy(FSDPStrategy):
        def _setup_model(self, model):
            real = torch_fsdp.FullyShardedDataParallel
            torch_fsdp.FullyShardedDataParallel = OnCPU  # what Lightning's _setup_model instantiates
            try:
                return super()._setup_model(model)
            finally:
                torch_fsdp.FullyShardedDataParallel = real

    init_args = dict(parse_fit_config(config).trainer.strategy.init_args)
    StrategyRegistry.register("fsdp_cpu_test", CPUFSDPStrategy, "FSDP of a full-run YAML on CPUs (tests)", **init_args)
    return "fsdp_cpu_test"


def run_job(job: dict, current: dict, monkeypatch) -> None:
    """Train ``job["stages"]`` into ``job["root"]`` (``name``: for the logs). ``stop_after``:
    {stage: step} stops that stage there (as Ctrl-C does: it checkpoints and train_stage refuses to mark it done) and runs it again,
    resuming from its checkpoint. ``refused``: stages that must fail with ConfigError (recorded)."""
    import lightning as L

    from healthgpt_lite.config import build_config
    from healthgpt_lite.errors import ConfigError, InputError
    from healthgpt_lite.training.pipeline import run_stage

    class StopAfter(L.Callback):
        def __init__(self, step):
            self.step = step

        def on_train_batch_end(self, trainer, *a):
            trainer.should_stop = trainer.should_stop or trainer.global_step >= self.step

    cfg = build_config("tiny", "smoke", job["overrides"])
    current["job"] = job.get("name")
    for name in job["stages"]:
        current.update(stage=name, attempt=0)
        if name in job.get("refused", ()):
            try:
                run_stage(cfg, name, job["root"])
            except ConfigError as e:
                (Path(job["log"]) / f"refused-{name}").write_text(str(e))
                continue
            raise AssertionError(f"{name} was not refused")
        if name in job.get("stop_after", {}):
            make = trainer_module.make_trainer
            with monkeypatch.context() as mp:
                stop = StopAfter(job["stop_after"][name])
                mp.setattr(trainer_module, "make_trainer", lambda *a, callbacks=(), **k: make(*a, callbacks=[*callbacks, stop], **k))
                try:
                    run_stage(cfg, name, job["root"])
                    raise AssertionError(f"{name} did not stop")
                except InputError as e:
                    (Path(job["log"]) / f"stopped-{name}").write_text(str(e))
            current["attempt"] = 1
        run_stage(cfg, name, job["root"])


def main() -> None:
    import pytest

    parser = argparse.ArgumentParser()
    parser.add_argument("spec", help="a JSON file: {log, jobs: [{stages, root, overrides, ...}], slow, fsdp_config}")
    spec = json.loads(Path(parser.parse_args().spec).read_text())
    rank, log = int(os.environ.get("RANK", 0)), Path(spec["log"])
    monkeypatch = pytest.MonkeyPatch()
    current = record_runs(monkeypatch, log, rank, spec.get("slow"))
    (log / f"pid-{rank}").write_text(str(os.getpid()))
    if spec.get("fsdp_config"):
        register_cpu_fsdp(Path(spec["fsdp_config"]))
    for job in spec["jobs"]:
        run_job({"log": str(log), **job}, current, monkeypatch)


if __name__ == "__main__":
    main()
