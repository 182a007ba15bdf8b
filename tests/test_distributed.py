"""Two DDP processes (CPU, gloo) train every stage to the weights of one process at the same
global batch and data order; only rank 0 writes each artifact, once; a distributed run killed
mid-stage and launched again resumes to the uninterrupted weights.

The runs (tiny preset, smoke data, a few steps per stage, float32 as in training):

* DDP: ``torchrun --nproc_per_node 2`` (tests/distributed_driver.py says why torchrun) runs all
  five stages with per-device batch b, a global batch of 2b per step. It is killed (SIGKILL, both
  ranks) in stage-1 generation, after its first checkpoint, and launched again with the same
  job: it keeps the finished stage-1 comprehension, resumes stage-1 generation from
  ``last.ckpt`` and trains the rest.
* one process, uninterrupted: the same b with ``accumulate_grad_batches=2``, the same 2b
  examples per step.

Why accumulation and not one batch of 2b: the loss is the mean over the *label tokens* of a
batch and DDP averages the two ranks' means; comprehension answers differ in length, so the mean
over 2b examples is another number. Accumulating two micro-batches of b averages the two means
as DDP does. Dropout stays on: each micro-batch draws its masks from a seed of (step, slot)
(sampling.py), the same on rank r as in the r-th accumulated micro-batch. The float sums differ
in nothing either: every micro-batch runs the same ops on the same shapes (one thread
everywhere), and the mean of two gradients is exact in any order, (g0 + g1) / 2 = g0/2 + g1/2
(halving is exact in binary floating point). So the weights are compared for equality, and they
are equal. With more than two ranks the all-reduce order would make them differ in the last bits.

FSDP: Lightning 2.6 refuses ``FSDPStrategy`` without a GPU, although torch 2.14's FSDP runs on CPU
tensors with gloo. The relaunched run therefore also trains the stages FSDP may train with the
L14 stage-2 YAML's strategy (wrapping and activation-checkpointing policies, full sharding,
sharded checkpoints) made to run on the CPU (``register_cpu_fsdp`` in the driver): the
same weights again; stage-3 comprehension is stopped once mid-way and resumed from its sharded
checkpoint, and stage-1 generation (the image-row mask) is refused.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from healthgpt_lite.artifacts import is_complete, read_meta
from healthgpt_lite.config import build_config
from healthgpt_lite.training.pipeline import ensure_prerequisites, model_after, run_stage, stage_path, stages_before
from healthgpt_lite.training.stages import ORDER, STAGES

sys.path.insert(0, str(Path(__file__).parent))
from distributed_driver import record_runs  # noqa: E402

pytestmark = pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                                reason="torch.distributed with the gloo backend is not available")

REPO = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("distributed_driver.py")
GEN_STEPS = 4  # stage-1 generation: a checkpoint after every step, so it can be killed mid-way
COMMON = {"train.accelerator": "cpu", "train.stage1_generation_steps": GEN_STEPS}
DDP = {**COMMON, "train.strategy": "ddp", "train.devices": 2}
FSDP = {**COMMON, "train.strategy": "fsdp_cpu_test", "train.devices": 2}  # registered by the driver
FSDP_STAGES = ("stage1_comprehension", "stage2", "stage3_comprehension", "stage3_generation")
FSDP_STOP = {"stage3_comprehension": 1}  # plugins inside the wrapped layers: the sharded checkpoint must hold them
ONE = {**COMMON, "train.devices": 1, "train.accumulate_grad_batches": 2}


def _launch(log: Path, jobs: list[dict], **spec) -> subprocess.Popen:
    path = log.with_suffix(".json")
    path.write_text(json.dumps({"log": str(log), "jobs": jobs, **spec}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(DRIVER), str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_ranks(log: Path) -> None:
    for rank in (0, 1):
        pid = log / f"pid-{rank}"
        if pid.exists():
            try:
                os.kill(int(pid.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _wait(proc: subprocess.Popen, log: Path, timeout: float) -> str:
    """The launch's output once it ended; past ``timeout`` its ranks and torchrun are killed."""
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        _kill_ranks(log)
        proc.kill()
        return proc.communicate()[0] + f"\n(killed after {timeout} s)"


def _failure(out: str) -> str:
    """The ranks' own lines of a failed launch (torchrun's summary names no cause)."""
    lines = [line for line in out.splitlines() if line.startswith("[rank")] or out.splitlines()
    return "\n".join(lines[-60:])


def _kill_when_checkpointed(proc: subprocess.Popen, ckpt: Path, log: Path, killed: dict) -> None:
    """Both ranks die at once (SIGKILL, as on a node failure) once the stage has a checkpoint."""
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is None and ckpt.exists():
        _kill_ranks(log)
        killed["at"] = torch.load(ckpt, weights_only=False, map_location="cpu")["global_step"]
    killed["output"] = _wait(proc, log, 120)


