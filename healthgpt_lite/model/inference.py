"""``HealthGPTLite``: the model a student talks to.

    gpt = HealthGPTLite.from_artifacts("artifacts")           # after training (make reproduce)
    gpt.answer("scan.dcm", "How many lesions are there?")     # comprehension: text
    gpt.generate_image("Convert this CT image into an MRI image.", image="ct.png")  # PIL image
    gpt.generate_image("Generate an X-ray image that matches this report: ...")      # no input image

Images go through :func:`healthgpt_lite.data.load_image` (PNG, JPEG, DICOM, bytes, PIL), so
real scans work as well as phantoms; bad input raises ``InputError``. ``set_task`` switches the
plugin, adapter and ViT layer in place; ``answer`` and ``generate_image`` do it for you.
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ..config import Config, config_from_dict
from ..data.io import load_image
from ..errors import InputError
from .multimodal import encode_example, user_text
from .healthgpt_model import HealthGPTModel


class HealthGPTLite:
    def __init__(self, model: HealthGPTModel, tokenizer, vq, cfg: Config):
        self.model, self.tokenizer, self.vq, self.cfg = model.eval(), tokenizer, vq, cfg

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_artifacts(cls, artifacts_dir: str | Path = "artifacts", profile: str | None = None,
                       preset: str | None = None) -> "HealthGPTLite":
        """The model after all three stages, as trained into ``artifacts_dir`` (the config is read
        from the newest complete stage-3 artifact matching ``profile``/``preset``)."""
        from ..training.stages import ORDER

        cfg = _find_config(Path(artifacts_dir), profile, preset)
        return cls.from_config(cfg, artifacts_dir, stages=ORDER)

    @classmethod
    def from_config(cls, cfg: Config, artifacts_dir=None, stages: tuple[str, ...] = ()) -> "HealthGPTLite":
        """The model after ``stages`` (none: the untrained model) for an explicit config."""
        from ..data.text_tokenizer import tokenizer_for
        from ..training.pipeline import model_after
        from ..vq import load_vq_tokenizer

        model = model_after(cfg, list(stages), artifacts_dir, with_vision=True)
        return cls(model, tokenizer_for(cfg), load_vq_tokenizer(cfg, artifacts_dir), cfg)

    def set_task(self, task: str) -> "HealthGPTLite":
        self.model.set_task(task)
        return self

    # ------------------------------------------------------------------ comprehension
    @torch.no_grad()
    def answer(self, image, question: str, max_new_tokens: int = 64) -> str:
        return self.answer_batch([image], [question], max_new_tokens)[0]

    @torch.no_grad()
    def answer_batch(self, images: list, questions: list[str], max_new_tokens: int = 64) -> list[str]:
        self.set_task("comprehension")
        pixels = self.pixels(images)
        prompts = [encode_example(self.tokenizer, user_text(q, True), self.cfg.vision.num_tokens,
                                  self.cfg.llm.max_position_embeddings)["input_ids"] for q in questions]
        new = self._generate(prompts, pixels, max_new_tokens)
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip() for row in new]

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate_image(self, instruction: str, image=None, temperature: float = 0.0, top_k: int | None = None,
                       seed: int | None = None) -> Image.Image:
        """One image for ``instruction`` (and ``image``, for conversion / super-resolution).
        ``temperature`` 0 decodes greedily; above 0 it samples (from the ``top_k`` likeliest codes)."""
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        codes = self.generate_codes([instruction], [image], temperature, top_k, generator)
        return to_pil(self.vq.decode(codes)[0])

    @torch.no_grad()
    def generate_codes(self, instructions: list[str], images: list, temperature: float = 0.0,
                       top_k: int | None = None, generator: torch.Generator | None = None,
                       guide_instructions: list[str] | None = None, guidance: float = 0.0) -> torch.Tensor:
        """(B, h, w) VQ codes; every row decodes, whatever the model's state (see image_decoding.py).
        ``guide_instructions`` + ``guidance``: steer away from what each guide prompt would draw."""
        from .image_decoding import decode_image

        if temperature < 0 or (top_k is not None and top_k < 1) or guidance < 0:
            raise InputError(f"temperature={temperature} and guidance={guidance} must be >= 0 and top_k={top_k} "
                             "None or >= 1")
        guided = guidance > 0 and guide_instructions is not None
        if guided and len(guide_instructions) != len(instructions):
            raise InputError(f"{len(guide_instructions)} guide instructions for {len(instructions)} instructions")
        texts, all_images = (instructions + guide_instructions, images * 2) if guided else (instructions, images)
        ids, mask, pixels = self._generation_prompts(texts, all_images)
        device = next(self.model.parameters()).device
        embeds = self.model.embed(ids.to(device), pixels=None if pixels is None else pixels.to(device))
        codes = decode_image(self.model, embeds, mask.to(device), temperature, top_k, generator,
                             guidance if guided else 0.0)  # (B, h*w)
        return codes.reshape(-1, self.cfg.vq.grid_size, self.cfg.vq.grid_size)

    @torch.no_grad()
    def teacher_forced_codes(self, instructions: list[str], images: list, target_codes: torch.Tensor) -> torch.Tensor:
        """(B, h, w): the most likely code at every cell *given the true codes before it*.

        One forward pass over prompt + target, as in training. The gap between the image these
        codes decode to and the one :meth:`generate_codes` writes on its own is exposure bias:
        what the model loses by building on its own mistakes."""
        from .multimodal import collate

        self.set_task("generation")
        grid, n = self.cfg.vq.grid_size, self.cfg.vq.num_tokens
        examples = [encode_example(self.tokenizer, user_text(t, im is not None), self.cfg.vision.num_tokens,
                                   self.cfg.llm.max_position_embeddings, image_codes=c, generation=True)
                    for t, im, c in zip(instructions, images, target_codes)]
        batch = collate(examples, self.tokenizer.pad_token_id)
        pixels = self.pixels(images) if images[0] is not None else None
        device = next(self.model.parameters()).device
        logits = self.model(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                            pixels=None if pixels is None else pixels.to(device)).logits  # (B, T, V)
        first = (batch["labels"] != -100).int().argmax(1)  # (B,) first target position
        rows = torch.arange(len(examples))[:, None]
        cols = (first - 1)[:, None] + torch.arange(n)[None]  # (B, n) positions that predict codes 0..n-1
        block = self.model.block
        codes = logits[rows, cols][..., block.first_idx:block.first_idx + block.n_codes].argmax(-1)  # (B, n)
        return codes.reshape(-1, grid, grid).cpu()

    # ------------------------------------------------------------------ shared
    def pixels(self, images: list) -> torch.Tensor:
        """Images (paths, bytes, PIL, arrays or tensors) as the (B, 3, H, W) input of the ViT."""
        return torch.stack([load_image(im, size=self.cfg.vision.image_size) for im in images])  # (B, 3, H, W)

    def _generation_prompts(self, instructions: list[str], images: list):
        self.set_task("generation")
        with_image = [im is not None for im in images]
        if any(with_image) and not all(with_image):
            raise InputError("a batch must be all with input images or all without")
        pixels = self.pixels(images) if all(with_image) else None
        prompts = [encode_example(self.tokenizer, user_text(t, w), self.cfg.vision.num_tokens,
                                  self.cfg.llm.max_position_embeddings, generation=True)["input_ids"]
                   for t, w in zip(instructions, with_image)]
        ids, mask = left_pad(prompts, self.tokenizer.pad_token_id)
        return ids, mask, pixels

    def _generate(self, prompts: list[torch.Tensor], pixels, max_new_tokens: int) -> torch.Tensor:
        """Left-padded batched text generation from prompts with spliced visual tokens; returns
        the new tokens (B, T_new)."""
        pad = self.tokenizer.pad_token_id
        ids, mask = left_pad(prompts, pad)
        device = next(self.model.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        embeds = self.model.embed(ids, pixels=None if pixels is None else pixels.to(device))
        out = self.model.llm.generate(
            input_ids=ids, inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
            do_sample=False, temperature=None, top_k=None, top_p=None, pad_token_id=pad,
            eos_token_id=self.model.layout.end_turn)
        return out[:, ids.shape[1]:]


def left_pad(prompts: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of different lengths -> ids (B, T) padded on the left, and their attention mask."""
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, longest - len(p):], mask[i, longest - len(p):] = p, 1
    return ids, mask


def to_pil(image: torch.Tensor) -> Image.Image:
    """(C, H, W) in [0, 1] -> an 8-bit grayscale PIL image."""
    gray = image.detach().float().cpu().clamp(0, 1).mean(0)
    return Image.fromarray((gray.numpy() * 255).round().astype("uint8"), mode="L")


def _find_config(artifacts_dir: Path, profile: str | None, preset: str | None) -> Config:
    import json

    candidates = []
    for meta_path in sorted(artifacts_dir.glob("stage3_generation-*/meta.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a damaged artifact is never taken for a trained model
        if (profile is None or meta["profile"] == profile) and (preset is None or meta["preset"] == preset):
            candidates.append((meta_path.stat().st_mtime, meta))
    if not candidates:
        raise InputError(f"{artifacts_dir}: no trained HealthGPT here (no complete stage-3 artifact"
                         f"{' for profile ' + repr(profile) if profile else ''}); train one with `make reproduce`")
    return config_from_dict(max(candidates, key=lambda c: c[0])[1]["config"])
