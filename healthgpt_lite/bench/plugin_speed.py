"""``python -m healthgpt_lite bench hlora``: is the fused H-LoRA as fast as plain LoRA? (paper Table 4)

For each LLM size (``bench.sizes``: ``tiny`` = the Phi3 of ``cfg.llm``; ``wide`` = hidden
``bench.wide_hidden``) and each variant -- LoRA (peft), MoELoRA and H-LoRA at k = 2, 4, 8
experts, all with the same total rank ``bench.rank`` -- this times one *training step*
(forward + backward + AdamW step on the adapter weights, base frozen) on random tokens.

* Time: variants are interleaved (each repeat visits all, in a rotated order) after warm-up
  steps, so drifting load hits every variant alike; a sample is enough steps to last ~0.05 s;
  the table holds the median per step and the ratio to LoRA.
* Memory: ``step_peak_mb`` is the peak of memory *allocated during one step* beyond what was
  live before it (activations kept for backward, gradients, temporaries): on CPU from the
  torch profiler's allocation events, on CUDA from ``torch.cuda.max_memory_allocated``.
  ``adapter_state_mb`` is the persistent cost: adapter weights + AdamW's two moments (fp32).

Paper (M3, GPU): MoELoRA/LoRA = 1.22x / 1.49x / 2.09x at 2 / 4 / 8 experts; H-LoRA ~ 1.00x.
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
from pathlib import Path

import pandas as pd
import torch
from ..model.llm import build_llm

from ..config import BenchConfig, Config, LLMConfig, PluginConfig, rank_split_problem
from ..errors import ConfigError
from ..lora import inject_hlora, plugin_parameters

SAMPLE_S = 0.05  # a timed sample runs enough steps to last about this long (short: fine interleaving)


def bench_llm(cfg: Config, size: str) -> LLMConfig:
    """``tiny``: ``cfg.llm``; ``wide``: hidden ``bench.wide_hidden`` with Phi-3-mini's proportions."""
    b = cfg.bench
    if size == "tiny":
        return cfg.llm
    if size == "wide":
        h = b.wide_hidden
        return LLMConfig(hidden_size=h, num_layers=b.wide_layers, num_heads=h // 64, num_kv_heads=h // 64,
                         intermediate_size=(8 * h // 3 + 63) // 64 * 64, max_position_embeddings=max(512, b.seq_len))
    raise ConfigError(f"bench.sizes: unknown size {size!r}; choose 'tiny' or 'wide'")


def variants(b: BenchConfig) -> list[tuple[str, int]]:
    """``(kind, experts)``: LoRA first (the reference), then MoELoRA and H-LoRA per k."""
    for k in b.experts:
        if problem := rank_split_problem(b.rank, k, "bench."):
            raise ConfigError(f"{problem} (checked for each value of bench.experts)")
    return [("lora", 1)] + [(kind, k) for k in b.experts for kind in ("moelora", "hlora")]


class Variant:
    """One adapted copy of the base model, its optimizer and a ``step()`` to time."""

    def __init__(self, base: torch.nn.Module, kind: str, experts: int, b: BenchConfig, ids: torch.Tensor):
        plugin = PluginConfig(rank=b.rank, experts=experts, alpha=2.0 * b.rank, dropout=0.05)  # alpha = 2rk (released)
        self.name = "lora" if kind == "lora" else f"{kind} k={experts}"
        self.kind, self.experts, self.ids = kind, experts, ids
        self.model = inject_hlora(copy.deepcopy(base), {"comprehension": plugin}, kind=kind).train()
        self.params = list(plugin_parameters(self.model, "comprehension").values())
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-4)

    def step(self) -> None:
        loss = self.model(input_ids=self.ids, labels=self.ids).loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(v: Variant, steps: int, device: torch.device) -> float:
    """Seconds per step, averaged over ``steps`` consecutive steps."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        v.step()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def interleaved_samples(runs: list, repeats: int, device: torch.device, on_repeat=None) -> dict[str, list[float]]:
    """Seconds per step of each run (anything with ``.name`` and ``.step()``), ``repeats`` samples
    each; every repeat visits all runs in a rotated order, so drifting load hits them alike."""
    steps = max(1, round(SAMPLE_S / time_steps(runs[0], 1, device)))
    samples = {v.name: [] for v in runs}
    for rep in range(repeats):
        for v in runs[rep % len(runs):] + runs[:rep % len(runs)]:
            samples[v.name].append(time_steps(v, steps, device))
        if on_repeat:
            on_repeat(rep + 1)
    return samples


@contextlib.contextmanager
def _quiet_native_stderr():
    """The profiler's C++ side prints status lines straight to file descriptor 2; hide them."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved), os.close(devnull)


def step_peak_bytes(v: Variant, device: torch.device) -> int:
    """Peak bytes allocated during one step beyond those live before it (see the module docstring)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        v.step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with _quiet_native_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        v.step()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:  # + allocation, - free, in time order
        live += nbytes
        peak = max(peak, live)
    return peak


def bench_size(cfg: Config, size: str, device: torch.device, log=print) -> list[dict]:
    b = cfg.bench
    llm = bench_llm(cfg, size)
    torch.manual_seed(cfg.seed)
    base = build_llm(llm, b.vocab_size).to(device)
    ids = torch.randint(3, b.vocab_size, (b.batch_size, b.seq_len), device=device)
    runs = [Variant(base, kind, k, b, ids) for kind, k in variants(b)]
    del base
    for v in runs:
        for _ in range(b.warmup):
            v.step()
    samples = interleaved_samples(runs, b.repeats, device, lambda rep: log(f"  {size}: repeat {rep}/{b.repeats} done"))
    rows = []
    for v in runs:
        n_params = sum(p.numel() for p in v.params)
        rows.append({"size": size, "hidden": llm.hidden_size, "layers": llm.num_layers, "variant": v.name,
                     "kind": v.kind, "experts": v.experts, "rank": b.rank, "adapter_params": n_params,
                     "step_ms": 1e3 * float(pd.Series(samples[v.name]).median()),
                     "step_peak_mb": step_peak_bytes(v, device) / 2**20,
                     "adapter_state_mb": 3 * 4 * n_params / 2**20})
    ref = rows[0]
    for r in rows:
        r["time_vs_lora"] = r["step_ms"] / ref["step_ms"]
        r["memory_vs_lora"] = r["step_peak_mb"] / ref["step_peak_mb"]
    return rows


def bench_hlora(cfg: Config, device: str = "cpu", log=print) -> pd.DataFrame:
    """The whole benchmark as a table (one row per size and variant)."""
    dev = torch.device(device)
    b = cfg.bench
    threads = torch.get_num_threads()
    torch.set_num_threads(b.threads or threads)
    log(f"bench hlora on {device} ({torch.get_num_threads()} CPU threads): batch {b.batch_size} x {b.seq_len} tokens, "
        f"total rank {b.rank}, {b.warmup} warm-up + {b.repeats} timed samples per variant")
    try:
        rows = [row for size in b.sizes for row in bench_size(cfg, size, dev, log)]
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(rows)


def format_table(df: pd.DataFrame) -> str:
    cols = ["size", "hidden", "variant", "adapter_params", "step_ms", "time_vs_lora", "step_peak_mb",
            "memory_vs_lora", "adapter_state_mb"]
    return df[cols].to_string(index=False, float_format=lambda x: f"{x:.2f}")


def run_cli(cfg: Config, out: str | Path, device: str = "cpu") -> pd.DataFrame:
    """``bench hlora``: run, print the table and the machine's load, save the CSV to ``out``."""
    load_before = os.getloadavg()
    df = bench_hlora(cfg, device)
    print(format_table(df))
    print(f"load average (1 min) before / after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    print(f"saved {out}")
    return df
