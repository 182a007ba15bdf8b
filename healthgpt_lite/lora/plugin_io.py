"""Save and load one task's plugin as a safetensors file, refusing one that does not fit.

    save_plugin(llm, "comprehension", path, extra={"adapter.0.weight": ...}, meta={"preset": cfg.preset})
    extra = load_plugin(llm, "comprehension", path, preset=cfg.preset)   # -> the ``extra`` tensors

The file holds the plugin's weights under their names in ``model`` (so save and load with the
same kind of object: the LLM, or the model that contains it), the caller's ``extra`` tensors
(e.g. the task's adapter MLP) under ``extra.<name>``, and metadata: format, task, kind, rank,
experts, alpha, the wrapped layers' shapes, the preset and the caller's ``meta``. Loading a file
saved for another task, kind, rank, expert count, alpha, preset or layer shapes raises an
``InputError`` that names the mismatch; nothing is half-loaded. Written atomically.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from ..artifacts import atomic_save_safetensors
from ..errors import InputError
from .inject import layer_shapes, plugin_configs, plugin_kind, plugin_parameters

FORMAT = "healthgpt_lite.plugin/1"
EXTRA = "extra."


def plugin_metadata(model: nn.Module, task: str, meta: dict | None = None) -> dict[str, str]:
    """What must match for ``task``'s plugin weights to mean the same thing in another model."""
    cfg = plugin_configs(model)[task]
    meta = dict(meta or {})
    return {"format": FORMAT, "task": task, "kind": plugin_kind(model), "rank": str(cfg.rank),
            "experts": str(cfg.experts), "alpha": str(cfg.alpha), "preset": str(meta.get("preset", "")),
            "layers": json.dumps(layer_shapes(model)), "meta": json.dumps(meta, default=str)}


def save_plugin(model: nn.Module, task: str, path: str | Path, extra: dict[str, torch.Tensor] | None = None,
                meta: dict | None = None) -> Path:
    """Write ``task``'s plugin (+ ``extra`` tensors) to ``path`` (.safetensors), atomically."""
    tensors = dict(plugin_parameters(model, task))
    tensors.update({EXTRA + k: v for k, v in (extra or {}).items()})
    return atomic_save_safetensors(tensors, path, metadata=plugin_metadata(model, task, meta))


def read_plugin_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a plugin file; ``InputError`` if it is missing or not a plugin file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no plugin file here")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as e:
        raise InputError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != FORMAT:
        raise InputError(f"{path}: not a task-plugin file (format {meta.get('format')!r}, expected {FORMAT!r})")
    return meta


def _check_fits(model: nn.Module, task: str, saved: dict[str, str], preset: str | None, path: Path) -> None:
    if task not in plugin_configs(model):
        raise InputError(f"{path}: this model has no {task!r} plugin (it has {list(plugin_configs(model))})")
    here = plugin_metadata(model, task, {"preset": preset})
    if saved["task"] != task:
        raise InputError(f"{path}: plugin was saved for task {saved['task']!r} but is being loaded as {task!r}")
    if preset is not None and saved["preset"] and saved["preset"] != preset:
        raise InputError(f"{path}: plugin was saved for preset {saved['preset']!r} but this model is preset {preset!r}")
    for key in ("kind", "rank", "experts", "alpha"):
        if saved[key] != here[key]:
            raise InputError(f"{path}: plugin was saved with {key} {saved[key]} "
                             f"but this model's {task} plugin has {key} {here[key]}")
    saved_layers, layers = json.loads(saved["layers"]), json.loads(here["layers"])
    if saved_layers != layers:
        differ = sorted(set(saved_layers) ^ set(layers)) or [n for n in layers if saved_layers[n] != layers[n]]
        name = differ[0]
        where = f"{name} has (d_in, d_out) = {saved_layers.get(name, 'absent')} there but {layers.get(name, 'absent')} here"
        from_preset = f" (saved for preset {saved['preset']!r})" if saved["preset"] else ""
        raise InputError(f"{path}: plugin layers do not match this model's{from_preset}: {where}")


def load_plugin(model: nn.Module, task: str, path: str | Path, preset: str | None = None) -> dict[str, torch.Tensor]:
    """Copy a saved plugin into ``model``'s ``task`` plugin; return the file's ``extra`` tensors.

    ``preset`` (optional): the preset this model was built for, checked against the file's."""
    path = Path(path)
    saved = read_plugin_metadata(path)
    _check_fits(model, task, saved, preset, path)
    params = plugin_parameters(model, task)
    with safe_open(str(path), framework="pt") as f:
        names = [k for k in f.keys() if not k.startswith(EXTRA)]
        missing, unexpected = sorted(set(params) - set(names)), sorted(set(names) - set(params))
        if missing or unexpected:
            raise InputError(f"{path}: plugin weight names differ from this model's (saved from another "
                             f"kind of object?): missing {missing[:3]}, unexpected {unexpected[:3]}")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(tensors[name])
    return {k[len(EXTRA):]: v for k, v in tensors.items() if k.startswith(EXTRA)}
