"""Checkers of exercise 04 (what trains in each stage, docs/PAPERS.md section 3; HealthGPT paper, "Three-stage Learning Strategy").

q1 ``set_trainable(model, groups, trains) -> None``: ``requires_grad`` on exactly the parameters
   of the stage's groups (a row of ``training/stages.py:STAGES``), checked on
   :class:`ShapedHealthGPT`, HealthGPT's parameters at a preset's real shapes on the meta device
   (no memory, so even M3's 3.9 B parameters cost nothing), for every stage.
q2 ``train_only_rows_from(weight, first_row) -> handle``: only the rows ``first_row..`` of a
   ``(V, d)`` embedding or head learn (stage-1 generation's new image-token rows), checked
   against ``training/lit_module.py:train_only_rows_from`` by running backward passes: the
   gradient per row, in every pass, in bfloat16 as well, the weights untouched, and the full
   gradient back once the returned handle is removed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, build_config
from ..training.lit_module import train_only_rows_from
from ..config import TASKS
from ..training.stages import ORDER, STAGES
from .checking import Case, Question

EXERCISE = "04_stage_rules"
PHI3_TEXT_VOCAB = 32011  # Phi-3-mini's vocabulary before the 8195 image tokens (docs/PAPERS.md section 1)


# ----------------------------------------------------------------------------- q1
class ShapedHealthGPT(nn.Module):
    """HealthGPT's parameters with a preset's shapes, on the meta device: a frozen ViT, two
    ``mlp2x_gelu`` adapters, the Phi-3 LLM and one H-LoRA plugin per task (fused A, B and a
    router for every linear layer of every decoder layer). It mirrors
    ``HealthGPTModel.parameter_groups`` without needing the trained parts."""

    def __init__(self, cfg: Config, text_vocab: int = PHI3_TEXT_VOCAB):
        from transformers import CLIPVisionConfig, CLIPVisionModel

        from ..model.image_positions import image_positions_for
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
            self.positions = image_positions_for(cfg)  # None: the paper's 1-D RoPE only

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        emb, head = self.llm.get_input_embeddings().weight, self.llm.get_output_embeddings().weight
        return {"abstract_adapter": list(self.adapters["comprehension"].parameters()),
                "concrete_adapter": list(self.adapters["generation"].parameters()),
                "comp_plugin": list(self.plugins["comprehension"].parameters()),
                "gen_plugin": list(self.plugins["generation"].parameters()),
                "embeddings": [emb], "head": [head],
                "image_rows": [emb, head],  # the same tensors: only rows >= <start_index> learn (a gradient mask)
                "image_positions": list(self.positions.parameters()) if self.positions else []}  # row + column of the code grid


def _plugin(linears: list[nn.Linear], rank: int, experts: int) -> nn.ParameterList:
    """A (r*k, d_in), B (d_out, r*k), router (k, d_in) per wrapped linear (docs/PAPERS.md section 2)."""
    params = []
    for lin in linears:
        params += [nn.Parameter(torch.empty(rank, lin.in_features)), nn.Parameter(torch.empty(lin.out_features, rank)),
                   nn.Parameter(torch.empty(experts, lin.in_features))]
    return nn.ParameterList(params)


def reference_set_trainable(model: nn.Module, groups: dict, trains: tuple[str, ...]) -> None:
    """The requires_grad part of ``training/lit_module.py:freeze_for_stage`` (which also installs
    the row mask of ``image_rows``: q2)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for g in trains:
        for p in groups[g]:
            p.requires_grad_(True)


def stage_cases() -> list[Case]:
    cfg = build_config("tiny", "smoke")

    def make_args(name: str):
        model = ShapedHealthGPT(cfg, text_vocab=64)
        return model, model.parameter_groups(), STAGES[name].trains

    return [Case(f"{name}: trains {STAGES[name].trains}, on a fresh model (every parameter starts with "
                 "requires_grad=True)", lambda n=name: make_args(n)) for name in ORDER]


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


# ----------------------------------------------------------------------------- q2
def reference_train_only_rows_from(weight: torch.Tensor, first_row: int):
    return train_only_rows_from(weight, first_row)


def _loss(weight: torch.Tensor) -> torch.Tensor:
    """A loss that reaches every row of ``weight`` (V, d), used as an embedding *and* a head
    (tied, as some LLMs do): a lookup of every token id, then logits over the vocabulary."""
    g = torch.Generator().manual_seed(weight.shape[0])
    v, d = weight.shape
    ids = torch.randperm(v, generator=g)  # (V,) every row looked up once
    hidden = F.embedding(ids, weight).float() + torch.randn(v, d, generator=g)  # (V, d)
    logits = hidden @ weight.float().T  # (V, V): the head, the same tensor
    return F.cross_entropy(logits, torch.randint(0, v, (v,), generator=g))


