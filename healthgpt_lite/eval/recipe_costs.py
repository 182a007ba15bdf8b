"""What each recipe's instruction-tuning stage costs to train (notebook 11, ``reproduce --recipe qilin``).

* :func:`step_costs`, measured on this preset: one training step (forward, backward, AdamW) of
  Qilin-Med-VL's stage 2 (full fine-tune) and HealthGPT's stage 3 (comprehension H-LoRA) on the
  same Chinese batch. Time: the two interleaved, median of ``bench.repeats`` samples at
  ``bench.threads`` threads (``bench/plugin_speed.py``), so a shared machine's drifting load hits both
  alike; memory: the peak allocated during one step (activations, gradients, temporaries) and
  the persistent training state of the trained weights (fp32 weight + gradient + AdamW m and v:
  16 bytes each).
* :func:`scale_costs`, computed: the same two stages on a real preset's shapes (HealthGPT-M3:
  Phi-3-mini + CLIP-L/14) on the meta device (``scale/``): trainable parameters and memory per
  GPU with activation checkpointing (``scale/memory.py``, bf16-mixed).
"""
from __future__ import annotations

import torch

from ..bench.plugin_speed import interleaved_samples, step_peak_bytes
from ..config import Config, build_config
from ..data.records import load_records
from ..data.text_tokenizer import tokenizer_for
from ..training.datamodule import BatchCollator, TaskDataset, task_records
from ..training.features import FeatureStore, ensure_features
from ..training.lit_module import HealthGPTLitModule, trainable_parameter_count
from ..training.qilin import recipe, recipe_model

STATE_BYTES = 16  # per trained weight: fp32 weight, gradient, AdamW m and v
MiB = 2**20


class RecipeStep:
    """One training step of a recipe's last stage on a fixed batch (``.step()`` is what is timed)."""

    def __init__(self, cfg: Config, name: str, batch: dict, artifacts_dir=None):
        rec = recipe(name)
        self.name, self.batch, spec = name, batch, rec.stages[-1]
        self.model = recipe_model(cfg, name, None, artifacts_dir)
        module = HealthGPTLitModule(self.model, spec, total_steps=1, lr_scale=cfg.train.lr_scale)  # freezes the rest
        self.optimizer = module.configure_optimizers()["optimizer"]
        self.stage, self.trainable = spec.name, trainable_parameter_count(self.model, spec)

    def step(self) -> None:
        b = self.batch
        self.model.set_task("comprehension")
        loss = self.model.loss(b["input_ids"], b["labels"], b["attention_mask"], features=b["features"])
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def chinese_batch(cfg: Config, name: str, data_dir, artifacts_dir=None) -> dict:
    """The first ``train.comp_batch_size`` training records of the recipe's instruction stage."""
    spec = recipe(name).stages[-1]
    store = FeatureStore.load(ensure_features(cfg, artifacts_dir, data_dir))
    tokenizer = tokenizer_for(cfg)
    records = task_records(load_records(data_dir / "train.json"), "comprehension", spec.record_tasks, spec.lang)
    examples = list(TaskDataset(records[:cfg.train.comp_batch_size], store, tokenizer, cfg, "comprehension"))
    return BatchCollator(store, tokenizer.pad_token_id, "comprehension")(examples)


def step_costs(cfg: Config, names: tuple[str, ...], data_dir, artifacts_dir=None) -> list[dict]:
    """One row per recipe: its instruction stage's trained weights, their training state, the
    median step time (and its ratio to the last recipe's) and the peak memory of one step."""
    batch = chinese_batch(cfg, names[0], data_dir, artifacts_dir)  # both recipes read the same records
    runs = [RecipeStep(cfg, name, batch, artifacts_dir) for name in names]
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.bench.threads or threads)
    try:
        for run in runs:
            for _ in range(max(1, cfg.bench.warmup)):  # also creates AdamW's state
                run.step()
        samples = interleaved_samples(runs, cfg.bench.repeats, torch.device("cpu"))
        peaks = [step_peak_bytes(run, torch.device("cpu")) for run in runs]
    finally:
        torch.set_num_threads(threads)
    medians = [float(torch.tensor(samples[run.name]).median()) for run in runs]
    return [{"recipe": run.name, "stage": run.stage, "trainable params": run.trainable,
             "training state MiB": round(STATE_BYTES * run.trainable / MiB, 2),
             "step ms": round(1e3 * ms, 1), "time vs last": round(ms / medians[-1], 2),
             "step peak MiB": round(peak / MiB, 1)}
            for run, ms, peak in zip(runs, medians, peaks)]


def scale_costs(names: tuple[str, ...], preset: str = "m3", n_gpus: int = 8) -> list[dict]:
    """The instruction stage of each recipe at a real preset's shapes (meta device): parameters
    in the model, parameters trained, and GiB per GPU (DDP / FSDP on ``n_gpus``, activation
    checkpointing, ``train.comp_batch_size`` VQA samples per GPU)."""
    from ..scale.memory import estimate_memory
    from ..scale.meta import build_meta_model
    from ..scale.plan import sample_tokens, stage_counts

    cfg = build_config(preset, "full")
    tokens = sample_tokens(cfg)["vqa"]["total"] * cfg.train.comp_batch_size
    rows = []
    for name in names:
        rec = recipe(name)
        counts = stage_counts(build_meta_model(cfg, plugins=rec.plugins), rec.stages[-1])
        rank = cfg.lora.comprehension.rank if rec.plugins else 0
        rows.append({"recipe": name, "stage": rec.stages[-1].name, "params in model": counts.total,
                     "trainable params": counts.trained, "trained share": round(counts.trained / counts.total, 4),
                     **{f"{s.upper()} GiB/GPU": round(estimate_memory(counts, s, n_gpus, tokens, rank, True).total, 1)
                        for s in ("ddp", "fsdp")}})
    return rows
