"""The second cell of every notebook: turn the literal ``parameters`` into a run context.

    run = setup(PROFILE, PRESET, SEED, ARTIFACTS_DIR, DATA_DIR, OVERRIDES)
    run.cfg, run.data_dir, run.artifacts_dir, run.progress

Seeds everything, builds the config strictly (an unknown override is an error), decides
where data and artifacts live, and whether to show progress bars (``cpu`` and larger
profiles only: a per-step bar would bloat the executed smoke notebooks). Under ``smoke`` it
says so once, at the top of the notebook (the cell that calls it): nothing below is learned.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..artifacts import REPO_ROOT, data_dir_for, default_artifacts_dir
from ..config import Config, build_config


@dataclass
class Run:
    cfg: Config
    artifacts_dir: Path
    data_dir: Path
    progress: bool

    def __repr__(self) -> str:
        return (f"Run(preset={self.cfg.preset!r}, profile={self.cfg.profile!r}, seed={self.cfg.seed}, "
                f"artifacts_dir='{self.artifacts_dir}', data_dir='{self.data_dir}')")


SMOKE_NOTICE = (
    "PROFILE = 'smoke': a CI check that every cell runs, with a few training steps on a handful of "
    "images. Nothing below is learned: answers, accuracies, curves and generated images are noise. "
    "Set PROFILE = 'cpu' (the default) for the learning run.")


def profile_notice(profile: str) -> str | None:
    """What the notebook says at the top about its profile: the smoke warning, or nothing."""
    return SMOKE_NOTICE if profile == "smoke" else None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup(profile: str = "smoke", preset: str = "tiny", seed: int = 0, artifacts_dir: str | None = None,
          data_dir: str | None = None, overrides: dict | None = None) -> Run:
    cfg = build_config(preset, profile, overrides, seed=seed)
    seed_everything(seed)
    art = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir()
    data = Path(data_dir) if data_dir else data_dir_for(cfg, art)
    progress = profile != "smoke"
    _quiet_libraries(progress)
    notice = profile_notice(profile)
    if notice:
        print(notice)
    return Run(cfg, art, data, progress=progress)


def _quiet_libraries(progress: bool) -> None:
    import logging
    import warnings

    import matplotlib
    import transformers

    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*treespec.*")  # a Lightning/torch deprecation notice
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not progress:  # "Loading weights" / "Writing model shards" bars would bloat smoke runs
        transformers.utils.logging.disable_progress_bar()
    matplotlib.rcParams.update({"figure.dpi": 90, "image.cmap": "gray", "axes.titlesize": 10})
    _show_figures_inline()


def _show_figures_inline() -> None:
    """Package helpers return ``matplotlib.figure.Figure`` objects and never touch pyplot, but
    IPython's inline backend registers its PNG formatter only once pyplot is imported (and not
    at all under ``MPLBACKEND=Agg``, as in the test harness): a returned Figure would then show
    as ``<Figure size ...>`` text. Register the formatter directly."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "display_formatter"):
        select_figure_formats(shell, {"png"}, bbox_inches="tight")


def repo_path(*parts: str) -> Path:
    """A path inside this checkout (``repo_path("configs", "m3_stage1.yaml")``), whatever folder
    the kernel was started in: notebooks never depend on the working directory (``../configs``)."""
    return REPO_ROOT.joinpath(*parts)


def course_map(root: Path | None = None) -> list[dict]:
    """The notebooks and exercises present in this checkout, with their titles (first heading)."""
    import nbformat

    root = root or REPO_ROOT
    rows = []
    for kind, paths in (("notebook", sorted((root / "notebooks").glob("*.ipynb"))),
                        ("exercise", sorted((root / "exercises").glob("*/student.ipynb")))):
        for p in paths:
            nb = nbformat.read(p, as_version=4)
            title = next((line.lstrip("# ").strip() for c in nb.cells if c.cell_type == "markdown"
                          for line in c.source.splitlines() if line.startswith("# ")), p.stem)
            rows.append({"kind": kind, "file": str(p.relative_to(root)), "title": title})
    return rows


def environment_report() -> dict:
    """What this machine offers: versions, threads, accelerator; checked, not assumed."""
    import importlib.metadata as md
    import platform

    report = {"python": platform.python_version(), "torch": torch.__version__,
              "cpu threads": torch.get_num_threads(),
              "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU run)"}
    for pkg in ("transformers", "peft", "lightning", "tokenizers", "torchmetrics", "pydicom", "papermill"):
        report[pkg] = md.version(pkg)
    return report
