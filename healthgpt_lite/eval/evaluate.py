"""Evaluate a trained HealthGPT on a split of VL-Health-lite (REFERENCE section 4).

Comprehension: closed-question accuracy and open-question exact match, per question type,
modality and language; BLEU-4 / ROUGE-L of reports. Generation: SSIM / PSNR / MSE per task
with the honest baselines beside them:

* **copy the input** (CT->MRI, MRI->CT): a model that learned nothing but the identity;
* **bicubic** upsampling (4x super-resolution);
* **VQ ceiling**: ``decode(encode(target))``, the best any sequence of image tokens can do;
* report->X-ray: agreement of a lesion probe's reading with the report (and the probe's own
  accuracy on the real X-rays, its ceiling).
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import torch

from ..data.io import load_image
from ..data.phantoms import Patient
from ..data.records import load_records
from .metrics import bicubic_upsample, comprehension_scores, image_scores, mean_scores, report_scores
from .probe import agreement, lesion_facts

CONVERSION_TASKS = ("ct2mri", "mri2ct")
GENERATION_EVAL_TASKS = ("ct2mri", "mri2ct", "super_resolution", "reconstruction", "report2image")


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def evaluate_comprehension(gpt, data_dir: Path, split: str = "test", limit: int | None = None,
                           batch_size: int = 32, progress: bool = False, lang: str | None = None,
                           question_types: tuple[str, ...] | None = None) -> dict:
    """Answers to the comprehension records of ``split`` (only those in ``lang`` and of
    ``question_types`` if given) and their scores."""
    records = [r for r in load_records(data_dir / f"{split}.json") if r["task_type"] == "comprehension"
               and (lang is None or r["lang"] == lang)
               and (question_types is None or r["question_type"] in question_types)][:limit]
    rows = []
    chunks = list(_batches(records, batch_size))
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="answering")
    for chunk in chunks:
        answers = gpt.answer_batch([data_dir / r["image"] for r in chunk],
                                   [r["conversations"][0]["value"] for r in chunk],
                                   max_new_tokens=96 if any(r["task"] == "report" for r in chunk) else 16)
        for r, a in zip(chunk, answers):
            rows.append({"id": r["id"], "question_type": r["question_type"], "modality": r["modality"], "lang": r["lang"],
                         "question": r["conversations"][0]["value"].replace("<image>\n", ""),
                         "answer": r["conversations"][1]["value"], "prediction": a})
    scores = comprehension_scores(rows)
    reports = [r for r in rows if r["question_type"] == "report"]
    scores.update({f"report/{k}": v for k, v in report_scores([r["prediction"] for r in reports],
                                                               [r["answer"] for r in reports],
                                                               [r["lang"] for r in reports]).items()})
    return {"scores": scores, "rows": rows}


@torch.no_grad()
def evaluate_generation(gpt, data_dir: Path, split: str = "test", limit: int | None = None, probe=None,
                        batch_size: int = 16, progress: bool = False, tasks: tuple[str, ...] = GENERATION_EVAL_TASKS) -> dict:
    """Per task (of ``tasks``): model, baseline and VQ-ceiling scores, plus a few (input, output, target) samples."""
    records = [r for r in load_records(data_dir / f"{split}.json") if r["task"] in tasks]
    by_task = defaultdict(list)
    for r in records:
        by_task[r["task"]].append(r)
    size = gpt.cfg.vq.resolution
    results, samples = {}, {}
    for task, recs in by_task.items():
        recs = recs[:limit]
        outputs, targets, inputs = [], [], []
        chunks = list(_batches(recs, batch_size))
        if progress:
            from tqdm.auto import tqdm
            chunks = tqdm(chunks, desc=f"generating {task}")
        for chunk in chunks:
            images = [data_dir / r["image"] if r.get("image") else None for r in chunk]
            codes = gpt.generate_codes([r["conversations"][0]["value"] for r in chunk], images)
            outputs.append(gpt.vq.decode(codes).cpu())
            targets.append(torch.stack([load_image(data_dir / r["target_image"], size=size) for r in chunk]))
            if images[0] is not None:
                native = task == "super_resolution"  # the low-resolution input as acquired
                inputs.append(torch.stack([load_image(p, size=None if native else size) for p in images]))
        out, tgt = torch.cat(outputs), torch.cat(targets)
        entry = {"n": len(recs), "model": mean_scores(image_scores(out, tgt)),
                 "vq_ceiling": mean_scores(image_scores(gpt.vq.decode(gpt.vq.encode(tgt)).cpu(), tgt))}
        if task in CONVERSION_TASKS:
            entry["copy_input"] = mean_scores(image_scores(torch.cat(inputs), tgt))
        if task == "super_resolution":
            entry["bicubic"] = mean_scores(image_scores(bicubic_upsample(torch.cat(inputs), size), tgt))
        if task == "report2image" and probe is not None:
            entry["probe"] = _probe_agreement(probe, out, tgt, recs, data_dir)
        results[task] = entry
        samples[task] = {"inputs": torch.cat(inputs)[:4] if inputs else None, "outputs": out[:4], "targets": tgt[:4],
                         "prompts": [r["conversations"][0]["value"] for r in recs[:4]]}
    return {"scores": results, "samples": samples}


def _probe_agreement(probe, generated: torch.Tensor, real: torch.Tensor, recs: list[dict], data_dir: Path) -> dict:
    patients = {p["pid"]: Patient.from_dict(p) for p in json.loads((data_dir / "patients.json").read_text())}
    facts = [lesion_facts(patients[r["patient"]]) for r in recs]
    truth = {k: torch.tensor([f[k] for f in facts]) for k in facts[0]}
    return {"generated": agreement(probe.read(generated), truth), "real_ceiling": agreement(probe.read(real), truth)}
