"""``make reproduce``: the end-to-end pipeline on the embedded default (tiny preset, cpu profile).

Each step loads its artifact when one made with the same config exists, else makes it, then
adds its tables and figures to ``results/REPORT.md`` and its numbers to ``metrics.json``.
"""
from __future__ import annotations

import collections
import json
import time
from pathlib import Path

from .artifacts import data_dir_for, default_artifacts_dir
from .config import Config
from .eval.report import Report


def reproduce(cfg: Config, artifacts_dir: str | Path | None = None, out_dir: str | Path = "results",
              seeds: int = 1, split: str = "test") -> Report:
    """The whole pipeline. The data and the pretrained parts (CLIP-lite, VQ, LLM-lite) are made
    once, with ``cfg.seed``, and shared, as the real model shares its pretrained CLIP, VQGAN and
    Phi-3; the three stages and the evaluation run for seeds ``cfg.seed .. cfg.seed + seeds - 1``.
    ``split="val"`` evaluates on the validation patients instead: where options are compared and
    chosen (the report of record is on ``test``)."""
    import dataclasses

    from .errors import InputError

    if seeds < 1:
        raise InputError(f"--seeds {seeds}: give at least one seed")
    if split not in ("val", "test"):
        raise InputError(f"--split {split!r}: evaluate on 'val' (to choose options) or 'test' (the report)")
    art = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir()
    report = Report(out_dir)
    report.metrics["config"] = {"preset": cfg.preset, "profile": cfg.profile, "seed": cfg.seed,
                                "seeds": list(range(cfg.seed, cfg.seed + seeds)), "split": split}
    report.text(f"Preset `{cfg.preset}`, profile `{cfg.profile}`, seeds {cfg.seed}..{cfg.seed + seeds - 1}. "
                f"Every number below comes from this run; the models are scored on the `{split}` split.")
    for step in SHARED_STEPS:
        _timed(step.__name__, report, lambda: step(cfg, art, report))
    evaluations, stage_rows, first_paths = [], [], None
    for seed in range(cfg.seed, cfg.seed + seeds):
        cfg_s = dataclasses.replace(cfg, seed=seed)
        rows, paths = _timed(f"stages (seed {seed})", report, lambda: step_stages(cfg_s, art))
        stage_rows, first_paths = stage_rows + rows, first_paths or paths
        evaluations.append(_timed(f"evaluation (seed {seed})", report, lambda: evaluate_seed(cfg_s, art, split)))
        if seed == cfg.seed:
            report.metrics["minutes_first_seed"] = round((time.time() - report.started) / 60, 1)
    write_stages(report, stage_rows, first_paths)
    write_results(report, evaluations)
    report.write()
    print(f"[reproduce] wrote {report.out / 'REPORT.md'}")
    return report


def _timed(name: str, report: Report, work):
    t = time.time()
    print(f"[reproduce] {name} ...", flush=True)
    result = work()
    report.metrics.setdefault("step_seconds", {})[name] = round(time.time() - t, 1)
    report.write()
    return result


def step_data(cfg: Config, art: Path, report: Report) -> None:
    """Generate VL-Health-lite (or reuse it) and describe it."""
    from .data.generate import SPLITS, ensure_dataset
    from .data.phantoms import make_patient
    from .data.records import load_records
    from .viz.plots import patient_gallery, record_figure

    data_dir = ensure_dataset(data_dir_for(cfg, art), cfg.data, progress=True)
    rows, counts = [], {}
    for split in SPLITS:
        recs = load_records(data_dir / f"{split}.json")
        by_task = collections.Counter(r["task"] for r in recs)
        counts[split] = {"records": len(recs), "patients": len({r["patient"] for r in recs}), **by_task}
        rows.append({"split": split, **counts[split]})
    report.metrics["data"] = {"dir": str(data_dir), "splits": counts}
    report.section("1. Data: VL-Health-lite",
                   f"{cfg.data.n_patients} virtual patients rendered at {cfg.data.image_size} px as CT, MRI "
                   f"and X-ray, split by patient. Records per split and task:")
    report.table(rows)
    report.figure("data_gallery", patient_gallery(make_patient(3, cfg.data.seed), mark=True),
                  "One virtual patient in three modalities at four resolutions; red circles: ground-truth lesions.")
    example = next(r for r in load_records(data_dir / "train.json") if r["task"] == "ct2mri")
    report.figure("data_record_ct2mri", record_figure(example, data_dir), "A CT->MRI generation record.")


