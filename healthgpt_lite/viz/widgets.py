"""The demo of notebook 09: plain functions first, ipywidgets on top.

Every widget calls a plain function that the notebook also calls once directly, because an
error inside an ``ipywidgets.interact`` callback does not fail a papermill run (docs/ARCHITECTURE.md section 6).
"""
from __future__ import annotations

from pathlib import Path

import torch
from matplotlib.figure import Figure

from ..data.io import load_image
from .plots import SCAN, _as_2d

CONVERSIONS = {"CT -> MRI": ("ct", "Convert this CT image into an MRI image.", "mri"),
               "MRI -> CT": ("mri", "Convert this MRI image into a CT image.", "ct")}


def scan_path(data_dir: Path, patient: str, modality: str, low_res: bool = False) -> Path:
    return Path(data_dir) / "images" / f"{patient}_{modality}{'_lr' if low_res else ''}.png"


def ask(gpt, data_dir: Path, patient: str, modality: str, question: str) -> str:
    """Answer a free question about one scan of one patient."""
    return gpt.answer(scan_path(data_dir, patient, modality), question)


def _panels(images: list, titles: list[str]) -> Figure:
    fig = Figure(figsize=(2.4 * len(images), 2.6))
    for i, (img, title) in enumerate(zip(images, titles)):
        ax = fig.add_subplot(1, len(images), i + 1)
        ax.imshow(_as_2d(img), **SCAN), ax.set_title(title), ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def _generate(gpt, instruction: str, image: Path) -> torch.Tensor:
    return gpt.vq.decode(gpt.generate_codes([instruction], [image]))[0]  # (3, H, W) in [0, 1]


def convert(gpt, data_dir: Path, patient: str, direction: str) -> Figure:
    """CT->MRI or MRI->CT for one patient: input, generated, real target."""
    source, instruction, target = CONVERSIONS[direction]
    generated = _generate(gpt, instruction, scan_path(data_dir, patient, source))
    return _panels([load_image(scan_path(data_dir, patient, source)), generated, load_image(scan_path(data_dir, patient, target))],
                   [f"input ({source.upper()})", "generated", f"real {target.upper()}"])


def draw_from_report(gpt, report: str, n: int = 4, temperature: float = 1.0, top_k: int | None = None,
                     seed: int = 0) -> Figure:
    """Report->X-ray: the greedy image beside ``n`` samples (one-to-many: sampling draws anatomy)."""
    instruction = f"Generate an X-ray image that matches this report: {report}"
    greedy = gpt.vq.decode(gpt.generate_codes([instruction], [None]))[0]
    generator = torch.Generator().manual_seed(seed)
    drawn = gpt.vq.decode(gpt.generate_codes([instruction] * n, [None] * n, temperature, top_k, generator))
    return _panels([greedy, *drawn], ["greedy", *[f"sample {i + 1}" for i in range(n)]])


def upscale(gpt, data_dir: Path, patient: str, modality: str, factor: int = 4) -> Figure:
    """4x super-resolution: low-res input, bicubic, generated, real high-res."""
    from ..eval.metrics import bicubic_upsample

    low = load_image(scan_path(data_dir, patient, modality, low_res=True))
    size = gpt.cfg.vq.resolution
    label = "MRI" if modality == "mri" else modality.upper()
    generated = _generate(gpt, f"Increase the resolution of this {label} image by a factor of {factor}.",
                          scan_path(data_dir, patient, modality, low_res=True))
    return _panels([low, bicubic_upsample(low, size)[0], generated, load_image(scan_path(data_dir, patient, modality))],
                   [f"low-res {low.shape[-1]} px", "bicubic", "generated", "real"])


@torch.no_grad()
def router_figure(gpt, data_dir: Path, patient: str, modality: str, question: str, layers: int = 3) -> Figure:
    """The comprehension plugin's router weights over the answer's prompt tokens (last layers)."""
    from ..lora import recorded_router_weights
    from ..model.multimodal import encode_example, user_text
    from .hlora_plots import router_heatmap

    gpt.set_task("comprehension")
    ids = encode_example(gpt.tokenizer, user_text(question, True), gpt.cfg.vision.num_tokens,
                         gpt.cfg.llm.max_position_embeddings)["input_ids"][None]
    with recorded_router_weights(gpt.model.llm) as recorded:
        gpt.model(ids, pixels=gpt.pixels([scan_path(data_dir, patient, modality)]))
    weights = {k: v[0] for k, v in recorded.items() if k.endswith("qkv_proj")}
    keep = list(weights)[-layers:]
    n_text = 24  # the question and the answer prompt: the last tokens of the sequence
    tokens = gpt.tokenizer.convert_ids_to_tokens(ids[0, -n_text:].tolist())
    return router_heatmap({k.split(".layers.")[-1]: weights[k][-n_text:] for k in keep}, tokens,
                          title="comprehension plugin: which expert each token uses")
