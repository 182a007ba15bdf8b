"""Evaluate a trained HealthGPT on a split of VL-Health-lite (HealthGPT paper, "Experiments"; docs/PAPERS.md section 4).

Comprehension: closed-question accuracy and open-question exact match, per question type,
modality and language; BLEU-4 / ROUGE-L of reports; beside them the majority answer, the blind
text prior and the pixel-reference CNN (``comprehension_baselines``). Generation: SSIM / PSNR /
MSE per task, greedy (sampled for one-to-many tasks), and teacher-forced (the gap between the
two is exposure bias), with the honest baselines beside them (``baselines.py``): copy the input
and the grey-level table (CT<->MRI), bicubic (4x super-resolution), a lesion-free X-ray
(report->X-ray), and the VQ ceiling ``decode(encode(target))``, the best any sequence of image
tokens can do. Report->X-ray is also judged by a lesion probe (``probe.py``): does the image show
what the report says?
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import torch

from ..data.io import load_image
from ..data.phantoms import Patient
from ..data.records import lesion_free_instruction, load_records
from .baselines import fit_grey_level_table, lesion_free_xrays, text_baseline_answers, text_baselines
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


def comprehension_baselines(data_dir: Path, split: str = "test", image_size: int = 64, cnn_steps: int = 800,
                            seed: int = 0, progress: bool = False, encoder=None) -> dict[str, dict]:
    """Scores of the majority answer, the blind text prior and the pixel-reference CNN on the
    comprehension questions of ``split`` (``baselines.py``, ``pixel_reference.py``), scored
    exactly like the model's answers; given the model's vision ``encoder``, also the same
    reference reading its frozen comprehension tokens ("features CNN")."""
    from .pixel_reference import PixelReference

    records = [r for r in load_records(data_dir / f"{split}.json")
               if r["task_type"] == "comprehension" and r["question_type"] != "report"]
    answers = text_baseline_answers(text_baselines(data_dir), records)
    answers["pixel CNN"] = PixelReference.fit(data_dir, image_size, cnn_steps, seed=seed, progress=progress).answers(records, data_dir)
    if encoder is not None:
        answers["features CNN"] = PixelReference.fit(data_dir, image_size, cnn_steps, seed=seed, progress=progress,
                                                     encoder=encoder).answers(records, data_dir)
    rows = lambda preds: [{"question_type": r["question_type"], "modality": r["modality"], "lang": r["lang"],  # noqa: E731
                           "answer": r["conversations"][1]["value"], "prediction": p} for r, p in zip(records, preds)]
    return {name: comprehension_scores(rows(preds)) for name, preds in answers.items()}


@torch.no_grad()
def evaluate_generation(gpt, data_dir: Path, split: str = "test", limit: int | None = None, probe=None,
                        batch_size: int = 32, progress: bool = False, tasks: tuple[str, ...] = GENERATION_EVAL_TASKS,
                        baselines: bool = True) -> dict:
    """Per task (of ``tasks``): the model's scores (greedy, or sampled for the one-to-many tasks of
    ``cfg.eval.sample_tasks``, averaged over ``cfg.eval.samples`` draws), the teacher-forced
    scores, the baselines and the VQ ceiling; plus a few (input, output, target) samples."""
    records = [r for r in load_records(data_dir / f"{split}.json") if r["task"] in tasks]
    by_task = defaultdict(list)
    for r in records:
        by_task[r["task"]].append(r)
    results, samples = {}, {}
    for task, recs in by_task.items():
        recs = recs[:limit]
        run = _generate_task(gpt, data_dir, task, recs, batch_size, progress)
        out, tgt, inp = run["outputs"], run["targets"], run["inputs"]
        entry = {"n": len(recs), "model": mean_scores(image_scores(out, tgt.repeat(run["draws"], 1, 1, 1))),
                 "teacher_forced": mean_scores(image_scores(run["teacher_forced"], tgt)),
                 "vq_ceiling": mean_scores(image_scores(gpt.vq.decode(gpt.vq.encode(tgt)).cpu(), tgt))}
        if run["draws"] > 1:
            entry["model"]["samples_per_record"] = run["draws"]
        if baselines:
            entry.update(_baselines(gpt, data_dir, task, inp, tgt))
        if task == "report2image" and probe is not None:
            entry["probe"] = _probe_agreement(probe, out, tgt, recs, data_dir, run["draws"])
        results[task] = entry
        samples[task] = {"inputs": inp[:4] if inp is not None else None, "outputs": out[:4], "targets": tgt[:4],
                         "prompts": [r["conversations"][0]["value"] for r in recs[:4]]}
    return {"scores": results, "samples": samples}


def _generate_task(gpt, data_dir: Path, task: str, recs: list[dict], batch_size: int, progress: bool) -> dict:
    """Decode every record of one task (``draws`` times each when the task is sampled) and its
    teacher-forced image; ``outputs`` holds draw 0 of every record, then draw 1, ..."""
    e, size = gpt.cfg.eval, gpt.cfg.vq.resolution
    sampled = task in e.sample_tasks
    draws = e.samples if sampled else 1
    generator = torch.Generator().manual_seed(gpt.cfg.seed)
    outputs, forced, targets, inputs = [[] for _ in range(draws)], [], [], []
    chunks = list(_batches(recs, batch_size))
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc=f"generating {task}" + (f" ({draws} samples each)" if sampled else ""))
    for chunk in chunks:
        images = [data_dir / r["image"] if r.get("image") else None for r in chunk]
        texts = [r["conversations"][0]["value"] for r in chunk]
        target = torch.stack([load_image(data_dir / r["target_image"], size=size) for r in chunk])  # (b, 3, S, S)
        guides = [lesion_free_instruction(t) for t in texts] if sampled and task == "report2image" else None
        for d in range(draws):
            codes = gpt.generate_codes(texts, images, e.temperature if sampled else 0.0, e.top_k if sampled else None,
                                       generator, guides, e.guidance if guides else 0.0)
            outputs[d].append(gpt.vq.decode(codes).cpu())
        forced.append(gpt.vq.decode(gpt.teacher_forced_codes(texts, images, gpt.vq.encode(target))).cpu())
        targets.append(target)
        if images[0] is not None:
            native = task == "super_resolution"  # the low-resolution input as acquired
            inputs.append(torch.stack([load_image(p, size=None if native else size) for p in images]))
    return {"outputs": torch.cat([torch.cat(o) for o in outputs]), "teacher_forced": torch.cat(forced),
            "targets": torch.cat(targets), "inputs": torch.cat(inputs) if inputs else None, "draws": draws}


def _baselines(gpt, data_dir: Path, task: str, inputs, targets: torch.Tensor) -> dict:
    """The honest baselines of one task (see baselines.py), scored like the model."""
    size, out = gpt.cfg.vq.resolution, {}
    if task in CONVERSION_TASKS:
        out["copy_input"] = mean_scores(image_scores(inputs, targets))
        out["grey_level_table"] = mean_scores(image_scores(fit_grey_level_table(data_dir, task, size)(inputs), targets))
    if task == "super_resolution":
        out["bicubic"] = mean_scores(image_scores(bicubic_upsample(inputs, size), targets))
    if task == "report2image":
        out["lesion_free"] = mean_scores(image_scores(lesion_free_xrays(data_dir, len(targets), size), targets))
    return out


def _probe_agreement(probe, generated: torch.Tensor, real: torch.Tensor, recs: list[dict], data_dir: Path,
                     draws: int = 1) -> dict:
    """How often the lesion probe reads the report's facts off the generated X-rays (averaged over
    the ``draws`` samples of each report), beside a lesion-free X-ray and the real X-rays."""
    patients = {p["pid"]: Patient.from_dict(p) for p in json.loads((data_dir / "patients.json").read_text())}
    facts = [lesion_facts(patients[r["patient"]]) for r in recs]
    truth = {k: torch.tensor([f[k] for f in facts]) for k in facts[0]}
    repeated = {k: v.repeat(draws) for k, v in truth.items()}
    healthy = lesion_free_xrays(data_dir, len(recs), real.shape[-1])
    return {"generated": agreement(probe.read(generated), repeated), "lesion_free": agreement(probe.read(healthy), truth),
            "real_ceiling": agreement(probe.read(real), truth)}
