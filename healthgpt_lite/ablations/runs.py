"""The paper's ablations in miniature, as data (docs/PAPERS.md section 4; paper Tables 4, 5 and 10).

A **run** is one way to train the tiny HealthGPT: a *recipe* plus dotted config overrides. A
**table** asks one question and lists its rows: a label, the run, and the paper's numbers (M3)
where it publishes them. Every row of a table gets the same data, seeds, step budget and total
LoRA rank; ``tests/test_ablations.py`` checks that from this file. Runs that are the same
training (the H-LoRA reference appears in four tables) are trained once: the runner keys every
stage by what decides it.

Recipes (``runner.py``), all at ``ablation.step_fraction`` of each stage's steps:

* ``three_stage``: the reference recipe: stage 1 (comprehension, generation), stage 2, stage 3
  (comprehension, generation); scored on the finished model.
* ``plugin``: only what a plugin's kind and size change (paper Tables 4 and 10): the generation
  plugin where it first learns (stage-1 reconstruction, from the base model) and the
  comprehension plugin where it first learns (stage 3, from the reference's stage-2 model).
* ``mixed``: one run from the base model on every task's data at once, through **one** shared
  plugin, with as many batches of each task as the three stages see (paper Table 5).
* ``conflict``: stage-3 comprehension from the reference's stage-2 model with
  ``gen_fraction`` generation batches added per comprehension batch, through one shared plugin
  or the two task plugins (the paper's motivation).

A shared plugin has the rank of both task plugins together (and alpha scaled with it, so the
scale alpha / r is unchanged): sharing changes *who* uses the weights, not how many there are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..errors import ConfigError
from ..training.stages import ORDER

RECIPES = ("three_stage", "plugin", "mixed", "conflict")
# metric -> what it measures (columns of the tables; all on the test split)
METRICS = {
    "closed": "closed-question accuracy",
    "open": "open-question exact match",
    "recon_ssim": "reconstruction SSIM after stage-1 generation",
    "recon_val_loss": "reconstruction validation loss after stage-1 generation (nats/token)",
    "ct2mri_ssim": "CT->MRI SSIM of the finished model",
    "gen_val_loss": "generation validation loss at the end of the run (nats/token)",
    "train_s": "training seconds of the stages the row trains",
    "time_vs_lora": "training time relative to the LoRA row (same seed)",
}
# The paper's relative training times (docs/PAPERS.md section 4: Table 4 at k = 4, Table 10 otherwise)
PAPER_TIME = {"moelora": {2: 1.22, 4: 1.49, 8: 2.09, 32: 5.81}, "hlora": {2: 0.99, 4: 1.00, 8: 0.99, 32: 1.01}}


@dataclass(frozen=True)
class Run:
    name: str
    recipe: str
    overrides: tuple[tuple[str, Any], ...] = ()  # dotted config overrides (hashable)
    gen_fraction: float = 0.0  # conflict: generation batches per comprehension batch
    share: bool = False  # one LoRA plugin for both tasks


@dataclass(frozen=True)
class Row:
    label: str
    run: Run
    paper: dict = field(default_factory=dict)  # the paper's numbers (M3) for this row, where published


@dataclass(frozen=True)
class Table:
    key: str
    title: str
    question: str
    paper_ref: str
    rows: tuple[Row, ...]
    metrics: tuple[str, ...]
    all_seeds: bool  # every seed of ablation.seeds (small differences), else the first only


def plugin_run(cfg: Config, kind: str, k: int) -> Run:
    """A ``plugin`` run with this kind and k experts per plugin (total ranks unchanged)."""
    over: list[tuple[str, Any]] = [] if kind == cfg.lora.kind else [("lora.kind", kind)]
    if kind != "lora":  # plain LoRA has no experts: one matrix pair of the total rank
        over += [(f"lora.{t}.experts", k) for t in ("comprehension", "generation")
                 if getattr(cfg.lora, t).experts != k]
    return Run("lora" if kind == "lora" else f"{kind}_k{k}", "plugin", tuple(over))


def shared_overrides(cfg: Config) -> tuple[tuple[str, Any], ...]:
    """The shared plugin (built from the comprehension plugin's settings) gets both plugins' rank."""
    c, g = cfg.lora.comprehension, cfg.lora.generation
    rank = c.rank + g.rank
    return (("lora.comprehension.rank", rank), ("lora.comprehension.alpha", c.alpha * rank / c.rank))


def tables(cfg: Config) -> list[Table]:
    """The five ablations for ``cfg`` (its experts, mixing ratios and plugin sizes)."""
    a, v = cfg.ablation, cfg.vision
    k0 = cfg.lora.comprehension.experts
    reference = Run("reference", "three_stage")
    peft = Table(
        "peft", "1. PEFT method: LoRA vs MoELoRA vs H-LoRA",
        f"At the same total rank, does the fused H-LoRA (k = {k0}) learn as well as MoELoRA, and is it as fast "
        "as plain LoRA?", "paper Table 4 (SLAKE closed, reconstruction, training time)",
        (Row("LoRA", plugin_run(cfg, "lora", k0), {"slake_closed": 70.0, "reconstruction": 62.67, "time": 1.00}),
         Row(f"MoELoRA k={k0}", plugin_run(cfg, "moelora", k0),
             {"slake_closed": 66.4, "reconstruction": 67.31, "time": 1.49} if k0 == 4 else {}),
         Row(f"H-LoRA k={k0}", plugin_run(cfg, "hlora", k0),
             {"slake_closed": 74.6, "reconstruction": 67.69, "time": 1.00} if k0 == 4 else {})),
        ("closed", "open", "recon_ssim", "recon_val_loss", "train_s", "time_vs_lora"), all_seeds=True)
    experts = Table(
        "experts", "2. Number of experts", "How do quality and training time change with k at the same total rank?",
        "paper Table 10 (training time relative to LoRA)",
        tuple(Row(f"{name} k={k}", plugin_run(cfg, kind, k), {"time": PAPER_TIME[kind][k]} if k in PAPER_TIME[kind] else {})
              for kind, name in (("moelora", "MoELoRA"), ("hlora", "H-LoRA")) for k in a.experts),
        ("closed", "open", "recon_ssim", "recon_val_loss", "train_s", "time_vs_lora"), all_seeds=True)
    tls = Table(
        "tls", "3. Three stages vs one mixed run",
        "Does the three-stage recipe with two plugins beat one run that trains both tasks together through one "
        "shared plugin?", "paper Table 5 (SLAKE closed; CT brain SSIM)",
        (Row("three stages, two plugins", reference, {"slake_closed": 77.9, "ct_ssim": 70.8}),
         Row("one mixed run, one shared plugin", Run("mixed", "mixed", shared_overrides(cfg), share=True),
             {"slake_closed": 45.0, "ct_ssim": 65.6})),
        ("closed", "open", "ct2mri_ssim", "recon_ssim", "train_s"), all_seeds=False)
    hvp = Table(
        "hvp", "4. Hierarchical visual perception: which ViT layer for which task",
        f"Is the paper's choice (generation reads hidden_states[{v.gen_layer}], comprehension "
        f"hidden_states[{v.comp_layer}]) better than one layer for both?",
        "paper, 'Hierarchical Visual Perception' and Figure 6 (curves, no table)",
        (Row(f"paper: gen hs[{v.gen_layer}], comp hs[{v.comp_layer}]", reference),
         Row(f"both deep: hs[{v.comp_layer}]", Run("hvp_both_deep", "three_stage", (("vision.gen_layer", v.comp_layer),))),
         Row(f"both shallow: hs[{v.gen_layer}]",
             Run("hvp_both_shallow", "three_stage", (("vision.comp_layer", v.gen_layer),)))),
        ("closed", "open", "ct2mri_ssim", "recon_ssim"), all_seeds=False)
    conflict = Table(
        "conflict", "5. Task conflict",
        "Does comprehension suffer as generation data is added to the same LoRA, and do separate plugins "
        "prevent it?", "paper, Introduction, Figure 2 (the motivation; no table)",
        tuple(Row(f"{'shared' if share else 'separate'}, +{p:g} gen", conflict_run(cfg, p, share))
              for share in (True, False) for p in a.gen_mix),
        ("closed", "open", "gen_val_loss"), all_seeds=True)
    return [peft, experts, tls, hvp, conflict]


def conflict_run(cfg: Config, p: float, share: bool) -> Run:
    if not 0 <= p <= 1:
        raise ConfigError(f"ablation.gen_mix: {p} is not a fraction in [0, 1]")
    name = f"conflict_{'shared' if share else 'separate'}_{p:g}"
    return Run(name, "conflict", shared_overrides(cfg) if share else (), gen_fraction=p, share=share)


def runs_of(table_list: list[Table]) -> dict[str, Run]:
    """Every distinct run, by name (a name always means the same run)."""
    runs: dict[str, Run] = {}
    for t in table_list:
        for row in t.rows:
            if runs.setdefault(row.run.name, row.run) != row.run:
                raise ConfigError(f"two different runs are both called {row.run.name!r}")
    return runs


def stage_steps(cfg: Config) -> dict[str, int]:
    """Each stage's ablation budget: ``ablation.step_fraction`` of its steps, at least one."""
    t, f = cfg.train, cfg.ablation.step_fraction
    return {n: max(1, round(getattr(t, f"{n}_steps") * f)) for n in ORDER}


def budget(cfg: Config, run: Run) -> dict[str, int]:
    """Batches of each task type a run trains on (stage 2 draws one of each per step)."""
    s = stage_steps(cfg)
    if run.recipe in ("three_stage", "mixed"):  # mixed: as many of each as the three stages
        return {"comprehension": s["stage1_comprehension"] + s["stage2"] + s["stage3_comprehension"],
                "generation": s["stage1_generation"] + s["stage2"] + s["stage3_generation"]}
    if run.recipe == "plugin":
        return {"comprehension": s["stage3_comprehension"], "generation": s["stage1_generation"]}
    if run.recipe == "conflict":
        n = s["stage3_comprehension"]
        return {"comprehension": n, "generation": int(n * run.gen_fraction + 1e-9)}
    raise ConfigError(f"unknown ablation recipe {run.recipe!r}; choose one of {RECIPES}")
