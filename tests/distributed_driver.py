"""One rank of a distributed stage run, launched by tests/test_distributed.py with

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/distributed_driver.py SPEC.json

``SPEC.json``: ``{"stages": [...], "root": ARTIFACTS, "overrides": {"train.strategy": "ddp", ...},
"log": LOGDIR, "slow": {stage: seconds per step}}`` (one file, so that torchrun parses no option
of ours). Every rank trains the stages through the real pipeline (``run_stage``: load-or-train,
resume from ``last.ckpt``, rank-0 writes) and records what the test checks afterwards:
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

import healthgpt_lite.artifacts as artifacts
import healthgpt_lite.training.datamodule as datamodule
import healthgpt_lite.training.trainer as trainer_module


def record_runs(monkeypatch, log: Path, rank: int, slow: dict[str, float] | None = None) -> dict:
    """Log this process's artifact writes and micro-batches under ``log``; returns a dict whose
    ``"stage"`` the caller sets to the stage it runs (the logs name it)."""
    import lightning as L

    log.mkdir(parents=True, exist_ok=True)
    current = {"stage": None}

    def record(kind: str, **row) -> None:
        with open(log / f"{kind}-{rank}.jsonl", "a") as f:
            f.write(json.dumps({"stage": current["stage"], **row}) + "\n")

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
        monkeypatch.setattr(trainer_module, "make_trainer", lambda *a, **k: make(*a, callbacks=[Slow()], **k))
    return current


def main() -> None:
    import pytest

    from healthgpt_lite.config import build_config
    from healthgpt_lite.training.pipeline import run_stage

    parser = argparse.ArgumentParser()
    parser.add_argument("spec", help="a JSON file: {stages, root, overrides, log, slow}")
    spec = json.loads(Path(parser.parse_args().spec).read_text())
    rank, log = int(os.environ.get("RANK", 0)), Path(spec["log"])
    current = record_runs(pytest.MonkeyPatch(), log, rank, spec.get("slow"))
    (log / f"pid-{rank}").write_text(str(os.getpid()))
    cfg = build_config("tiny", "smoke", spec["overrides"])
    for name in spec["stages"]:
        current["stage"] = name
        run_stage(cfg, name, spec["root"])


if __name__ == "__main__":
    main()
