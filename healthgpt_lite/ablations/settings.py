"""The settings of the ablations (section ``ablation`` of the config), beside the runs that read them.

Kept free of package imports, so ``config.py`` can hold it as a section."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AblationConfig:
    """``reproduce --ablations`` / notebook 10: the paper's ablations in miniature (docs/PAPERS.md
    section 4). Every row of a table gets the same data, seeds, steps and total rank."""

    step_fraction: float = 0.25  # each ablation stage trains this fraction of its train.*_steps (>= 1 step)
    seeds: int = 2  # seeds cfg.seed, cfg.seed + 1, ... for the tables whose differences are small
    experts: tuple[int, ...] = (2, 4, 8)  # k of MoELoRA and H-LoRA (paper Table 10)
    gen_mix: tuple[float, ...] = (0.0, 0.5, 1.0)  # task conflict: generation batches per comprehension batch
    comp_limit: int | None = None  # test comprehension records scored per run (None: all)
    gen_limit: int | None = 32  # test records per generation task scored per run (None: all; 0: none, SSIM not scored)
    # CPU threads while training and scoring (0: torch's default). One: the tiny model's matmuls gain
    # nothing from a second thread, and on a shared 2-core machine two were 17x slower (measured).
    threads: int = 1
