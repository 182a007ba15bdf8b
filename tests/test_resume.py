"""A stage killed mid-way resumes from its last checkpoint to the same final weights as an
uninterrupted run with the same seed (CPU, tiny, smoke data; tolerance: exact to 1e-6).

Every run here uses one CPU thread. With two, CPU training is not bit-reproducible even without
a kill: two uninterrupted runs differ by about 1e-8 in most weights and by 5e-6 in a few
embedding rows (Adam amplifies rounding where a gradient nearly cancels), and so do runs on 1
and 2 threads. On one thread two runs are identical, so any difference left is the resume's."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from safetensors.torch import load_file

from healthgpt_lite.config import build_config
from healthgpt_lite.training.pipeline import ensure_prerequisites, run_stage, stage_path

STEPS = {"train.stage1_generation_steps": 12}


@pytest.fixture(scope="module")
def cfg():
    return build_config("tiny", "smoke", STEPS)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_killed_stage_resumes_to_the_same_weights(cfg, shared_artifacts, prerequisites_only, tmp_path, one_thread):
    ensure_prerequisites(cfg, shared_artifacts)
    reference_root, killed_root = tmp_path / "reference", tmp_path / "killed"
    for root in (reference_root, killed_root):
        prerequisites_only(root)
    reference = load_file(str(run_stage(cfg, "stage1_generation", reference_root) / "trained.safetensors"))

    ckpt = stage_path(cfg, "stage1_generation", killed_root) / "checkpoints" / "last.ckpt"
    script = textwrap.dedent(f"""
        import torch
        torch.set_num_threads(1)
        from healthgpt_lite.config import build_config
        from healthgpt_lite.training.pipeline import run_stage
        import time, lightning as L
        class Slow(L.Callback):  # give the parent time to kill us after a checkpoint
            def on_train_batch_end(self, *a): time.sleep(0.3)
        import healthgpt_lite.training.trainer as t
        make = t.make_trainer
        t.make_trainer = lambda *a, callbacks=(), **k: make(*a, callbacks=[*callbacks, Slow()], **k)
        import healthgpt_lite.training.pipeline as p
        p.make_trainer = t.make_trainer
        run_stage(build_config("tiny", "smoke", {STEPS!r}), "stage1_generation", {str(killed_root)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    deadline = time.time() + 240
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert ckpt.exists(), "no checkpoint was written before the run ended"
    killed_at = torch.load(ckpt, weights_only=False, map_location="cpu")["global_step"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < killed_at < 12, killed_at
    assert not (stage_path(cfg, "stage1_generation", killed_root) / "meta.json").exists()  # not mistaken as done

    resumed = load_file(str(run_stage(cfg, "stage1_generation", killed_root) / "trained.safetensors"))
    assert resumed.keys() == reference.keys()
    for k in reference:
        torch.testing.assert_close(resumed[k], reference[k], rtol=0, atol=1e-6)


def test_a_float64_stage_stopped_midway_resumes_exactly(shared_artifacts, prerequisites_only, tmp_path, monkeypatch,
                                                      one_thread):
    """Lightning loads ``last.ckpt`` before it converts the module to float64; train_stage converts
    first, or the resumed run would round every weight to float32 (about 1e-7 off)."""
    import lightning as L

    import healthgpt_lite.training.trainer as trainer_module
    from healthgpt_lite.errors import InputError

    cfg = build_config("tiny", "smoke", {"train.precision": "64-true", "train.stage1_comprehension_steps": 3})
    ensure_prerequisites(cfg, shared_artifacts)
    reference_root, stopped_root = (tmp_path / "reference", tmp_path / "stopped")
    for root in (reference_root, stopped_root):
        prerequisites_only(root)
    reference = load_file(str(run_stage(cfg, "stage1_comprehension", reference_root) / "trained.safetensors"))
    assert all(v.dtype == torch.float64 for v in reference.values())

    class StopAfterOne(L.Callback):  # what Ctrl-C does: Lightning stops after the step, checkpointed
        def on_train_batch_end(self, trainer, *a):
            trainer.should_stop = trainer.global_step >= 1

    make = trainer_module.make_trainer
    with monkeypatch.context() as mp:
        mp.setattr(trainer_module, "make_trainer", lambda *a, callbacks=(), **k: make(*a, callbacks=[*callbacks, StopAfterOne()], **k))
        with pytest.raises(InputError, match="stopped at step 1 of 3"):
            run_stage(cfg, "stage1_comprehension", stopped_root)
    resumed = load_file(str(run_stage(cfg, "stage1_comprehension", stopped_root) / "trained.safetensors"))
    for k in reference:
        torch.testing.assert_close(resumed[k], reference[k], rtol=0, atol=0)
