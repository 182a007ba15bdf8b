"""One way to build a Lightning ``Trainer`` for every training run in the project.

CSVLogger (``<run_dir>/logs/metrics.csv``, plotted by :func:`plot_curves`, no service to run),
a ``last.ckpt`` checkpoint for resuming after an interruption, progress bars only when asked
(``cpu`` and larger profiles), and the accelerator / precision / strategy of ``cfg.train``.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Sequence

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from ..config import TrainConfig


def make_trainer(run_dir: str | Path, max_steps: int, train_cfg: TrainConfig | None = None, progress: bool = False,
                 val_check_interval: int | None = None, checkpoint_every: int | None = None,
                 callbacks: Sequence = (), **kwargs) -> L.Trainer:
    t = train_cfg or TrainConfig()
    run_dir = Path(run_dir)
    checkpoint = ModelCheckpoint(dirpath=run_dir / "checkpoints", save_last=True, save_top_k=0,
                                 every_n_train_steps=checkpoint_every or max(1, max_steps // 4))
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING if progress else logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*ModelCheckpoint.*")
    return L.Trainer(
        default_root_dir=run_dir, max_steps=max_steps, max_epochs=-1,
        accelerator=t.accelerator, devices=t.devices, strategy=t.strategy, precision=t.precision,
        logger=CSVLogger(save_dir=run_dir, name="", version="logs"),
        log_every_n_steps=min(t.log_every_n_steps, max(1, max_steps // 5)),
        callbacks=[checkpoint, *callbacks], enable_progress_bar=progress, enable_model_summary=False,
        num_sanity_val_steps=0, val_check_interval=val_check_interval, check_val_every_n_epoch=None,
        **kwargs)


def last_checkpoint(run_dir: str | Path) -> str | None:
    """The checkpoint to resume from after an interruption, if there is one (a file, or the
    folder of one shard per process that FSDP's ``state_dict_type="sharded"`` writes)."""
    path = Path(run_dir) / "checkpoints" / "last.ckpt"
    return str(path) if path.exists() else None


def read_metrics(run_dir: str | Path):
    """``metrics.csv`` as a DataFrame, one row per logged step (train and val rows merged)."""
    import pandas as pd

    df = pd.read_csv(Path(run_dir) / "logs" / "metrics.csv")
    return df.groupby("step", as_index=False).first() if "step" in df else df


def plot_curves(df, keys: Sequence[str], title: str = "", logy: bool = False, ylabel: str | None = None):
    """Curves of ``keys`` against the step, axes labelled and a legend; returns a Figure.
    ``ylabel`` defaults to the key (one curve), "loss" (all losses) or "value"."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    for k in keys:
        if k in df:
            d = df[["step", k]].dropna()
            ax.plot(d["step"], d[k], marker="." if len(d) < 30 else None, label=k)
    if ylabel is None:
        ylabel = keys[0] if len(keys) == 1 else "loss" if all("loss" in k for k in keys) else "value"
    ax.set_xlabel("training step"), ax.set_ylabel(ylabel + (" (log scale)" if logy else ""))
    ax.set_title(title), ax.grid(alpha=0.3), ax.legend()
    if logy:
        ax.set_yscale("log")
    fig.tight_layout()
    return fig
