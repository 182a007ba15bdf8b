"""Qilin-Med-VL's two-stage recipe as data, and HealthGPT's comprehension recipe beside it
(docs/PAPERS.md section 5; notebook 11).

Qilin-Med-VL is LLaVA-1.5 with a Chinese LLM: CLIP layer -2 features, an ``mlp2x_gelu``
projector, the LLM's vocabulary unchanged (no image tokens), comprehension only.

=================  =====================================  ===================================
                   stage 1: feature alignment              stage 2: instruction tuning
=================  =====================================  ===================================
trained            projector only                          projector + the whole LLM
data (paper)       ChiMed-VL-Alignment: image-caption      ChiMed-VL-Instruction: Chinese QA
data (here)        Chinese reports (image -> report)       Chinese closed + open questions
LR, schedule       1e-3, cosine, 3% warm-up                2e-5, cosine, 3% warm-up
=================  =====================================  ===================================

Qilin's projector *is* the module HealthGPT calls the abstract adapter (``mlp2x_gelu`` on ViT
layer -2), so the group keeps its name; the whole LLM is the ``llm`` group (every base weight:
embeddings, decoder layers, norms, head). The model is built without H-LoRA plugins and
without the image vocabulary (``build_model(..., plugins=False)``).

The comparison arm, ``HEALTHGPT_ZH``: HealthGPT's own comprehension rows of ``stages.py``
(stage-1 abstract adapter, stage-3 comprehension plugin + adapter, same learning rates), on the
same Chinese records as Qilin's two stages. Stage 2 (embeddings + head on a mix with generation
data) is left out: it prepares the image vocabulary for generation, which this comprehension-only
comparison does not use, and it would give HealthGPT extra steps. Both recipes get the same step
budget per stage (``cfg.qilin``), the same batch size and the same ``train.lr_scale``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .stages import STAGES, StageSpec

ALIGNMENT_RECORDS = ("report",)  # image -> Chinese report: the ChiMed-VL-Alignment analogue
INSTRUCTION_RECORDS = ("vqa_closed", "vqa_open")  # Chinese questions: the ChiMed-VL-Instruction analogue

QILIN_STAGES: dict[str, StageSpec] = {s.name: s for s in [
    StageSpec("stage1", "comprehension", {"abstract_adapter": 1e-3}, ALIGNMENT_RECORDS, lang="zh",
              label="qilin_stage1",
              note="feature alignment: only the projector learns to describe images in Chinese (LLM frozen)"),
    StageSpec("stage2", "comprehension", {"abstract_adapter": 2e-5, "llm": 2e-5}, INSTRUCTION_RECORDS, lang="zh",
              label="qilin_stage2", depends_on=("qilin_stage1",),
              note="instruction tuning: projector + every LLM weight (full fine-tune) on Chinese questions"),
]}

HEALTHGPT_ZH_STAGES: dict[str, StageSpec] = {s.name: s for s in [
    replace(STAGES["stage1_comprehension"], lang="zh", label="healthgpt_zh_stage1",
            record_tasks=ALIGNMENT_RECORDS),
    replace(STAGES["stage3_comprehension"], lang="zh", label="healthgpt_zh_stage3",
            record_tasks=INSTRUCTION_RECORDS, depends_on=("healthgpt_zh_stage1",),
            note="visual instruction fine-tuning: comprehension H-LoRA + abstract adapter on Chinese questions"),
]}


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    stages: tuple[StageSpec, ...]  # in training order; stage i trains for budget i (``step_budget``)
    plugins: bool  # True: HealthGPT's model (H-LoRA plugins, image vocabulary); False: LLaVA-style


RECIPES: dict[str, Recipe] = {
    "qilin": Recipe("qilin", "Qilin-Med-VL (LLaVA-1.5: projector, then full fine-tune)",
                    tuple(QILIN_STAGES.values()), plugins=False),
    "healthgpt_zh": Recipe("healthgpt_zh", "HealthGPT (adapter, then comprehension H-LoRA plugin)",
                           tuple(HEALTHGPT_ZH_STAGES.values()), plugins=True),
}


def step_budget(cfg, index: int) -> int:
    """Steps of a recipe's stage ``index`` (0: alignment, 1: instruction tuning): the same for
    both recipes, so the comparison is at equal training budget."""
    return (cfg.qilin.stage1_steps, cfg.qilin.stage2_steps)[index]
