"""The settings of ``bench hlora`` (section ``bench`` of the config), beside the benchmark that reads them.

Kept free of package imports, so ``config.py`` can hold it as a section."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BenchConfig:
    """``bench hlora``: training-step time and memory of LoRA, MoELoRA and H-LoRA (paper Table 4)."""

    sizes: tuple[str, ...] = ("tiny", "wide")  # "tiny": the LLM of cfg.llm; "wide": hidden = wide_hidden
    experts: tuple[int, ...] = (2, 4, 8)  # k; every variant has the same total rank r*k
    rank: int = 64  # total rank r*k (M3 comprehension plugin)
    wide_hidden: int = 1024
    wide_layers: int = 2
    vocab_size: int = 2048
    batch_size: int = 4
    seq_len: int = 128
    warmup: int = 2  # untimed steps per variant (also creates the optimizer state)
    repeats: int = 15  # timed samples per variant, variants interleaved; the median is reported
    threads: int = 1  # CPU threads while timing (1: stable on a shared machine; 0: torch's default)
