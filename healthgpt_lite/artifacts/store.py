"""Where stages hand their outputs on: ``ARTIFACTS_DIR``, keyed by a hash of the config.

A stage's output lives in ``ARTIFACTS_DIR/<name>-<hash>/`` with a ``meta.json`` that records
the preset and the exact config that made it. A later stage *loads if present, else trains*;
it never reuses an artifact made by another config, and files are written atomically
(temporary file + rename), so a half-written file is never mistaken for a good one.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from ..config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]


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


# ----------------------------------------------------------------------------- stage artifacts
def artifact_dir(cfg: Config, name: str, sections: tuple[str, ...], artifacts_dir: str | Path | None = None,
                 extra: dict | None = None) -> Path:
    """``ARTIFACTS_DIR/<name>-<hash of the config sections (and extra values) that determine it>``."""
    root = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir()
    key = cfg.hash(*sections)
    if extra:
        key = hashlib.sha256(f"{key}{json.dumps(extra, sort_keys=True, default=str)}".encode()).hexdigest()[:12]
    return root / f"{name}-{key}"


def is_complete(path: str | Path) -> bool:
    """An artifact is complete once its ``meta.json`` exists (written last, atomically)."""
    return (Path(path) / "meta.json").is_file()


def write_meta(path: str | Path, cfg: Config, name: str, **extra) -> Path:
    """Mark an artifact complete: what it is, which preset and exact config made it."""
    meta = {"name": name, "preset": cfg.preset, "profile": cfg.profile, "seed": cfg.seed,
            "config": cfg.to_dict(), **extra}
    return atomic_write_json(Path(path) / "meta.json", meta)


def read_meta(path: str | Path, name: str | None = None, preset: str | None = None,
              make_hint: str = "") -> dict:
    """Read a complete artifact's metadata, refusing a missing one or one made for another
    preset with a message that says which command makes the right one."""
    from ..errors import InputError

    path = Path(path)
    hint = f" (make it with: {make_hint})" if make_hint else ""
    if not is_complete(path):
        raise InputError(f"{path}: no complete artifact here (meta.json missing){hint}")
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}/meta.json is corrupt ({e}){hint}") from None
    if name is not None and meta.get("name") != name:
        raise InputError(f"{path}: holds a {meta.get('name')!r} artifact, expected {name!r}{hint}")
    if preset is not None and meta.get("preset") != preset:
        raise InputError(f"{path}: made for preset {meta.get('preset')!r}, but this run uses preset {preset!r}{hint}")
    return meta


def read_safetensors(path: str | Path) -> dict:
    """The tensors of a safetensors file; ``InputError`` naming the file when it is missing,
    truncated or not safetensors at all (never pickle: nothing here can run code)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ..errors import InputError

    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (SafetensorError, OSError) as e:
        raise InputError(f"{path}: not a readable safetensors file ({e})") from None


def read_torch_weights(path: str | Path, key: str | None = None) -> dict:
    """The tensors of a ``.pt`` / ``.ckpt`` / ``.bin`` file, read with ``torch.load(weights_only=True)``:
    tensors, dicts, lists and numbers only, never code. ``key``: the dict inside the file to
    return when it has one (taming's ``state_dict``). ``InputError`` naming the file when it is
    missing, not a torch file, needs pickled Python classes (with a one-line conversion to
    safetensors for a file the user trusts), or holds anything but tensors."""
    import pickle

    import torch

    from ..errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        inner = f"['{key}']" if key else ""
        raise InputError(
            f"{path}: needs pickled Python classes to load, and torch.load(weights_only=True) never runs code from a "
            f"download ({str(e).splitlines()[0]}). If you trust the file, convert it once to safetensors: "
            f"python -c \"import torch, safetensors.torch as s; "
            f"s.save_file(torch.load('{path}', weights_only=False){inner}, '{path.with_suffix('.safetensors')}')\"") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable torch file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    state = blob.get(key, blob) if key and isinstance(blob, dict) else blob
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        where = f" (or {{'{key}': ...}})" if key else ""
        raise InputError(f"{path}: expected a dict of tensors{where}, got {type(state).__name__}")
    return state


# the artifacts this process found made by an earlier run, in order (and those it made itself): a
# timed run (``pipelines/reproduce.py``) reads REUSED to tell an end-to-end time from one that skipped steps
REUSED: list[str] = []
_MADE_HERE: set[str] = set()


def load_or_make(cfg: Config, name: str, sections: tuple[str, ...], make, artifacts_dir: str | Path | None = None,
                 force: bool = False, extra: dict | None = None, **meta_extra) -> Path:
    """Return the artifact for ``cfg``; call ``make(path)`` to create it when absent.

    ``make`` writes its files into ``path`` (atomically, one by one) and may return a dict
    of extra metadata; ``meta.json`` is written last, so an interrupted ``make`` leaves an
    incomplete folder that the next call redoes (resuming from checkpoints if ``make`` can).
    Under DDP / FSDP every rank runs this; once ``make`` has started a process group, only rank 0
    writes (``make`` asks :func:`is_writer` too) and the others wait until ``meta.json`` is there.
    """
    path = artifact_dir(cfg, name, sections, artifacts_dir, extra)
    if not force and is_complete(path):
        if path.name not in _MADE_HERE:
            REUSED.append(path.name)
    else:
        path.mkdir(parents=True, exist_ok=True)
        extra = make(path) or {}
        _MADE_HERE.add(path.name)
        if is_writer():
            write_meta(path, cfg, name, sections=list(sections), **meta_extra, **extra)
        wait_for_writer()
    return path


def _process_group():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def is_writer() -> bool:
    """Whether this process writes artifacts: rank 0 of a running process group (DDP / FSDP),
    or any process without one (a single process, or ranks before Lightning started the group)."""
    group = _process_group()
    return group is None or group.get_rank() == 0


def wait_for_writer() -> None:
    """Every rank waits here until rank 0 has written, so none reads a half-made artifact."""
    group = _process_group()
    if group is not None:
        group.barrier()


def atomic_save_safetensors(tensors: dict, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """safetensors (no pickle) written to a temporary file, then renamed into place."""
    from safetensors.torch import save

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return atomic_write_bytes(path, save(tensors, metadata={k: str(v) for k, v in (metadata or {}).items()}))
