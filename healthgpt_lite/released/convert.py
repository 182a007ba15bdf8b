"""The released weight files -> this project's parameter names, strictly.

The released H-LoRA files are state dicts of the upstream model object (a peft wrapper around
a LLaVA-Phi3 model), so their keys read::

    base_model.model.model.layers.7.self_attn.qkv_proj.lora_A.weight     -> llm.model.layers.7.self_attn.qkv_proj.plugins.<task>.A.weight
    base_model.model.model.layers.7.mlp.down_proj.lora_route.weight     -> llm.model.layers.7.mlp.down_proj.plugins.<task>.router.weight
    base_model.model.model.mm_projector.0.weight                        -> adapters.<task>.0.weight
    base_model.model.model.embed_tokens.weight  (fusion_layer_weights)  -> llm.model.embed_tokens.weight
    base_model.model.lm_head.weight             (fusion_layer_weights)  -> llm.lm_head.weight
    base_model.model.model.layers.7.self_attn.qkv_proj.weight (a base)  -> llm.model.layers.7.self_attn.qkv_proj.base.weight

``<task>`` is the task the file is loaded for (comprehension for ``com_hlora_weights*.bin``,
generation for ``gen_hlora_weights.bin``): the files do not say it themselves. Keys without the
``base_model.model.`` prefix (a file saved from the inner model) map the same way.

Loading is strict, unlike the released code (``load_state_dict(strict=False)``, unexpected keys
only printed): every key of a file must land on a parameter of the same shape, and every
parameter the file is meant to provide (the task's plugin in every layer and its adapter; the
embeddings and head for a fusion file) must be in it. Otherwise an ``InputError`` lists every
unmatched, missing and mis-shaped key, grouped by layer pattern, and nothing is loaded.

Files are read with ``torch.load(weights_only=True)`` (``.bin``/``.pt``) or as safetensors.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..artifacts import read_safetensors, read_torch_weights
from ..errors import InputError
from ..lora.hlora import UPSTREAM_NAMES

PEFT_PREFIX = "base_model.model."  # the upstream peft wrapper around the LLaVA model
LORA_KEY = re.compile(r"(?P<layer>.+)\.(?P<part>lora_A|lora_B|lora_route)\.weight")
PROJECTOR_KEY = re.compile(r"model\.mm_projector\.(?P<rest>\d+\.(weight|bias))")
VISION_PREFIX = "model.vision_tower.vision_tower."
FUSION_NAMES = ("llm.model.embed_tokens.weight", "llm.lm_head.weight")


def read_released(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a released weight file (``.bin`` / ``.pt`` via ``torch.load(weights_only=True)``,
    or ``.safetensors``), keys as saved."""
    path = Path(path)
    return read_safetensors(path) if path.suffix == ".safetensors" else read_torch_weights(path)


def project_name(key: str, task: str) -> str:
    """The name an upstream key has in this project's ``ReleasedModel`` (before the ``.base``
    of a wrapped linear layer, which :func:`resolve` adds)."""
    name = key.removeprefix(PEFT_PREFIX)
    if (m := PROJECTOR_KEY.fullmatch(name)):
        return f"adapters.{task}.{m['rest']}"
    if (m := LORA_KEY.fullmatch(name)):
        return f"llm.{m['layer']}.plugins.{task}.{UPSTREAM_NAMES[m['part']]}.weight"
    if name.startswith(VISION_PREFIX):
        return "vision.clip." + name[len(VISION_PREFIX):]
    return "llm." + name


def resolve(key: str, task: str, own: dict[str, torch.Tensor]) -> str | None:
    """``project_name``, with ``.base`` inserted for the frozen weight of a wrapped linear layer;
    ``None`` when the model has no such parameter."""
    name = project_name(key, task)
    if name in own:
        return name
    head, _, leaf = name.rpartition(".")
    wrapped = f"{head}.base.{leaf}"
    return wrapped if wrapped in own else None


def plugin_shape(tensors: dict[str, torch.Tensor], path: Path) -> tuple[int, int]:
    """(total rank r*k, experts k) of the H-LoRA plugin in a released file, the same in every layer."""
    ranks = {t.shape[0] for k, t in tensors.items() if k.endswith(".lora_A.weight")}
    experts = {t.shape[0] for k, t in tensors.items() if k.endswith(".lora_route.weight")}
    if not ranks or not experts:
        raise InputError(f"{path}: no H-LoRA weights (no '*.lora_A.weight' / '*.lora_route.weight' keys); "
                         "is this com_hlora_weights.bin / gen_hlora_weights.bin, or the fusion layer file?")
    if len(ranks) > 1 or len(experts) > 1:
        raise InputError(f"{path}: the H-LoRA layers disagree on their rank {sorted(ranks)} or experts {sorted(experts)}")
    (rank,), (k,) = ranks, experts
    if rank % k:
        raise InputError(f"{path}: rank {rank} (lora_A rows) is not a multiple of the {k} experts (lora_route rows)")
    return rank, k


