"""Plain LoRA through HuggingFace ``peft``: the paper's LoRA baseline (Table 4), one adapter per task.

    delta = B( A( dropout(x) ) ) * alpha / rank      A: d_in -> rank, B: rank -> d_out

One LoRA of the plugin's *total* rank (``PluginConfig.rank``; ``experts`` is ignored: plain
LoRA has no router), named after the task, in the same layers H-LoRA wraps. peft's own
conventions apply: the scale is ``alpha / rank`` and dropout acts on the input ``x`` (H-LoRA:
``alpha / r`` and on ``A x``). With one expert the two functions coincide (tests check it).

``inject_hlora(model, plugins, kind="lora")`` calls :func:`inject_lora`; ``set_task`` switches
its adapters like H-LoRA plugins (:func:`set_peft_task`), leaving ``requires_grad`` alone.
"""
from __future__ import annotations

import warnings
from typing import Iterable, Mapping

from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora import LoraLayer
from torch import nn

from ..config import PluginConfig
from ..errors import InputError
from .layer import check_plugin_config


def lora_config(plugin: PluginConfig, target_modules: Iterable[str]) -> LoraConfig:
    """peft's config for one task: total rank, alpha and dropout of ``plugin``."""
    return LoraConfig(r=plugin.rank, lora_alpha=plugin.alpha, lora_dropout=plugin.dropout,
                      target_modules=sorted(target_modules), bias="none")


def inject_lora(model: nn.Module, plugins: Mapping[str, PluginConfig], target_modules: Iterable[str]) -> nn.Module:
    """Add one peft LoRA adapter per task (adapter name = task) to ``target_modules`` (full
    module names). Afterwards only adapter weights require grad; the first task is active."""
    targets = list(target_modules)
    for task, plugin in plugins.items():
        check_plugin_config(task, plugin)
        with warnings.catch_warnings():  # a second adapter is intended here
            warnings.filterwarnings("ignore", message=".*multiple adapters.*")
            inject_adapter_in_model(lora_config(plugin, targets), model, adapter_name=task)
    for name, p in model.named_parameters():  # peft leaves only the newest adapter trainable
        p.requires_grad_(any(f".lora_{ab}.{task}." in name for task in plugins for ab in "AB"))
    set_peft_task(model, next(iter(plugins)))
    return model


def peft_layers(model: nn.Module) -> list[LoraLayer]:
    return [m for m in model.modules() if isinstance(m, LoraLayer)]


def set_peft_task(model: nn.Module, task: str | None) -> None:
    """Activate the adapter named ``task`` in every peft LoRA layer (``None``: base only).

    peft's ``set_adapter`` also flips ``requires_grad`` (active adapter trainable, others not);
    which weights train is the training stage's decision, so the flags are restored."""
    for layer in peft_layers(model):
        if task is not None and task not in layer.lora_A:
            raise InputError(f"unknown task {task!r}; this layer has LoRA adapters for {list(layer.lora_A)} (or None)")
        flags = [(p, p.requires_grad) for p in layer.parameters()]
        if task is None:
            layer.enable_adapters(False)
        else:
            layer.enable_adapters(True)
            layer.set_adapter(task)
        for p, flag in flags:
            p.requires_grad_(flag)
