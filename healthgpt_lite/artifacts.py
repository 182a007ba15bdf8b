"""Where stages hand their outputs on: ``ARTIFACTS_DIR``, keyed by a hash of the config.

A stage's output lives in ``ARTIFACTS_DIR/<name>-<hash>/`` with a ``meta.json`` that records
the preset and the exact config that made it. A later stage *loads if present, else trains*;
it never reuses an artifact made by another config, and files are written atomically
(temporary file + rename), so a half-written file is never mistaken for a good one.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .config import Config

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_artifacts_dir() -> Path:
    return Path(os.environ.get("HEALTHGPT_LITE_ARTIFACTS", REPO_ROOT / "artifacts"))


def data_dir_for(cfg: Config, artifacts_dir: str | Path | None = None) -> Path:
    """The VL-Health-lite folder for ``cfg.data`` (one per distinct data config)."""
    root = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir()
    return root / "data" / f"vl_health_lite-{cfg.hash('data')}"


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, ensure_ascii=False, indent=1, default=str) + "\n").encode())
