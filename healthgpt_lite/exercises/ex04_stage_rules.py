"""Checkers of exercise 04 (stage rules): which parameter groups train in each stage and task
(REFERENCE section 3, paper section 3.4), checked against ``training/stages.py:STAGES``.

q1 ``trainable_groups(stage, task) -> set[str]``: the groups that train.
q2 ``set_trainable(model, groups, stage, task) -> None``: set ``requires_grad`` accordingly,
   checked on :class:`ShapedHealthGPT`, HealthGPT's parameters at a preset's real shapes on the
   meta device (no memory, so even M3's 3.9 B parameters cost nothing).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import Config, build_config
from ..training.stages import GROUPS, STAGES, TASKS
from .checking import Case, Question

EXERCISE = "04_stage_rules"
STAGE_NAMES = ("stage1", "stage2", "stage3")
PHI3_TEXT_VOCAB = 32011  # Phi-3-mini's vocabulary before the 8195 image tokens (REFERENCE section 1)


def stage_spec(stage: str, task: str):
    """The row of the stage table for one stage and task (stage 2 is one joint row)."""
    return STAGES[stage] if stage in STAGES else STAGES[f"{stage}_{task}"]


# ----------------------------------------------------------------------------- q1
def reference_trainable_groups(stage: str, task: str) -> set[str]:
    return set(stage_spec(stage, task).trains)


def _all_pairs():
    for stage in STAGE_NAMES:
        for task in TASKS:
            yield Case(f"stage={stage!r}, task={task!r}", lambda s=stage, t=task: (s, t))


def compare_groups(expected: set[str], got) -> str | None:
    if not isinstance(got, (set, frozenset, list, tuple)):
        return f"return a set of group names, got {type(got).__name__}"
    unknown = sorted(str(g) for g in got if g not in GROUPS)
    if unknown:
        return f"{unknown[0]!r} is not a parameter group; the groups are {', '.join(GROUPS)}"
    extra, missing = sorted(set(got) - expected), expected - set(got)
    if extra:
        return f"{extra[0]!r} does not train in this stage"
    if missing == {"image_rows"}:
        return "one trained group is missing: think about the new image-token rows (the pitfall)"
    if missing:
        return f"{len(missing)} trained group(s) missing"
    return None


# ----------------------------------------------------------------------------- q2
class ShapedHealthGPT(nn.Module):
    """HealthGPT's parameters with a preset's shapes, on the meta device: a frozen ViT, two
    ``mlp2x_gelu`` adapters, the Phi-3 LLM and one H-LoRA plugin per task (fused A, B and a
    router for every linear layer of every decoder layer). It mirrors
    ``HealthGPTModel.parameter_groups`` without needing the trained parts."""

    def __init__(self, cfg: Config, text_vocab: int = PHI3_TEXT_VOCAB):
        from transformers import CLIPVisionConfig, CLIPVisionModel

        from ..model.llm import build_llm

        super().__init__()
        v, d = cfg.vision, cfg.llm.hidden_size
        with torch.device("meta"):
            self.vision = CLIPVisionModel(CLIPVisionConfig(
                hidden_size=v.hidden_size, intermediate_size=v.intermediate_size, num_hidden_layers=v.num_layers,
                num_attention_heads=v.num_heads, image_size=v.image_size, patch_size=v.patch_size))
            self.llm = build_llm(cfg.llm, text_vocab + cfg.vq.n_embed + 3)  # + <start_index>, <end_index>, <pixel_newline>
            self.adapters = nn.ModuleDict({t: nn.Sequential(nn.Linear(v.hidden_size, d), nn.GELU(), nn.Linear(d, d))
                                           for t in TASKS})
            linears = [m for m in self.llm.model.layers.modules() if isinstance(m, nn.Linear)]
            self.plugins = nn.ModuleDict({t: _plugin(linears, getattr(cfg.lora, t).rank, getattr(cfg.lora, t).experts)
                                          for t in TASKS})

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        emb, head = self.llm.get_input_embeddings().weight, self.llm.get_output_embeddings().weight
        return {"abstract_adapter": list(self.adapters["comprehension"].parameters()),
                "concrete_adapter": list(self.adapters["generation"].parameters()),
                "comp_plugin": list(self.plugins["comprehension"].parameters()),
                "gen_plugin": list(self.plugins["generation"].parameters()),
                "embeddings": [emb], "head": [head],
                "image_rows": [emb, head]}  # the same tensors: only rows >= <start_index> learn (a gradient mask)


def _plugin(linears: list[nn.Linear], rank: int, experts: int) -> nn.ParameterList:
    """A (r*k, d_in), B (d_out, r*k), router (k, d_in) per wrapped linear (REFERENCE section 2)."""
    params = []
    for lin in linears:
        params += [nn.Parameter(torch.empty(rank, lin.in_features)), nn.Parameter(torch.empty(lin.out_features, rank)),
                   nn.Parameter(torch.empty(experts, lin.in_features))]
    return nn.ParameterList(params)


def reference_set_trainable(model: nn.Module, groups: dict, stage: str, task: str) -> None:
    """The requires_grad part of ``training/lit_module.py:freeze_for_stage`` (which also installs
    the gradient mask of ``image_rows``; that needs the real model's token ids)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for g in stage_spec(stage, task).trains:
        for p in groups[g]:
            p.requires_grad_(True)


def _shaped_case(stage: str, task: str, cfg: Config):
    def make_args():
        model = ShapedHealthGPT(cfg, text_vocab=64)
        return model, model.parameter_groups(), stage, task
    return Case(f"stage={stage!r}, task={task!r} on a fresh model (every parameter starts with requires_grad=True)",
                make_args)


def _pairs_on_model():
    cfg = build_config("tiny", "smoke")
    return [_shaped_case(s, t, cfg) for s in STAGE_NAMES for t in TASKS]


def observe_flags(args: tuple, returned) -> dict[str, tuple[bool, tuple[str, ...]]]:
    """parameter name -> (requires_grad, the groups it belongs to)."""
    model, groups = args[0], args[1]
    member = {id(p): tuple(g for g, ps in groups.items() if any(p is q for q in ps)) for p in model.parameters()}
    return {n: (p.requires_grad, member[id(p)]) for n, p in model.named_parameters()}


def compare_flags(expected: dict, got: dict) -> str | None:
    for name, (want, in_groups) in expected.items():
        have = got[name][0]
        if want == have:
            continue
        if not in_groups:
            return "a parameter outside every group (the frozen ViT / LLM weights) has requires_grad=True"
        if want:
            shared = " (one tensor can belong to two groups)" if len(in_groups) > 1 else ""
            return f"a parameter of {in_groups[0]!r} is frozen although this stage trains it{shared}"
        return f"a parameter of {in_groups[0]!r} has requires_grad=True although this stage does not train it"
    return None


# ----------------------------------------------------------------------------- the questions
q1 = Question(EXERCISE, "q1", "trainable_groups", reference_trainable_groups, _all_pairs, compare_groups,
              hint_text="Go through the stage table row by row. Stage 1 only aligns (the adapter of the task; "
                        "generation also needs its plugin and the new image-token rows), stage 2 is one joint "
                        "stage for both tasks, stage 3 tunes each task's own plugin and adapter.",
              placeholder=None)
q2 = Question(EXERCISE, "q2", "set_trainable", reference_set_trainable, _pairs_on_model, compare_flags,
              observe=observe_flags,
              hint_text="Two passes: first set requires_grad=False on every parameter of the model, then True "
                        "on every parameter of every group that trains. Setting True/False group by group in one "
                        "pass goes wrong when one tensor belongs to two groups.")
QUESTIONS = (q1, q2)
