"""Put task plugins into an LLM, switch between them, and find their parameters.

docs/PAPERS.md section 2: every ``nn.Linear`` of the LLM except ``lm_head`` gets one plugin per task
(for Phi3: ``qkv_proj, o_proj, gate_up_proj, down_proj`` in every decoder layer).

    llm = Phi3ForCausalLM(...)
    inject_hlora(llm, {"comprehension": cfg.lora.comprehension,
                       "generation": cfg.lora.generation}, kind=cfg.lora.kind)
    set_task(llm, "generation")            # in place; None = the base model alone
    params = plugin_parameters(llm, "generation")   # {name: Parameter}, e.g. for an optimizer

``kind`` picks how each plugin computes its update: ``"hlora"`` (fused, the method),
``"moelora"`` (the expert loop) or ``"lora"`` (plain LoRA via peft): the paper's Table 4.
After injection only plugin weights require grad (the whole model is frozen first), and the
first task in ``plugins`` is active. Saving and loading one plugin: :mod:`.plugin_io`.
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Mapping

import torch
from torch import nn

from ..config import PluginConfig
from ..config import PLUGIN_KINDS
from ..errors import InputError
from .hlora import HLoRALinear
from .layer import RoutedPlugin, TaskPluginLinear, routing_weights
from .moelora import MoELoRALinear
from .peft_lora import LoraLayer, inject_lora, set_peft_task

LAYER_CLASSES: dict[str, type[TaskPluginLinear]] = {"hlora": HLoRALinear, "moelora": MoELoRALinear}


def target_linears(model: nn.Module, exclude: Iterable[str] = ("lm_head",)) -> list[str]:
    """Full names of the ``nn.Linear`` modules to wrap: all but those whose name (or last part) is excluded."""
    exclude = set(exclude)
    return [name for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and name not in exclude and name.rsplit(".", 1)[-1] not in exclude]


def inject_hlora(model: nn.Module, plugins: Mapping[str, PluginConfig], kind: str = "hlora",
                 exclude: Iterable[str] = ("lm_head",)) -> nn.Module:
    """Wrap every ``nn.Linear`` of ``model`` (but ``exclude``) with one plugin per task, in place.

    Returns ``model``. Freezes all of its parameters first, so afterwards exactly the plugins'
    weights require grad. Raises ``InputError`` for an unknown kind, no plugins, no linears,
    or a model that already has plugins."""
    if kind not in PLUGIN_KINDS:
        raise InputError(f"unknown plugin kind {kind!r}; choose one of {PLUGIN_KINDS}")
    if not plugins or not all(isinstance(t, str) and t for t in plugins):
        raise InputError(f"plugins must map task names to PluginConfig, got {dict(plugins)!r}")
    if wrapped_layers(model):
        raise InputError(f"{type(model).__name__} already has task plugins; inject once, with every task")
    targets = target_linears(model, exclude)
    if not targets:
        raise InputError(f"{type(model).__name__} has no nn.Linear to wrap (excluding {tuple(exclude)})")
    model.requires_grad_(False)
    if kind == "lora":
        return inject_lora(model, plugins, targets)
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LAYER_CLASSES[kind](getattr(parent, child), plugins))
    return model


def wrapped_layers(model: nn.Module) -> dict[str, nn.Module]:
    """``{module name: layer}`` of every layer holding task plugins (ours or peft's)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, (TaskPluginLinear, LoraLayer))}


def _first_layer(model: nn.Module) -> nn.Module:
    layers = wrapped_layers(model)
    if not layers:
        raise InputError(f"{type(model).__name__} has no task plugins; call inject_hlora(model, ...) first")
    return next(iter(layers.values()))


def plugin_kind(model: nn.Module) -> str:
    """``"hlora"``, ``"moelora"`` or ``"lora"``: what ``inject_hlora`` put into ``model``."""
    layer = _first_layer(model)
    return next((k for k, cls in LAYER_CLASSES.items() if type(layer) is cls), "lora")


def plugin_configs(model: nn.Module) -> dict[str, PluginConfig]:
    """Each task's plugin shape as injected (plain LoRA reports ``experts=1``)."""
    layer = _first_layer(model)
    if isinstance(layer, TaskPluginLinear):
        return {task: p.config for task, p in layer.plugins.items()}
    return {task: PluginConfig(rank=layer.r[task], experts=1, alpha=float(layer.lora_alpha[task]),
                               dropout=getattr(layer.lora_dropout[task], "p", 0.0)) for task in layer.lora_A}


def layer_shapes(model: nn.Module) -> dict[str, list[int]]:
    """``{module name: [d_in, d_out]}`` of every wrapped layer."""
    shapes = {}
    for name, layer in wrapped_layers(model).items():
        base = layer.base if isinstance(layer, TaskPluginLinear) else layer.get_base_layer()
        shapes[name] = [base.in_features, base.out_features]
    return shapes


def set_task(model: nn.Module, task: str | None) -> None:
    """Activate ``task``'s plugin in every wrapped layer of ``model`` (``None``: base only).

    A hard switch in place: no weights move, ``requires_grad`` is left as it is."""
    layer = _first_layer(model)
    tasks = list(plugin_configs(model))
    if task is not None and task not in tasks:
        raise InputError(f"unknown task {task!r}; {type(model).__name__} has plugins for {tasks} (or None)")
    if isinstance(layer, TaskPluginLinear):
        for m in model.modules():
            if isinstance(m, TaskPluginLinear):
                m.set_task(task)
    else:
        set_peft_task(model, task)


def active_task(model: nn.Module) -> str | None:
    layer = _first_layer(model)
    if isinstance(layer, TaskPluginLinear):
        return layer.active_task
    return None if layer.disable_adapters else layer.active_adapters[0]


def plugin_parameters(model: nn.Module, task: str) -> dict[str, nn.Parameter]:
    """``{parameter name: parameter}`` of ``task``'s plugin in every wrapped layer."""
    tasks = list(plugin_configs(model))
    if task not in tasks:
        raise InputError(f"unknown task {task!r}; {type(model).__name__} has plugins for {tasks}")
    marks = (f".plugins.{task}.", f".lora_A.{task}.", f".lora_B.{task}.")
    return {name: p for name, p in model.named_parameters() if any(m in name for m in marks)}


def count_plugin_parameters(model: nn.Module, task: str) -> int:
    """Number of weights in ``task``'s plugin (works on the ``meta`` device: nothing allocated)."""
    return sum(p.numel() for p in plugin_parameters(model, task).values())


@contextlib.contextmanager
def recorded_router_weights(model: nn.Module, task: str | None = None) -> Iterator[dict[str, torch.Tensor]]:
    """Record the router of ``task``'s plugins (default: the active task) while inside the block:

        with recorded_router_weights(model) as weights:
            model(input_ids=ids)
        weights["model.layers.0.mlp.down_proj"]        # (..., k) softmax weights of the last forward

    Forward hooks on each plugin's router, removed on exit: the plugins themselves hold no
    recording state, and nothing is recorded (or slowed down) outside the block."""
    task = task or active_task(model)
    weights: dict[str, torch.Tensor] = {}
    hooks = []
    for name, layer in wrapped_layers(model).items():
        plugin = layer.plugins[task] if isinstance(layer, TaskPluginLinear) else None
        if isinstance(plugin, RoutedPlugin):
            def keep(_module, _inputs, logits, name=name):
                weights[name] = routing_weights(logits.detach())
            hooks.append(plugin.router.register_forward_hook(keep))
    try:
        yield weights
    finally:
        for h in hooks:
            h.remove()