def _rows(log: Path, kind: str, rank: int) -> list[dict]:
    path = log / f"{kind}-{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _trained(cfg, name: str, root: Path) -> dict[str, torch.Tensor]:
    return load_file(str(stage_path(cfg, name, root) / "trained.safetensors"))


@pytest.fixture(scope="module")
def runs(shared_artifacts, prerequisites_only, tmp_path_factory):
    """Every stage trained from the same prerequisites by 2 DDP ranks (killed once, launched
    again), by 1 process, and (most stages) by 2 FSDP ranks."""
    ensure_prerequisites(build_config("tiny", "smoke"), shared_artifacts)
    base = tmp_path_factory.mktemp("distributed")
    ddp_root, one_root, fsdp_root, refused_root = (prerequisites_only(base / n)
                                                   for n in ("ddp", "one", "fsdp", "fsdp_refused"))
    ddp, one, fsdp = (build_config("tiny", "smoke", o) for o in (DDP, ONE, FSDP))
    gen = stage_path(ddp, "stage1_generation", ddp_root)  # FSDP starts from DDP's stage-1 generation
    (fsdp_root / gen.name).symlink_to(gen)
    ddp_job = {"name": "ddp", "root": str(ddp_root), "overrides": DDP, "stages": ORDER}
    killed = {}
    first = _launch(base / "first", [ddp_job], slow={"stage1_generation": 1.0})
    ckpt = gen / "checkpoints" / "last.ckpt"
    watcher = threading.Thread(target=_kill_when_checkpointed, args=(first, ckpt, base / "first", killed))
    watcher.start()
    threads = torch.get_num_threads()
    try:  # the reference runs here meanwhile, on one thread as each rank: 3 processes on 2 cores
        torch.set_num_threads(1)
        with pytest.MonkeyPatch.context() as mp:
            current = record_runs(mp, base / "one_log", 0)
            for name in ORDER:
                current["stage"] = name
                run_stage(one, name, one_root)
    finally:
        torch.set_num_threads(threads)
        watcher.join()
    complete_after_kill = {name: is_complete(stage_path(ddp, name, ddp_root)) for name in ORDER}
    fsdp_jobs = [{"name": "fsdp", "root": str(fsdp_root), "overrides": FSDP, "stages": FSDP_STAGES, "stop_after": FSDP_STOP},
                 {"name": "fsdp_refused", "root": str(refused_root), "overrides": FSDP,
                  "stages": ["stage1_generation"], "refused": ["stage1_generation"]}]
    again = _launch(base / "again", [ddp_job, *fsdp_jobs], fsdp_config=str(REPO / "configs" / "l14_stage2.yaml"))
    out = _wait(again, base / "again", 400)
    assert again.returncode == 0, f"the relaunched distributed run failed:\n{_failure(out)}"
    return {"base": base, "ddp": (ddp, ddp_root), "one": (one, one_root), "fsdp": (fsdp, fsdp_root),
            "killed_at": killed.get("at"), "first_output": killed.get("output", ""), "complete_after_kill": complete_after_kill,
            "logs": (base / "first", base / "again")}


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize("name", ORDER)
def test_two_ddp_ranks_train_the_weights_of_one_process(runs, name):
    (ddp_cfg, ddp_root), (one_cfg, one_root) = runs["ddp"], runs["one"]
    ddp, one = _trained(ddp_cfg, name, ddp_root), _trained(one_cfg, name, one_root)
    diff = _max_diff(ddp, one)
    print(f"{name}: max |DDP - one process| = {diff:.3g}")
    assert diff == 0, f"{name}: DDP and one process differ by {diff:.3g}"
    before = dict(model_after(one_cfg, stages_before(name), one_root).named_parameters())
    moved = max((one[k] - before[k].detach()).abs().max().item() for k in one)
    assert moved > 1e-4, f"{name} did not train ({moved:.3g}): the comparison would prove nothing"


def test_each_rank_draws_its_slot_of_the_single_process_global_batch(runs):
    one = _rows(runs["base"] / "one_log", "batches", 0)
    ranks = [[row for log in runs["logs"] for row in _rows(log, "batches", r) if row["job"] == "ddp"] for r in (0, 1)]
    steps = {n: getattr(runs["one"][0].train, f"{n}_steps") for n in ORDER}
    key = lambda row: (row["stage"], row["seed"], row["step"])  # noqa: E731
    checked = 0
    for row in one:
        if row["step"] >= steps[row["stage"]]:
            continue  # Lightning fetches one batch beyond the last step
        # micro-batch a of the one process is the batch of rank a (drawn twice around the kill)
        match = [r["indices"] for r in ranks[row["micro"]] if key(r) == key(row)]
        assert match and all(m == row["indices"] for m in match), (row, match)
        checked += 1
    assert checked == sum(2 * len(STAGES[n].tasks) * steps[n] for n in ORDER)  # every micro-batch of every step
    for r0 in ranks[0]:
        for r1 in ranks[1]:
            if key(r0) == key(r1):
                assert not set(r0["indices"]) & set(r1["indices"]), "two ranks trained on one example in one step"