def expected_names(model: nn.Module, task: str | None) -> list[str]:
    """What a file for ``task`` must provide: the task's plugin and adapter (``None``: a fusion
    file, the embeddings and the output head)."""
    own = dict(model.named_parameters())
    if task is None:
        return list(FUSION_NAMES)
    return [n for n in own if f".plugins.{task}." in n or n.startswith(f"adapters.{task}.")]


@dataclass
class ReleasedFile:
    """One released weight file, read: the task it is loaded for (``None``: the fusion layer)."""

    path: Path
    task: str | None
    tensors: dict[str, torch.Tensor]

    @classmethod
    def read(cls, path: str | Path, task: str | None) -> "ReleasedFile":
        return cls(Path(path), task, read_released(path))

    @property
    def role(self) -> str:
        return "the fusion layer" if self.task is None else f"the {self.task} plugin"


def load_released(model: nn.Module, files: list[ReleasedFile]) -> dict[str, int]:
    """Copy the released files into ``model``, all or nothing. Returns ``{file: tensors loaded}``."""
    own = dict(model.state_dict())
    planned, problems = [], []
    for f in files:
        mapping, report = match_keys(f.tensors, f.task or "fusion", own, expected_names(model, f.task))
        if report:
            problems.append(f"{f.path} (loaded as {f.role}):\n{report}")
        planned.append((f, mapping))
    if problems:
        raise InputError("the released weights do not fit this model; nothing was loaded.\n" + "\n".join(problems)
                         + "\n" + vocabulary_hint(model))
    with torch.no_grad():
        for f, mapping in planned:
            for key, name in mapping.items():
                own[name].copy_(f.tensors[key])  # cast to the model's dtype (the files are fp16/bf16)
    return {str(f.path): len(mapping) for f, mapping in planned}


def match_keys(tensors: dict[str, torch.Tensor], task: str, own: dict[str, torch.Tensor],
               expected: list[str]) -> tuple[dict[str, str], str]:
    """{file key: parameter name} and a report of every unmatched, missing and mis-shaped key ('' if none)."""
    mapping, unmatched, misshaped, seen = {}, [], [], set()
    for key, t in tensors.items():
        name = resolve(key, task, own)
        if name is None:
            unmatched.append(key)
            continue
        seen.add(name)
        if tuple(own[name].shape) != tuple(t.shape):
            misshaped.append(f"{key} {tuple(t.shape)} -> {name} {tuple(own[name].shape)}")
        else:
            mapping[key] = name
    missing = [n for n in expected if n not in seen]
    parts = [(f"{len(unmatched)} key(s) of the file match no parameter of this model", unmatched),
             (f"{len(missing)} parameter(s) the file should provide are missing", missing),
             (f"{len(misshaped)} key(s) have another shape here (file -> model)", misshaped)]
    return mapping, "\n".join(f"  {title}:\n" + grouped(keys) for title, keys in parts if keys)


def grouped(keys: list[str]) -> str:
    """Every key, with layer numbers folded: ``model.layers.{0..31}.mlp.down_proj.lora_A.weight (32 keys)``."""
    groups: dict[str, list[int]] = defaultdict(list)
    for key in keys:
        m = re.search(r"\.(\d+)\.", key)
        if m is None:
            groups[key].append(-1)
        else:  # the same layer number wherever it appears (a key and the parameter it maps to)
            groups[key.replace(f".{m[1]}.", ".{n}.")].append(int(m[1]))
    lines = []
    for pattern, numbers in groups.items():
        if len(numbers) == 1:
            lines.append(pattern.replace("{n}", str(numbers[0])))
        else:
            ints = sorted(numbers)
            span = f"{ints[0]}..{ints[-1]}" if ints == list(range(ints[0], ints[-1] + 1)) else ",".join(map(str, ints))
            lines.append(f"{pattern.replace('{n}', '{' + span + '}')} ({len(numbers)} keys)")
    return "\n".join(f"    {line}" for line in lines)


def vocabulary_hint(model: nn.Module) -> str:
    rows = model.llm.get_input_embeddings().weight.shape[0]
    block = model.block
    return (f"This model: {rows} embedding rows = {block.start} tokenizer entries + {block.n_codes + 3} image tokens "
            f"(<start_index>, {block.n_codes} <idx_*>, <end_index>, <pixel_newline>; HealthGPT-M3: 32011 + 8195 = 40206). "
            "A rank or expert count that differs means the file is for the other task; a row count that differs, "
            "another base LLM or codebook size (vq.n_embed).")
