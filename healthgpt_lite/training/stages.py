"""The three-stage learning strategy as data (docs/PAPERS.md section 3; HealthGPT paper, "Three-stage Learning Strategy").

Each row says, for one stage and task, which parameter groups train, with which learning rate
(the released M3 values; ``train.lr_scale`` scales them all for the small presets, and
``train.lr_overrides`` replaces single ones, see :func:`stage_spec`), which
records it learns from and its schedule. The training module, the tests and the diagrams of
notebooks 06-08 all read this one table.

Parameter groups (see ``model/healthgpt_model.py``: ``HealthGPTModel.parameter_groups``):

=====================  ==============================================================
``abstract_adapter``   comprehension ``mlp2x_gelu`` (reads ViT layer -2)
``concrete_adapter``   generation ``mlp2x_gelu`` (reads ViT layer 1)
``comp_plugin``        the comprehension H-LoRA plugin (A, B, router of every layer)
``gen_plugin``         the generation H-LoRA plugin
``embeddings``         all rows of the input word embeddings
``head``               all rows of the output head (``lm_head``)
``image_rows``         only the new ``<start_index>/<idx_*>/<end_index>`` rows of both
``image_positions``    the learned grid position of each image token (``model/image_positions.py``;
                       empty when ``image_tokens.positions = "none"``, the paper's design)
``llm``                every base weight of the LLM (embeddings, layers, norms, head;
                       not the plugins): a full fine-tune (Qilin-Med-VL, ``qilin_stages.py``)
=====================  ==============================================================

The pitfall decision (docs/PAPERS.md section 3): the new image-token rows all start equal to the
mean text row, so in stage 1 every ``<idx_k>`` would get the *same* logit and generation
could not learn which code comes next until stage 2 trains the embeddings. We therefore let
stage-1 generation also train ``image_rows`` (the new rows only, at the H-LoRA learning rate;
the text rows stay frozen), so the generation plugin and the image vocabulary learn together
from the first step. Stage 2 then tunes *all* rows, as the paper does.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..config import TASKS
from ..errors import ConfigError, InputError

GROUPS = ("abstract_adapter", "concrete_adapter", "comp_plugin", "gen_plugin", "embeddings", "head", "image_rows",
          "image_positions", "llm")


@dataclass(frozen=True)
class StageSpec:
    stage: str  # "stage1" | "stage2" | "stage3"
    task: str  # "comprehension" | "generation" | "mixed"
    lrs: dict[str, float]  # trained group -> learning rate (M3 values)
    record_tasks: tuple[str, ...]  # which VL-Health-lite tasks it learns from
    schedule: str = "warmup_cosine"  # or "constant" (stage 2)
    note: str = ""
    depends_on: tuple[str, ...] = field(default_factory=tuple)  # stage artifacts that must exist
    lang: str | None = None  # only records in this language ("zh": Qilin-Med-VL's data); None = all
    label: str = ""  # a name of its own (another recipe's table); "" = "<stage>_<task>"
    sample: bool = False  # True: learn from train.stage2_samples records per task, not all of them

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return self.stage if self.task == "mixed" else f"{self.stage}_{self.task}"

    @property
    def trains(self) -> tuple[str, ...]:
        return tuple(self.lrs)

    @property
    def tasks(self) -> tuple[str, ...]:
        return TASKS if self.task == "mixed" else (self.task,)


STAGES: dict[str, StageSpec] = {s.name: s for s in [
    StageSpec("stage1", "comprehension", {"abstract_adapter": 1e-3}, ("report",),
              note="multimodal alignment: only the abstract adapter learns to describe images (LLM, H-LoRA frozen)"),
    StageSpec("stage1", "generation", {"concrete_adapter": 2e-5, "gen_plugin": 2e-4, "image_rows": 2e-4,
                                       "image_positions": 2e-4},
              ("reconstruction",),
              note="alignment for generation: concrete adapter + generation H-LoRA (+ the new image-token rows) "
                   "learn image -> VQ indices by reconstruction"),
    StageSpec("stage2", "mixed", {"embeddings": 2e-4, "head": 2e-4}, ("report", "reconstruction"),
              schedule="constant", depends_on=("stage1_comprehension", "stage1_generation"), sample=True,
              note="heterogeneous plugin adaptation: word embeddings + output head on a small mix of stage-1 data; "
                   "every H-LoRA frozen"),
    StageSpec("stage3", "comprehension", {"abstract_adapter": 2e-5, "comp_plugin": 2e-4},
              ("vqa_closed", "vqa_open", "report"), depends_on=("stage2",),
              note="visual instruction fine-tuning: comprehension H-LoRA + abstract adapter on VQA and reports"),
    StageSpec("stage3", "generation", {"concrete_adapter": 2e-5, "gen_plugin": 2e-4, "image_positions": 2e-4},
              ("ct2mri", "mri2ct", "super_resolution", "reconstruction", "report2image"), depends_on=("stage2",),
              note="visual instruction fine-tuning: generation H-LoRA + concrete adapter on conversion, "
                   "super-resolution, reconstruction and report->image"),
]}
# the config sections that decide a stage's model (its artifact is keyed by them, pipeline.stage_path)
MODEL_SECTIONS = ("data", "vision", "vq", "llm", "image_tokens", "lora")

ORDER = ("stage1_comprehension", "stage1_generation", "stage2", "stage3_comprehension", "stage3_generation")


def check_stage_names(names, error: type[Exception] = InputError) -> None:
    """Raise ``error`` naming the first unknown stage and the known ones (the one home of this check)."""
    unknown = [s for s in names if s not in STAGES]
    if unknown:
        raise error(f"unknown stage {unknown[0]!r}; choose one of {list(ORDER)}")


def lr_overrides(entries: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """``train.lr_overrides`` (``"<stage>.<group>=<lr>"``, M3 units like the table) as
    ``{stage: {group: lr}}``; an entry naming no stage, a group the stage does not train or no
    positive number is refused with the fix."""
    out: dict[str, dict[str, float]] = {}
    example = "e.g. 'stage3_comprehension.abstract_adapter=2e-4'"
    for entry in entries:
        where, eq, value = str(entry).partition("=")
        stage, dot, group = where.strip().partition(".")
        if not (eq and dot):
            raise ConfigError(f"train.lr_overrides entry {entry!r}: write '<stage>.<group>=<learning rate>', {example}")
        check_stage_names([stage], ConfigError)
        if group not in STAGES[stage].lrs:
            raise ConfigError(f"train.lr_overrides entry {entry!r}: {stage} trains {list(STAGES[stage].trains)}, "
                              f"not {group!r}")
        try:
            lr = float(value)
        except ValueError:
            lr = float("nan")
        if not lr > 0:
            raise ConfigError(f"train.lr_overrides entry {entry!r}: the learning rate must be a positive number, {example}")
        out.setdefault(stage, {})[group] = lr
    return out


def stage_spec(stage: str | StageSpec, overrides: tuple[str, ...] = ()) -> StageSpec:
    """The row a stage trains by: the table's (or the given spec) with ``train.lr_overrides``
    applied; the one place they are applied."""
    if not isinstance(stage, StageSpec):
        check_stage_names([stage])
        stage = STAGES[stage]
    changed = lr_overrides(overrides).get(stage.name)
    return replace(stage, lrs={**stage.lrs, **changed}) if changed else stage
