"""The settings of Qilin-Med-VL's recipe (section ``qilin`` of the config), beside the recipe that reads them.

Kept free of package imports, so ``config.py`` can hold it as a section."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class QilinConfig:
    """Qilin-Med-VL's two-stage recipe beside HealthGPT's comprehension plugin, on the Chinese
    records (docs/PAPERS.md section 5, notebook 11). Both recipes get these step budgets (batch:
    ``train.comp_batch_size``, learning rates x ``train.lr_scale``), so only the recipe differs."""

    # cpu-sized (notebook 11 in ``cpu`` within ~10 min on 2 cores; both recipes learn clearly by then)
    stage1_steps: int = 100  # alignment: Qilin stage 1 = HealthGPT stage-1 comprehension
    stage2_steps: int = 200  # instruction tuning: Qilin stage 2 (full fine-tune) = HealthGPT stage-3 comprehension
