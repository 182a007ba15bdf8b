"""HealthGPT as one ``nn.Module``: frozen ViT (HVP) -> task adapter -> LLM with task plugins.

    pixels (B, 3, H, W) --ViT, layer of the task--> (B, N, D_vis) --adapter of the task--> (B, N, d)
    prompt ids with N <image> slots --embed + splice--> (B, T, d) --Phi3 + active H-LoRA--> logits
    (+ the grid position of the next code at every code-predicting position, ``image_positions.py``)

``set_task("comprehension" | "generation")`` is the hard, non-learned switch of the paper: it
picks the H-LoRA plugin, the adapter and the ViT layer together, in place (the released code
reloads the whole model to switch task; docs/PAPERS.md section 2). A model built without plugins
(the LLaVA-style recipe of Qilin-Med-VL, ``training/qilin_stages.py``) switches only the adapter
and the ViT layer.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.text_tokenizer import ImageTokenIds
from ..config import TASKS
from ..errors import InputError
from .image_positions import ImagePositions
from .multimodal import IGNORE_INDEX, SequenceLayout, splice_visual_tokens



class HealthGPTModel(nn.Module):
    def __init__(self, llm: nn.Module, adapters: nn.ModuleDict, vision: nn.Module | None,
                 block: ImageTokenIds, layout: SequenceLayout, n_image_tokens: int,
                 plugin_of_task: dict[str, str] | None = None, image_positions: ImagePositions | None = None):
        from ..lora import wrapped_layers

        super().__init__()
        self.llm, self.adapters, self.vision = llm, adapters, vision
        self.image_positions = image_positions  # None: 1-D RoPE only (the paper's design)
        self.n_image_tokens = n_image_tokens  # h*w codes per generated image
        self.has_plugins = bool(wrapped_layers(llm))  # False: a LLaVA-style model (no H-LoRA)
        self.block, self.layout = block, layout
        # which H-LoRA plugin serves each task: normally its own; one shared plugin for ablations
        self.plugin_of_task = plugin_of_task or {t: t for t in TASKS}
        self.task = "comprehension"
        self.set_task("comprehension")

    def set_task(self, task: str) -> "HealthGPTModel":
        from ..lora import set_task

        if task not in TASKS:
            raise InputError(f"unknown task {task!r}; choose one of {TASKS}")
        if self.has_plugins:
            set_task(self.llm, self.plugin_of_task[task])
        self.task = task
        return self

    def visual_tokens(self, pixels: torch.Tensor | None = None, features: torch.Tensor | None = None) -> torch.Tensor:
        """(M, N, d) projected visual tokens of the current task, from pixels or cached features."""
        if features is None:
            if self.vision is None:
                raise ValueError("this model was built without its vision encoder; pass cached features")
            features = self.vision(pixels, self.task)  # (M, N, D_vis): hidden_states[layer of the task]
        adapter = self.adapters[self.task]
        return adapter(features.to(next(adapter.parameters()).dtype))  # (M, N, d)

    def embed(self, input_ids: torch.Tensor, pixels=None, features=None) -> torch.Tensor:
        embeds = self.llm.get_input_embeddings()(input_ids)  # (B, T, d)
        has_image = pixels is not None or features is not None
        visual = self.visual_tokens(pixels, features) if has_image else None  # (M, N, d)
        if visual is not None and self.task == "generation" and self.image_positions is not None \
                and self.image_positions.on_input:
            visual = visual + self.image_positions.input_table(visual.shape[1]).to(visual.dtype)
        embeds = splice_visual_tokens(embeds, input_ids, visual, self.layout.image)
        if self.image_positions is not None:
            embeds = self.image_positions.add_to(embeds, input_ids, self.layout.start)
        return embeds

    def code_embeddings(self, codes: torch.Tensor, predicts: int) -> torch.Tensor:
        """(B,) VQ codes as input embeddings (B, d) at the position that predicts code ``predicts``
        (what :func:`~healthgpt_lite.model.image_decoding.decode_image` feeds back each step)."""
        embeds = self.llm.get_input_embeddings()(self.block.code_to_token(codes))  # (B, d)
        if self.image_positions is not None and predicts < self.image_positions.n_positions:
            embeds = embeds + self.image_positions.at(predicts).to(embeds.dtype)
        return embeds

    def forward(self, input_ids, attention_mask=None, labels=None, pixels=None, features=None):
        embeds = self.embed(input_ids, pixels, features)
        return self.llm(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, use_cache=False)

    def loss(self, input_ids, labels, attention_mask=None, pixels=None, features=None) -> torch.Tensor:
        """The training loss: next-token cross-entropy, mean over the labelled positions (what
        ``forward(..., labels).loss`` returns), with the LM head applied to those positions only.

        ``forward`` projects every position onto the vocabulary, (B, T, d) -> (B, T, V), then
        ignores the unlabelled ones (visual tokens, prompts, padding): in stage-3 comprehension
        that made a CPU step about a quarter slower (``bench stages``; README "Where a training
        step's time goes").
        """
        embeds = self.embed(input_ids, pixels, features)
        hidden = self.llm.get_decoder()(inputs_embeds=embeds, attention_mask=attention_mask,
                                        use_cache=False).last_hidden_state  # (B, T, d)
        targets = labels[:, 1:]  # position t predicts token t + 1
        labelled = targets != IGNORE_INDEX  # (B, T - 1)
        logits = self.llm.get_output_embeddings()(hidden[:, :-1][labelled])  # (K, V), K labelled positions
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()  # the softmax in float32, as transformers' loss does
        return nn.functional.cross_entropy(logits, targets[labelled])

    # ------------------------------------------------------------------ what trains (stages.py)
    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Named groups of parameters the stage table refers to (see training/stages.py)."""
        from ..lora import plugin_parameters

        emb, head = self.llm.get_input_embeddings().weight, self.llm.get_output_embeddings().weight

        def plugin(task: str) -> list[nn.Parameter]:
            return list(plugin_parameters(self.llm, self.plugin_of_task[task]).values()) if self.has_plugins else []

        plugin_ids = {id(p) for task in TASKS for p in plugin(task)}
        return {
            "abstract_adapter": list(self.adapters["comprehension"].parameters()),
            "concrete_adapter": list(self.adapters["generation"].parameters()),
            "comp_plugin": plugin("comprehension"),
            "gen_plugin": plugin("generation"),
            "embeddings": [emb],
            "head": [head],
            "image_rows": [emb, head],  # trained through a row mask: only the new image-token rows
            "image_positions": list(self.image_positions.parameters()) if self.image_positions else [],
            "llm": [p for p in self.llm.parameters() if id(p) not in plugin_ids],  # a full fine-tune
        }

    def trainable_state(self, groups: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """The tensors of ``groups`` by their parameter names (what a stage artifact stores)."""
        wanted = {id(p) for g in groups for p in self.parameter_groups()[g]}
        return {n: p.detach().clone() for n, p in self.named_parameters() if id(p) in wanted}