def _row_case(description: str, v: int, d: int, first_row: int, dtype=torch.float32) -> Case:
    def make_args():
        g = torch.Generator().manual_seed(v * d)
        weight = nn.Parameter(torch.randn(v, d, generator=g).to(dtype))  # (V, d)
        weight.original = weight.detach().clone()  # what observe_rows compares the weights with
        return weight, first_row
    return Case(description, make_args)


def row_cases() -> list[Case]:
    return [_row_case("a (12, 6) float32 matrix, rows 7.. new", 12, 6, 7),
            _row_case("a (40, 8) float32 matrix, rows 32.. new (the first new row is <start_index>)", 40, 8, 32),
            _row_case("a (24, 4) bfloat16 matrix, rows 20.. new (the M3 runs train in bf16)", 24, 4, 20, torch.bfloat16),
            _row_case("a (10, 3) float64 matrix, only the last row new", 10, 3, 9, torch.float64),
            _row_case("a (9, 5) float32 matrix, first_row=0 (every row new)", 9, 5, 0)]


def observe_rows(args: tuple, returned) -> dict:
    """Three backward passes: with the hook, once more (gradients accumulate), and after the
    returned handle is removed (from zero)."""
    weight, first_row = args

    def backward() -> torch.Tensor:
        _loss(weight).backward()
        return torch.zeros_like(weight, dtype=torch.float64) if weight.grad is None else weight.grad.double().clone()

    out = {"first_row": first_row, "changed": not torch.equal(weight.detach(), weight.original),
           "requires_grad": weight.requires_grad, "handle": hasattr(returned, "remove")}
    if not weight.requires_grad:
        return out
    out["once"] = backward()
    out["twice"] = backward()
    if out["handle"]:
        returned.remove()
        weight.grad = None
        out["removed"] = backward()
    return out


def compare_rows(expected: dict, got: dict) -> str | None:
    first = expected["first_row"]
    if not got["requires_grad"]:
        return ("the weight no longer requires grad, so no row learns; requires_grad is one flag per tensor, "
                "the rows must be told apart through their gradient")
    if got["changed"]:
        return "your function changed the weights themselves; leave them as they are and act on their gradient"
    want, have = expected["once"], got["once"]
    if not torch.allclose(have, want, rtol=1e-2, atol=1e-6):
        old_rows, new_rows = have[:first], have[first:]
        if old_rows.abs().sum() > 0 and not new_rows.abs().sum() > 0:
            return "the old (text) rows learn and the new ones do not: the mask is the wrong way round"
        if old_rows.abs().sum() > 0:
            return f"rows 0..{first - 1} (the text rows) still get a gradient"
        if first < len(have) and not have[first].abs().sum() > 0:
            return f"row {first} gets no gradient although it is the first new row (first_row itself learns)"
        if not torch.equal(have[:, :1].ne(0), have.ne(0)):
            return "some columns lose their gradient: mask whole rows (one factor per row, the same for all columns)"
        return "the gradient of the new rows is not the gradient they would get without the mask"
    if not torch.allclose(got["twice"], expected["twice"], rtol=1e-2, atol=1e-6):
        return ("the second backward pass gives the text rows a gradient again: the mask must act in every "
                "backward pass, as long as the stage trains")
    if not got["handle"]:
        return ("return the handle that registering gives back (it has .remove()), so the training module can "
                "take the mask off when the stage ends")
    if not torch.allclose(got["removed"], expected["removed"], rtol=1e-2, atol=1e-6):
        return "after handle.remove() the text rows still get no gradient: the handle must remove the mask"
    return None


# ----------------------------------------------------------------------------- the questions
q1 = Question(EXERCISE, "q1", "set_trainable", reference_set_trainable, stage_cases, compare_flags,
              observe=observe_flags, forbidden=("healthgpt_lite.training.lit_module.freeze_for_stage",),
              hints=("An optimiser updates what has requires_grad=True, and a new model has it on everywhere. What "
                     "must hold for the ViT and the LLM's base weights, which are in no group at all?",
                     "Look at image_rows: it holds the same two tensors as embeddings and head. A loop that decides "
                     "on or off group by group can switch a tensor off after another group switched it on. Decide "
                     "for every parameter first, then switch on what trains."))
q2 = Question(EXERCISE, "q2", "train_only_rows_from", reference_train_only_rows_from, row_cases, compare_rows,
              observe=observe_rows,
              forbidden=("healthgpt_lite.training.lit_module.train_only_rows_from",
                         "healthgpt_lite.training.lit_module.freeze_for_stage"),
              hints=("requires_grad cannot freeze half a matrix. What else decides how much a row of the weight "
                     "moves in an optimiser step, and where can you change it every time it is computed?",
                     "A tensor can be given a function that receives its gradient and returns the gradient to use; "
                     "return the gradient times a factor per row (0 before first_row, 1 from it on) of the "
                     "gradient's own dtype, and give back what registering returns."))
QUESTIONS = (q1, q2)
