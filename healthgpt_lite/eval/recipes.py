"""Qilin-Med-VL's recipe beside HealthGPT's comprehension plugin, measured (notebook 11,
``reproduce --recipe qilin``).

Both recipes are trained (or loaded) at the same step budget on the same Chinese records, then:

* **accuracy**: closed-question accuracy, open-question exact match, report BLEU-4 / ROUGE-L on
  the Chinese test records (``evaluate_comprehension(..., lang="zh")``);
* **cost**: trainable weights, wall time of each stage, the time and memory of one
  instruction-tuning step measured side by side, and the same at HealthGPT-M3's size
  (``recipe_costs.py``);
* **what the LLM kept**: how far each recipe moved the base LLM's own weights, and the base LLM's
  next-token loss on English text it was pretrained on (a skill neither recipe trains): a full
  fine-tune changes it, a plugin leaves the base exactly as it was (switch the plugin off and
  the original LLM is back).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..config import Config
from ..data.records import load_records
from ..data.text_tokenizer import image_token_ids, tokenizer_for
from .evaluate import evaluate_comprehension

RECIPE_ORDER = ("qilin", "healthgpt_zh")
SHORT = {"qilin": "Qilin-Med-VL", "healthgpt_zh": "HealthGPT"}


def stage_rows(paths: dict[str, dict[str, Path]]) -> list[dict]:
    """One row per trained stage: what it trained, its steps, trainable weights, time, val loss."""
    rows = []
    for name, stages in paths.items():
        for stage, path in stages.items():
            meta = json.loads((path / "meta.json").read_text())
            rows.append({"recipe": SHORT[name], "stage": stage, "trains": ", ".join(meta["trains"]),
                         "steps": meta["steps"], "trainable params": meta["trainable_parameters"],
                         "train s": meta["train_seconds"],
                         "val loss": round(meta["final_metrics"].get("val/loss_comprehension", float("nan")), 3)})
    return rows


@torch.no_grad()
def text_loss(llm: nn.Module, tokenizer, texts: list[str], text_vocab: int, batch_size: int = 32) -> float:
    """Mean next-token cross-entropy (nats/token) of the LLM alone on plain text, scored over the
    text vocabulary only (so a model with image tokens is scored on the same softmax)."""
    from ..model.multimodal import collate

    llm.eval()
    total, count = 0.0, 0
    for i in range(0, len(texts), batch_size):
        ids = [torch.tensor(tokenizer(t, add_special_tokens=False)["input_ids"][:llm.config.max_position_embeddings])
               for t in texts[i:i + batch_size]]
        batch = collate([{"input_ids": x, "labels": x} for x in ids], tokenizer.pad_token_id)  # labels -100 at padding
        logits = llm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[..., :text_vocab]  # (B, T, V)
        target = batch["labels"][:, 1:]  # (B, T-1), -100 at padding
        loss = nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), target.flatten(), reduction="sum")
        total, count = total + float(loss), count + int((target != -100).sum())
    return total / max(count, 1)


@torch.no_grad()
def base_weight_drift(llm: nn.Module, base: nn.Module) -> float:
    """||theta - theta_0|| / ||theta_0|| over the base LLM's own weights (plugins not counted;
    wrapped layers keep W0 under ``.base``; extended vocabularies are compared on the text rows)."""
    own = {n.replace(".base.", ".").replace(".base_layer.", "."): p for n, p in llm.named_parameters()}
    diff, norm = 0.0, 0.0
    for name, p0 in base.named_parameters():
        p = own[name][tuple(slice(0, s) for s in p0.shape)]  # text rows of an extended embedding/head
        diff += float((p - p0).double().pow(2).sum())
        norm += float(p0.double().pow(2).sum())
    return (diff / norm) ** 0.5


def forgetting_rows(cfg: Config, artifacts_dir, data_dir: Path, n_texts: int = 128) -> list[dict]:
    """English text loss of the base LLM, Qilin's fine-tuned LLM and HealthGPT's LLM with its
    comprehension plugin off and on; and how far each moved the base weights."""
    from ..lora import set_task
    from ..training.llm_pretrain import chat_texts, load_base_llm
    from ..training.qilin import recipe_model

    tokenizer = tokenizer_for(cfg)
    vocab = image_token_ids(tokenizer).start
    texts = chat_texts([r for r in load_records(data_dir / "val.json") if r["lang"] == "en"])[:n_texts]
    base = load_base_llm(cfg, artifacts_dir)
    qilin, healthgpt = recipe_model(cfg, "qilin", None, artifacts_dir).llm, recipe_model(cfg, "healthgpt_zh", None, artifacts_dir).llm
    rows = [{"model": "base LLM (before either recipe)", "English text loss": text_loss(base, tokenizer, texts, vocab),
             "base weights moved": 0.0},
            {"model": "Qilin-Med-VL after stage 2", "English text loss": text_loss(qilin, tokenizer, texts, vocab),
             "base weights moved": base_weight_drift(qilin, base)}]
    for task, label in ((None, "HealthGPT, plugin off"), ("comprehension", "HealthGPT, comprehension plugin on")):
        set_task(healthgpt, task)
        rows.append({"model": label, "English text loss": text_loss(healthgpt, tokenizer, texts, vocab),
                     "base weights moved": base_weight_drift(healthgpt, base)})
    return rows


def compare_recipes(cfg: Config, artifacts_dir=None, data_dir=None, progress: bool = False, split: str = "test") -> dict:
    """Load-or-train both recipes and measure them on the Chinese records of ``split``.

    Returns ``{"stages", "summary", "answers", "forgetting", "costs", "scale": [rows],
    "paths": {recipe: {stage: Path}}, "scores": {recipe: scores}}``."""
    from ..training.pipeline import ensure_prerequisites
    from ..training.qilin import ensure_recipe, recipe_lite
    from .recipe_costs import scale_costs, step_costs

    data_dir = ensure_prerequisites(cfg, artifacts_dir, data_dir, progress)
    paths = {name: ensure_recipe(cfg, name, artifacts_dir, data_dir, progress) for name in RECIPE_ORDER}
    stages = stage_rows(paths)
    results = {name: evaluate_comprehension(recipe_lite(cfg, name, artifacts_dir), data_dir, split, progress=progress,
                                            lang="zh") for name in RECIPE_ORDER}
    costs = {row["recipe"]: row for row in step_costs(cfg, RECIPE_ORDER, data_dir, artifacts_dir)}
    summary = []
    for name in RECIPE_ORDER:
        s, mine, c = results[name]["scores"], [r for r in stages if r["recipe"] == SHORT[name]], costs[name]
        summary.append({"recipe": SHORT[name], "closed acc": s.get("closed", float("nan")),
                        "open EM": s.get("open", float("nan")), "trainable params": c["trainable params"],
                        "steps": sum(r["steps"] for r in mine), "train s (this run)": round(sum(r["train s"] for r in mine), 1),
                        "step ms": c["step ms"], "step time vs HealthGPT": c["time vs last"]})
    def named(rows: list[dict]) -> list[dict]:
        return [{**row, "recipe": SHORT[row["recipe"]]} for row in rows]

    return {"stages": stages, "summary": summary, "answers": side_by_side(results),
            "forgetting": forgetting_rows(cfg, artifacts_dir, data_dir), "costs": named(list(costs.values())),
            "scale": named(scale_costs(RECIPE_ORDER)), "paths": paths,
            "scores": {name: results[name]["scores"] for name in RECIPE_ORDER}}


def side_by_side(results: dict[str, dict], per_type: int = 2) -> list[dict]:
    """A few test records of every question type with both recipes' answers next to the reference."""
    by_id = {name: {r["id"]: r for r in res["rows"]} for name, res in results.items()}
    first = results[RECIPE_ORDER[0]]["rows"]
    taken: dict[str, int] = {}
    rows = []
    for r in first:
        if taken.get(r["question_type"], 0) >= per_type:
            continue
        taken[r["question_type"]] = taken.get(r["question_type"], 0) + 1
        rows.append({"type": r["question_type"], "question": r["question"], "reference": r["answer"],
                     **{SHORT[name]: by_id[name][r["id"]]["prediction"] for name in RECIPE_ORDER}})
    return sorted(rows, key=lambda row: row["type"])