def step_vision(cfg: Config, art: Path, report: Report) -> None:
    """CLIP-lite (tiny/small) or the real CLIP (pretrained_path): retrieval vs chance, HVP probes."""
    from .data.generate import ensure_dataset
    from .vision import HVPEncoder, ensure_clip_lite, load_vision_encoder
    from .vision.clip_data import load_captioned_images
    from .vision.probes import hvp_probe_table, run_probes
    from .vision.retrieval import retrieval_rows
    from .viz.vision import probe_bars_figure

    data_dir = ensure_dataset(data_dir_for(cfg, art), cfg.data, progress=True)
    v = cfg.vision
    report.section("2. Vision encoder: CLIP-lite and hierarchical visual perception")
    if not v.pretrained_path:
        meta = json.loads((ensure_clip_lite(cfg, art, data_dir, progress=True) / "meta.json").read_text())
        report.metrics["clip_lite"] = meta["retrieval"]
        report.text(f"CLIP-lite: the {v.num_layers}-layer ViT pretrained for {v.clip_steps} steps (batch "
                    f"{v.clip_batch_size}) with CLIP's contrastive loss on the training images and their captions. "
                    f"Zero-shot retrieval on the {meta['retrieval']['test_images']} test images:")
        report.table(retrieval_rows(meta["retrieval"]))
    encoder = load_vision_encoder(cfg, art)
    train, test = (load_captioned_images(data_dir, s, v.image_size) for s in ("train", "test"))
    results = {"pretrained": run_probes(encoder, train, test),
               "random ViT": run_probes(HVPEncoder.from_config(v, seed=cfg.seed), train, test)}
    layers = {f"generation hs[{v.gen_layer}]": v.gen_layer, f"comprehension hs[{v.comp_layer}]": v.comp_layer}
    rows = hvp_probe_table(results, layers)
    report.metrics["hvp_probes"] = rows
    report.text("Linear probes (ridge, fit on train, scored on test) of the two HVP layers: patch pixels from "
                "each token (detail) and image attributes from the mean token (meaning).")
    report.table(rows)
    report.figure("hvp_probes", probe_bars_figure(results, layers, ["pixel R2", "any lesion", "lesion count",
                                                                    "lesion in right lung", "lesion in liver"]),
                  "HVP probes: shallow (generation) vs deep (comprehension) layer, pretrained vs random ViT.")


def step_vq(cfg: Config, art: Path, report: Report) -> None:
    """Train (or load) the VQ tokenizer and measure it on the test split (notebook 03)."""
    from .artifacts import read_meta
    from .training.trainer import plot_curves, read_metrics
    from .vq import ensure_vq, evaluate_vq, load_vq_tokenizer

    data_dir = data_dir_for(cfg, art)
    path = None if cfg.vq.pretrained_path else ensure_vq(cfg, art, data_dir, progress=True)
    result = evaluate_vq(load_vq_tokenizer(cfg, art), data_dir, "test")
    if path is not None:
        result["train_seconds"] = read_meta(path, "vq")["train_seconds"]
    report.metrics["vq"] = result
    report.section("3. VQ tokenizer", f"{cfg.vq.resolution} px images -> {cfg.vq.grid_size}x{cfg.vq.grid_size} = "
                   f"{cfg.vq.num_tokens} tokens of {cfg.vq.n_embed} codes; test split (targets, cpu profile: "
                   "PSNR >= 30 dB, SSIM >= 0.90, >= 50% of codes used, training <= 300 s on 2 cores):")
    report.table([result])
    if path is not None:
        report.figure("vq_val_psnr", plot_curves(read_metrics(path), ["val/psnr"], "VQ tokenizer: val PSNR (dB)"),
                      "Validation PSNR of the VQ tokenizer during training.")


from .reproduce_steps import evaluate_seed, step_llm, step_stages, write_results, write_stages  # noqa: E402

SHARED_STEPS = [step_data, step_vision, step_vq, step_llm]
