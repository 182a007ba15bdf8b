"""H-LoRA (docs/PAPERS.md section 2): task plugins in every linear layer of the LLM, and its baselines.

* :class:`HLoRALinear`: fused H-LoRA (k experts in one A and one B, a per-token router).
* :class:`MoELoRALinear`: the same function as a loop over experts (the paper's MoELoRA).
* :func:`inject_lora`: plain LoRA through peft (the paper's LoRA baseline).
* :func:`inject_hlora` / :func:`set_task` / :func:`plugin_parameters`: put plugins into an
  LLM (``kind="hlora" | "moelora" | "lora"``), switch tasks in place, find a plugin's weights;
  :func:`recorded_router_weights` reads the routers during a forward.
* :func:`save_plugin` / :func:`load_plugin`: one task's plugin as safetensors, checked on load.
"""
from .hlora import HLoRALinear, HLoRAPlugin
from .inject import (active_task, count_plugin_parameters, inject_hlora, layer_shapes, plugin_configs, plugin_kind,
                     plugin_parameters, recorded_router_weights, set_task, target_linears, wrapped_layers)
from .moelora import MoELoRALinear, MoELoRAPlugin
from .peft_lora import inject_lora, lora_config
from .plugin_io import load_plugin, read_plugin_metadata, save_plugin

__all__ = ["HLoRALinear", "HLoRAPlugin", "MoELoRALinear", "MoELoRAPlugin", "active_task", "count_plugin_parameters",
           "inject_hlora", "inject_lora", "layer_shapes", "load_plugin", "lora_config",
           "plugin_configs", "plugin_kind", "plugin_parameters", "read_plugin_metadata", "recorded_router_weights",
           "save_plugin", "set_task", "target_linears", "wrapped_layers"]
