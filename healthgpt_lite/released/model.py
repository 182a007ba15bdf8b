"""The released HealthGPT (M3 or L14) as a :class:`~healthgpt_lite.model.inference.HealthGPTLite`.

    gpt = ReleasedHealthGPT.from_files(llm="Phi-3-mini-4k-instruct/", clip="clip-vit-large-patch14-336/",
                                       plugins={"comprehension": "com_hlora_weights.bin"})
    gpt.answer("scan.png", "What modality is this?")
    gen = ReleasedHealthGPT.from_files(llm=..., clip=..., plugins={"generation": "gen_hlora_weights.bin"},
                                       fusion="fusion_layer_weights.bin", vqgan="last.ckpt")
    gen.generate_image("Reconstruct the image.", image="scan.png")       # RGB, 256 x 256

The network is this project's (the same ``HealthGPTModel``, H-LoRA and HVP code that trains);
everything the released model does differently comes from the files and from ``released/``:
its token ids and template (``prompt.py``), its preprocessing (``preprocess.py``), its weight
names (``convert.py``). Shapes are read from the files: the LLM's and CLIP's ``config.json``,
the plugin's rank and experts from ``lora_A`` / ``lora_route``. The scale ``alpha / r`` is not
in the files; the released scripts use alpha = 2 x rank everywhere (scale 8), the default here.

What is deliberately not copied from the released scripts (docs/PAPERS.md section 6): decoding an
image by scraping digits out of free text (here the constrained decoder writes exactly h*w image
tokens), cutting the last 8 characters of every Phi-3 answer, and L14's role-play system prompt.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import TASKS, Config, apply_overrides, build_config, validate
from ..data.text_tokenizer import END_INDEX, START_INDEX, SYSTEM_PROMPT, image_token_ids
from ..errors import InputError
from ..model.inference import HealthGPTLite
from ..model.multimodal import SequenceLayout, splice_visual_tokens
from ..model.healthgpt_model import HealthGPTModel
from .convert import ReleasedFile, load_released, plugin_shape
from .preprocess import load_processor, released_pixels
from .prompt import IMAGE_TOKEN_INDEX, prompt_ids, released_tokenizer, template_for

FILE_OF_TASK = {"comprehension": "com_hlora_weights.bin (com_hlora_weights_phi4.bin for L14)",
                "generation": "gen_hlora_weights.bin"}


class ReleasedModel(HealthGPTModel):
    """``HealthGPTModel`` in the released layout: ``<image>`` slots hold the id -200 (no row of
    the embedding), and only the tasks whose weights were loaded may run."""

    def __init__(self, llm, adapters, vision, block, layout: SequenceLayout, tasks: tuple[str, ...], n_image_tokens: int):
        # every task must name a plugin for the base class; set_task below refuses the unloaded ones;
        # the released model has no grid positions for its image tokens (1-D RoPE only, as the paper)
        super().__init__(llm, adapters, vision, block, layout, n_image_tokens,
                         plugin_of_task={t: t if t in tasks else tasks[0] for t in TASKS})
        self.loaded_tasks = tuple(tasks)
        self.set_task(tasks[0])

    def set_task(self, task: str) -> "ReleasedModel":
        loaded = getattr(self, "loaded_tasks", None)  # None while the base class initialises
        if loaded is not None and task in TASKS and task not in loaded:
            raise InputError(f"no {task} weights were loaded (this model has {', '.join(loaded)}); "
                             f"load {FILE_OF_TASK[task]} for {task}")
        return super().set_task(task)

    def embed(self, input_ids: torch.Tensor, pixels=None, features=None) -> torch.Tensor:
        slots = input_ids == IMAGE_TOKEN_INDEX  # (B, T)
        embeds = self.llm.get_input_embeddings()(input_ids.masked_fill(slots, 0))  # (B, T, d); slots overwritten below
        has_image = pixels is not None or features is not None
        visual = self.visual_tokens(pixels, features) if has_image else None  # (M, N, d)
        return splice_visual_tokens(embeds, input_ids, visual, IMAGE_TOKEN_INDEX)


class ReleasedHealthGPT(HealthGPTLite):
    """``answer`` / ``generate_image`` with the released weights, ids, template and preprocessing."""

    def __init__(self, model: ReleasedModel, tokenizer, vq, cfg: Config, template, processor,
                 system_prompt: str = SYSTEM_PROMPT):
        super().__init__(model, tokenizer, vq, cfg)
        self.template, self.processor, self.system_prompt = template, processor, system_prompt

    @classmethod
    def from_files(cls, llm: str | Path, clip: str | Path, plugins: dict[str, str | Path], fusion=None, vqgan=None,
                   preset: str = "m3", overrides=None, template: str = "auto", system_prompt: str = SYSTEM_PROMPT,
                   alpha: float | None = None, dtype: torch.dtype = torch.float32, device: str = "cpu"):
        """Build the released model from the downloaded folders and files (see the module
        docstring). ``plugins``: task -> H-LoRA file; ``fusion``: fusion_layer_weights.bin (needed
        for generation); ``vqgan``: taming ``last.ckpt`` (needed to draw images). ``preset`` and
        ``overrides`` give the VQGAN's shapes (default: HealthGPT's f8-8192)."""
        from ..lora import inject_hlora
        from ..model.llm import load_pretrained_llm
        from ..model.vocab import extend_vocabulary
        from ..vision import HVPEncoder, make_adapters
        from ..vq import load_vq_tokenizer

        unknown = sorted(set(plugins) - set(TASKS))
        if not plugins or unknown:
            raise InputError(f"plugins must map comprehension / generation to a released H-LoRA file (got {sorted(plugins)})")
        if "generation" in plugins and fusion is None:
            raise InputError("generation needs fusion_layer_weights.bin as well: its embedding and head rows are the "
                             "trained image tokens (without them every <idx_*> has the same logit)")
        for task, path in plugins.items():  # the files do not say their task; their released names do
            other = {"comprehension": "gen_", "generation": "com_"}[task]
            if Path(path).name.startswith(other):
                warnings.warn(f"{path} is loaded as the {task} plugin, but its name says "
                              f"{'generation' if other == 'gen_' else 'comprehension'}", stacklevel=2)
        files = [ReleasedFile.read(path, task) for task, path in plugins.items()]  # read first: a bad file fails fast
        shapes = {f.task: plugin_shape(f.tensors, f.path) for f in files}
        files += [ReleasedFile.read(fusion, None)] if fusion else []
        cfg = released_config(preset, overrides, llm, clip, vqgan, shapes, alpha)
        tokenizer = released_tokenizer(llm, cfg.vq.n_embed)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token  # left padding of a batch only; masked out
        chat = template_for(tokenizer, template)
        block = image_token_ids(tokenizer)
        base = load_pretrained_llm(cfg.llm, dtype)
        extend_vocabulary(base, len(tokenizer), first_new_id=block.start)  # the released resize: mean rows
        inject_hlora(base, {task: getattr(cfg.lora, task) for task in plugins}, kind="hlora")
        vision = HVPEncoder.from_pretrained(clip, cfg.vision, dtype)
        layout = SequenceLayout(IMAGE_TOKEN_INDEX, tokenizer.convert_tokens_to_ids(START_INDEX),
                                tokenizer.convert_tokens_to_ids(END_INDEX), tokenizer.convert_tokens_to_ids(chat.sep),
                                tokenizer.pad_token_id)
        model = ReleasedModel(base, make_adapters(cfg, vision.hidden_size), vision, block, layout, tuple(plugins),
                              cfg.vq.num_tokens)
        load_released(model, files)
        model.to(device=device, dtype=dtype)
        vq = load_vq_tokenizer(cfg).to(device) if vqgan else None
        return cls(model, tokenizer, vq, cfg, chat, load_processor(clip, cfg.vision.image_size), system_prompt)

    # ------------------------------------------------------------------ comprehension
    @torch.no_grad()
    def answer_batch(self, images: list, questions: list[str], max_new_tokens: int = 1024) -> list[str]:
        """Greedy answers (the released default: up to 1024 new tokens, stop at the LLM's EOS ids)."""
        self.set_task("comprehension")
        prompts = [self.prompt_ids(q, with_image=True) for q in questions]
        new = self._decode(prompts, self.pixels(images), max_new_tokens, [], self.stop_ids())
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate_codes(self, instructions: list[str], images: list) -> torch.Tensor:
        """(B, h, w) VQ codes, decoded greedily under ``ImageTokenConstraint``: exactly h*w image
        tokens after ``<start_index>`` (the released script decodes free text and scrapes digits)."""
        from ..model.decoding import ImageTokenConstraint, codes_from_tokens

        self.set_task("generation")
        with_image = [im is not None for im in images]
        if any(with_image) and not all(with_image):
            raise InputError("a batch must be all with input images or all without")
        prompts = [self.prompt_ids(t, w, generation=True) for t, w in zip(instructions, with_image)]
        n, layout = self.cfg.vq.num_tokens, self.model.layout
        constraint = ImageTokenConstraint(self.model.block, n, layout.end_turn)
        new = self._decode(prompts, self.pixels(images) if all(with_image) else None, n + 2, [constraint], layout.end_turn)
        return codes_from_tokens(new, self.model.block, self.cfg.vq.grid_size)

    @torch.no_grad()
    def generate_image(self, instruction: str, image=None) -> Image.Image:
        """An RGB image, as the released code saves it: [-1, 1] clamped, to 8 bits by truncation."""
        self.set_task("generation")  # refuses a model without the generation weights, before anything else
        if self.vq is None:
            raise InputError("drawing an image needs the VQGAN: pass vqgan= (taming's last.ckpt, f8-8192 Gumbel)")
        codes = self.generate_codes([instruction], [image])  # (1, h, w)
        rgb = self.vq.decode(codes)[0].float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()  # (R, R, 3) in [0, 1]
        return Image.fromarray((255 * rgb).astype(np.uint8), mode="RGB")

    # ------------------------------------------------------------------ the released conventions
    def prompt_ids(self, text: str, with_image: bool, generation: bool = False) -> torch.Tensor:
        """(T,) ids of the released prompt for ``text``; ``<image>`` = n_visual copies of -200."""
        prompt = self.template.prompt(text, with_image, self.system_prompt, generation)
        return prompt_ids(self.tokenizer, prompt, self.cfg.vision.num_tokens)

    def stop_ids(self) -> list[int]:
        """The LLM folder's own end-of-sequence ids (Phi-3-mini: <|endoftext|>, <|assistant|>,
        <|end|>), as the released code's ``generate`` uses them, plus the template's end of turn."""
        eos = self.model.llm.generation_config.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        return ids + [self.model.layout.end_turn] if self.model.layout.end_turn not in ids else ids

    def pixels(self, images: list) -> torch.Tensor:
        """(B, 3, S, S) in [0, 1]: mean-colour padding and CLIP's processor (``preprocess.py``)."""
        return torch.stack([released_pixels(im, self.processor) for im in images])

    def _decode(self, prompts: list[torch.Tensor], pixels, max_new_tokens: int, processors: list, stop) -> torch.Tensor:
        """Greedy decoding of a left-padded batch with the visual tokens spliced in; the new tokens (B, T_new)."""
        from transformers import LogitsProcessorList

        pad = self.tokenizer.pad_token_id
        longest = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), longest), pad, dtype=torch.long)  # (B, T)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompts):
            ids[i, longest - len(p):], mask[i, longest - len(p):] = p, 1
        device = next(self.model.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        embeds = self.model.embed(ids, pixels=None if pixels is None else pixels.to(device))  # (B, T, d)
        out = self.model.llm.generate(input_ids=ids, inputs_embeds=embeds, attention_mask=mask, do_sample=False,
                                      max_new_tokens=max_new_tokens, temperature=None, top_k=None, top_p=None,
                                      logits_processor=LogitsProcessorList(processors), pad_token_id=pad,
                                      eos_token_id=stop)
        return out[:, longest:]


def released_config(preset: str, overrides, llm: str | Path, clip: str | Path, vqgan, shapes: dict[str, tuple[int, int]],
                    alpha: float | None) -> Config:
    """``preset`` (+ ``overrides``) with every shape the downloads fix read from them."""
    from transformers import CLIPVisionConfig, Phi3Config

    cfg = build_config(preset, "full", overrides)
    for what, path in (("LLM", llm), ("CLIP", clip)):
        if not (Path(path) / "config.json").is_file():
            raise InputError(f"{path}: no config.json; the {what} must be a local Hugging Face folder "
                             f"({'Phi-3-mini-4k-instruct or phi-4' if what == 'LLM' else 'openai/clip-vit-large-patch14-336'})")
    lm = Phi3Config.from_pretrained(str(llm), local_files_only=True)
    try:
        vis = CLIPVisionConfig.from_pretrained(str(clip), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{clip}/config.json is not a CLIP config ({e})") from None
    sets = {"llm.pretrained_path": str(llm), "llm.tokenizer_path": str(llm), "llm.hidden_size": lm.hidden_size,
            "llm.num_layers": lm.num_hidden_layers, "llm.num_heads": lm.num_attention_heads,
            "llm.num_kv_heads": lm.num_key_value_heads, "llm.intermediate_size": lm.intermediate_size,
            "llm.max_position_embeddings": lm.max_position_embeddings, "vision.pretrained_path": str(clip),
            "vision.image_size": vis.image_size, "vision.patch_size": vis.patch_size, "vision.hidden_size": vis.hidden_size,
            "vision.num_layers": vis.num_hidden_layers, "vision.num_heads": vis.num_attention_heads,
            "vision.intermediate_size": vis.intermediate_size, "vq.pretrained_path": str(vqgan) if vqgan else None,
            "image_tokens.positions": "none"}  # the released model: 1-D RoPE only
    for task, (rank, experts) in shapes.items():
        sets |= {f"lora.{task}.rank": rank, f"lora.{task}.experts": experts,
                 f"lora.{task}.alpha": float(alpha or 2 * rank), f"lora.{task}.dropout": 0.0}
    apply_overrides(cfg, sets, source="the downloaded files")
    validate(cfg)
    return cfg
