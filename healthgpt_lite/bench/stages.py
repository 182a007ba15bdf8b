"""``python -m healthgpt_lite bench stages``: how fast each training stage runs, and where the time goes.

For every stage of the three-stage table this times real training steps of the tiny preset on
VL-Health-lite batches (the stage's own data module and collator; frozen ViT features and VQ
codes are random stand-ins of the right shapes, the model a random LLM of the preset's
shapes: speed does not depend on what the weights know), three ways, side by side in one run:

* **Lightning**: the production path, ``train_stage`` with its Trainer (logging, checkpoint
  callback, progress off), seconds per step measured between batch starts;
* **plain PyTorch**: the same module's loss, ``backward`` and AdamW ``step`` in a bare loop on
  the same batches; the difference is Lightning's per-step cost;
* **where a plain step goes**, from the torch profiler: matrix multiplies (``aten::mm`` and
  friends), attention (``scaled_dot_product_attention``), every other tensor operation
  (elementwise, softmax and loss, copies), and the rest of the wall time, which is Python and
  framework code between the operations.

Tokens per second count every position of the padded batches (text, visual and image tokens).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from ..config import Config
from .plugin_speed import _quiet_native_stderr

MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")
ATTENTION_OPS = ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_efficient_attention",
                 "aten::_scaled_dot_product_flash_attention", "aten::_scaled_dot_product_flash_attention_for_cpu_backward")


def stand_in_store(data_dir: Path, cfg: Config):
    """A FeatureStore of random features and codes for every image of the data set (shapes of ``cfg``)."""
    from ..training.features import FeatureStore, _paths

    inputs, targets = _paths(data_dir)
    n, d, g = cfg.vision.num_tokens, cfg.vision.hidden_size, cfg.vq.grid_size
    return FeatureStore({p: i for i, p in enumerate(inputs)}, torch.randn(len(inputs), n, d).half(),
                        torch.randn(len(inputs), n, d).half(), {p: i for i, p in enumerate(targets)},
                        torch.randint(0, cfg.vq.n_embed, (len(targets), g, g), dtype=torch.int16))


class StepClock:
    """A Lightning callback: wall time between consecutive batch starts (one full step each)."""

    def __init__(self):
        import lightning as L

        outer = self

        class _Clock(L.Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                outer.starts.append(time.perf_counter())

        self.starts: list[float] = []
        self.callback = _Clock()

    def seconds_per_step(self, skip: int) -> float:
        gaps = [b - a for a, b in zip(self.starts[skip:], self.starts[skip + 1:])]
        return sum(gaps) / max(1, len(gaps))


def _tokens(batch: dict) -> int:
    return sum(b["input_ids"].numel() for b in batch.values() if b is not None)


def bench_stage(cfg: Config, name: str, data_dir: Path, store, warmup: int, steps: int) -> dict:
    from ..data.text_tokenizer import image_token_ids, tokenizer_for
    from ..model.llm import build_llm
    from ..training.lit_module import HealthGPTLitModule
    from ..training.pipeline import build_model
    from ..training.train import stage_data, train_stage
    from ..training.stages import STAGES

    spec, tok, t = STAGES[name], tokenizer_for(cfg), cfg.train
    make = lambda: build_model(cfg, tok, base_llm=build_llm(cfg.llm, image_token_ids(tok).start, tok.pad_token_id))  # noqa: E731
    clock = StepClock()
    with tempfile.TemporaryDirectory() as run_dir:  # the production path, timed from the inside
        train_stage(cfg, spec, make(), stage_data(cfg, spec, tok, data_dir, store), Path(run_dir), warmup + steps + 1,
                    callbacks=[clock.callback], val_every=10**9)
    lightning_s = clock.seconds_per_step(skip=warmup)

    model = make()
    module = HealthGPTLitModule(model, spec, warmup + steps, t.lr_scale, t.warmup_fraction, seed=cfg.seed)
    optimizer = module.configure_optimizers()["optimizer"]
    dm = stage_data(cfg, spec, tok, data_dir, store)
    dm.setup()
    batches = iter(dm.train_dataloader())
    sample = [next(batches)[0] for _ in range(warmup + steps)]

    def step(batch):
        losses = [module._loss(b) for b in batch.values() if b is not None]
        torch.stack(losses).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in sample[:warmup]:
        step(batch)
    started = time.perf_counter()
    for batch in sample[warmup:]:
        step(batch)
    plain_s = (time.perf_counter() - started) / steps
    from torch.profiler import ProfilerActivity, profile

    with _quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        for batch in sample[warmup:]:
            step(batch)
        wall = time.perf_counter() - started
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    ops = sum(v for k, v in self_us.items() if k.startswith("aten::")) / 1e6
    matmul = sum(v for k, v in self_us.items() if k in MATMUL_OPS) / 1e6
    attention = sum(v for k, v in self_us.items() if "scaled_dot_product" in k) / 1e6
    tokens = sum(_tokens(b) for b in sample[warmup:]) / steps
    return {"stage": name, "tokens/step": round(tokens), "Lightning ms/step": 1e3 * lightning_s,
            "plain ms/step": 1e3 * plain_s, "Lightning overhead %": 100 * (lightning_s - plain_s) / lightning_s,
            "tokens/s (Lightning)": tokens / lightning_s, "matmul %": 100 * matmul / wall,
            "attention %": 100 * attention / wall, "other ops %": 100 * (ops - matmul - attention) / wall,
            "Python/framework %": 100 * max(0.0, wall - ops) / wall}


def bench_stages(cfg: Config, warmup: int = 3, steps: int = 10, log=print) -> pd.DataFrame:
    """One row per stage (see the module docstring)."""
    from ..data.generate import generate_dataset
    from ..training.stages import ORDER

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = generate_dataset(Path(tmp) / "data", cfg.data)
        store = stand_in_store(data_dir, cfg)
        rows = []
        for name in ORDER:
            rows.append(bench_stage(cfg, name, data_dir, store, warmup, steps))
            log(f"  {name}: {rows[-1]['Lightning ms/step']:.0f} ms/step")
    return pd.DataFrame(rows)


def run_cli(cfg: Config, out: str | Path, steps: int = 10) -> pd.DataFrame:
    """``bench stages``: run, print the table and the machine's load, save the CSV to ``out``."""
    load_before = os.getloadavg()
    threads = torch.get_num_threads()
    print(f"bench stages: tiny shapes, batches of {cfg.train.comp_batch_size} (comprehension) / "
          f"{cfg.train.gen_batch_size} (generation), {torch.get_num_threads()} CPU threads")
    df = bench_stages(cfg, steps=steps)
    torch.set_num_threads(threads)
    print(df.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    print(f"load average (1 min) before / after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
          "(a loaded machine inflates every time; compare the columns of one run)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(f"saved {out}")
    return df