def test_stage1_generation_under_ddp_trains_only_the_image_rows(runs):
    cfg, root = runs["ddp"]
    before = model_after(cfg, [], root)
    start, vocab_size = before.block.start, before.llm.get_input_embeddings().weight.shape[0]
    trained = _trained(cfg, "stage1_generation", root)
    rows = {n: p.detach() for n, p in before.named_parameters() if n in trained and p.shape[0] == vocab_size}
    assert len(rows) == 2, f"stage-1 generation should store the embedding and head matrices, not {list(rows)}"
    for n, p in rows.items():
        torch.testing.assert_close(trained[n][:start], p[:start], rtol=0, atol=0)  # every text row as it was
        assert (trained[n][start:] - p[start:]).abs().max() > 1e-4, f"{n}: the image rows did not train"


def test_rank_0_alone_writes_each_artifact_once_and_its_meta_last(runs):
    assert [r for log in runs["logs"] for r in _rows(log, "writes", 1)] == [], "rank 1 wrote artifact files"
    writes = [r for log in runs["logs"] for r in _rows(log, "writes", 0)]
    for (cfg, root), names in ((runs["ddp"], ORDER), (runs["fsdp"], FSDP_STAGES)):
        for name in names:
            path = stage_path(cfg, name, root)
            mine = [w for w in writes if Path(w["path"]).parent == path]
            # once each, meta.json last; stage-1 comprehension is not redone by the second launch
            assert [Path(w["path"]).name for w in mine] == ["trained.safetensors", "meta.json"], (name, mine)
            assert all(w["group_rank"] == 0 for w in mine)  # decided inside the running process group
            assert read_meta(path, name, "tiny")["steps"] == getattr(cfg.train, f"{name}_steps")
            assert not list(path.glob(".*.tmp")), f"{name}: a temporary file was left behind"


def test_a_killed_ddp_run_resumes_to_the_uninterrupted_weights(runs):
    killed_at = runs["killed_at"]
    assert killed_at is not None, f"the first distributed run ended before it was killed:\n{_failure(runs['first_output'])}"
    assert 0 < killed_at < GEN_STEPS, killed_at
    assert runs["complete_after_kill"] == {n: n == "stage1_comprehension" for n in ORDER}  # the killed stage not done
    again = _rows(runs["logs"][1], "batches", 1)
    first_step = next(r["step"] for r in again if (r["job"], r["stage"]) == ("ddp", "stage1_generation"))
    assert first_step == killed_at, f"the relaunched rank 1 started at step {first_step}, not at the checkpoint's"
    (ddp_cfg, ddp_root), (one_cfg, one_root) = runs["ddp"], runs["one"]
    diff = _max_diff(_trained(ddp_cfg, "stage1_generation", ddp_root), _trained(one_cfg, "stage1_generation", one_root))
    print(f"stage1_generation: killed after step {killed_at}; max |resumed DDP - uninterrupted| = {diff:.3g}")
    assert diff == 0


@pytest.mark.parametrize("name", FSDP_STAGES)
def test_fsdp_on_cpus_trains_the_weights_of_one_process(runs, name):
    (fsdp_cfg, fsdp_root), (one_cfg, one_root) = runs["fsdp"], runs["one"]
    fsdp, one = _trained(fsdp_cfg, name, fsdp_root), _trained(one_cfg, name, one_root)
    assert fsdp.keys() == one.keys(), f"{name}: FSDP saved other tensor names: {sorted(set(fsdp) ^ set(one))[:3]}"
    diff = _max_diff(fsdp, one)
    print(f"{name}: max |FSDP - one process| = {diff:.3g}")
    assert diff == 0, f"{name}: FSDP and one process differ by {diff:.3g}"


def test_an_fsdp_stage_stopped_midway_resumes_from_its_sharded_checkpoint(runs):
    cfg, root = runs["fsdp"]
    ckpt = stage_path(cfg, "stage3_comprehension", root) / "checkpoints" / "last.ckpt"
    assert ckpt.is_dir(), "the L14 strategy writes one checkpoint shard per process"
    assert "stopped at step 1 of 3" in (runs["logs"][1] / "stopped-stage3_comprehension").read_text()
    rows = [r for r in _rows(runs["logs"][1], "batches", 1) if (r["job"], r["stage"]) == ("fsdp", "stage3_comprehension")]
    assert rows[0]["attempt"] == 0 and rows[0]["step"] == 0
    resumed = [r["step"] for r in rows if r["attempt"] == 1]
    assert resumed[0] == FSDP_STOP["stage3_comprehension"], f"the resumed run started at step {resumed[0]}"


def test_fsdp_is_refused_for_the_stage_that_trains_only_the_image_rows(runs):
    message = (runs["logs"][1] / "refused-stage1_generation").read_text()
    assert "FSDP" in message and "gradient mask" in message and "DDP" in message
