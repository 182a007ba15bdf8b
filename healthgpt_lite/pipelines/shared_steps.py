"""The steps of ``make reproduce`` made once and shared by every seed: the data set, CLIP-lite
(with the HVP probes), the VQ tokenizer and LLM-lite, as the real model shares its pretrained
CLIP, VQGAN and Phi-3. Each writes its section of REPORT.md."""
from __future__ import annotations

import collections
import json
from pathlib import Path

from ..artifacts import data_dir_for
from ..config import Config
from ..eval.report import Report


def step_data(cfg: Config, art: Path, report: Report) -> None:
    """Generate VL-Health-lite (or reuse it) and describe it."""
    from ..data.generate import SPLITS, ensure_dataset
    from ..data.phantoms import make_patient
    from ..data.records import load_records
    from ..viz.plots import patient_gallery, record_figure

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
    from ..data.generate import ensure_dataset
    from ..vision import HVPEncoder, ensure_clip_lite, load_vision_encoder
    from ..vision.clip_data import load_captioned_images
    from ..vision.probes import hvp_probe_table, run_probes
    from ..vision.retrieval import retrieval_rows
    from ..viz.vision import probe_bars_figure

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
    from ..artifacts import read_meta
    from ..training.trainer import plot_curves, read_metrics
    from ..vq import ensure_vq, evaluate_vq, load_vq_tokenizer

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


def step_llm(cfg: Config, art: Path, report: Report) -> None:
    """LLM-lite: the tiny LLM learns the corpus' language (skipped for real LLM weights)."""
    from ..training.llm_pretrain import ensure_llm_lite
    from ..training.trainer import plot_curves, read_metrics

    path = ensure_llm_lite(cfg, art, data_dir_for(cfg, art), progress=True)
    report.section("4. LLM-lite: a language before the stages")
    if path is None:
        report.text(f"Real LLM weights from `{cfg.llm.pretrained_path}`; nothing to pretrain.")
        return
    meta = json.loads((path / "meta.json").read_text())
    report.metrics["llm_lite"] = {"final_val_loss": meta["final_val_loss"], "steps": cfg.llm.pretrain_steps}
    report.text(f"Causal language modelling on the train split's text only (no images), {cfg.llm.pretrain_steps} "
                f"steps; final validation loss {meta['final_val_loss']:.3f} nats/token.")
    report.figure("llm_lite_curves", plot_curves(read_metrics(path), ["train/loss", "val/loss"], "LLM-lite", logy=True),
                  "LLM-lite pretraining curves.")


SHARED_STEPS = [step_data, step_vision, step_vq, step_llm]
