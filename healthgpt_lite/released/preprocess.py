"""Images as the released model sees them: padded to a square with CLIP's mean colour, then
CLIP's own image processor (LLaVA's ``image_aspect_ratio="pad"``).

    square = pad_to_square(image, fill=round-down(255 * CLIP mean)) = (122, 116, 104)
    pixels = CLIP processor: resize the short side to 336 (PIL bicubic), centre-crop 336, / 255

This project's own pipeline pads with black and resizes with torch's bicubic (``data/io.py``);
a model trained on mean-colour padding sees a black border as content, so the released model
gets its own preprocessing. The processor is read from the CLIP folder's
``preprocessor_config.json`` and run with its PIL backend, as the released code's
``CLIPImageProcessor`` was. Its normalisation (``(x - mean) / std``) is left to
:class:`~healthgpt_lite.vision.HVPEncoder`, which applies the same constants; a folder with other
constants is refused rather than normalised twice.
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ..data.io import ImageSource, open_rgb
from ..errors import InputError
from ..vision.encoder import CLIP_MEAN, CLIP_STD


def load_processor(clip_path: str | Path, image_size: int):
    """CLIP's image processor from the CLIP folder (PIL backend), checked against the encoder."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    path = Path(clip_path)
    if not (path / "preprocessor_config.json").is_file():
        raise InputError(f"{path}: no preprocessor_config.json (CLIP's image processor); download the whole "
                         "openai/clip-vit-large-patch14-336 folder")
    try:
        processor = CLIPImageProcessorPil.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path}/preprocessor_config.json is not a CLIP image processor config ({e})") from None
    crop = processor.crop_size if processor.do_center_crop else processor.size
    side = crop.get("height") or crop.get("shortest_edge")
    if side != image_size:
        raise InputError(f"{path}: the image processor makes {side} px images but the vision encoder takes {image_size}")
    for what, got, ours in (("image_mean", processor.image_mean, CLIP_MEAN), ("image_std", processor.image_std, CLIP_STD)):
        if any(abs(a - b) > 1e-6 for a, b in zip(got, ours)):
            raise InputError(f"{path}: {what} {list(got)} differs from OpenAI CLIP's {list(ours)}, which the encoder applies")
    return processor


def pad_to_square(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Centre ``image`` on a square canvas of colour ``fill`` (the longer side stays)."""
    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    canvas = Image.new(image.mode, (side, side), fill)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def released_pixels(src: ImageSource, processor) -> torch.Tensor:
    """``(3, S, S)`` in [0, 1]: ``src`` padded with the mean colour and through CLIP's processor
    (rescaled, not normalised: the encoder normalises)."""
    fill = tuple(int(m * 255) for m in processor.image_mean)  # (122, 116, 104) for OpenAI CLIP
    square = pad_to_square(open_rgb(src), fill)
    return processor(images=square, do_normalize=False, return_tensors="pt")["pixel_values"][0].clamp(0, 1)
