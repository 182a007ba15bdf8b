"""The model drawn as boxes, with the trained parts highlighted (notebooks 00, 06-08, 11).

Components (names used by ``trained=``):
``vision``, ``hvp``, ``abstract_adapter``, ``concrete_adapter``, ``llm``, ``comp_plugin``,
``gen_plugin``, ``embeddings``, ``vq_encoder``, ``vq_decoder``.
"""
from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# name: (x, y, width, height, label)
BOXES = {
    "image": (0.0, 4.2, 1.6, 0.8, "medical image"),
    "vision": (2.1, 4.0, 2.0, 1.2, "CLIP ViT\n(frozen)"),
    "hvp": (4.6, 4.0, 1.7, 1.2, "HVP\nlayer 1 | layer -2"),
    "concrete_adapter": (6.75, 4.75, 2.2, 0.6, "concrete adapter: gen"),
    "abstract_adapter": (6.75, 3.85, 2.2, 0.6, "abstract adapter: comp"),
    "text": (0.0, 2.35, 1.6, 0.8, "instruction text"),
    "embeddings": (2.1, 2.2, 2.0, 1.1, "word embeddings\n+ output head"),
    "llm": (4.6, 1.0, 4.2, 2.3, "LLM (Phi-3 architecture)\nfrozen base weights"),
    "comp_plugin": (9.3, 2.35, 2.1, 0.8, "comprehension\nH-LoRA plugin"),
    "gen_plugin": (9.3, 1.2, 2.1, 0.8, "generation\nH-LoRA plugin"),
    "answer": (9.3, 3.7, 2.1, 0.7, "text answer"),
    "vq_decoder": (9.3, -0.3, 2.1, 0.9, "VQGAN decoder\n(frozen)"),
    "vq_encoder": (6.3, -0.3, 2.3, 0.9, "VQGAN encoder\n(targets -> indices)"),
    "out_image": (12.0, -0.25, 1.6, 0.8, "generated image"),
}
ARROWS = [("image", "vision"), ("vision", "hvp"), ("hvp", "concrete_adapter"), ("hvp", "abstract_adapter"),
          ("concrete_adapter", "llm"), ("abstract_adapter", "llm"), ("text", "embeddings"), ("embeddings", "llm"),
          ("llm", "comp_plugin"), ("llm", "gen_plugin"), ("comp_plugin", "answer"), ("gen_plugin", "vq_decoder"),
          ("vq_encoder", "llm"), ("vq_decoder", "out_image")]
COLORS = {"trained": "#f4a259", "frozen": "#cfd8e3", "io": "#ffffff", "off": "#f2f2f2"}
IO = {"image", "text", "answer", "out_image"}


def architecture_figure(trained: set[str] | frozenset[str] = frozenset(), title: str = "",
                        inactive: set[str] | frozenset[str] = frozenset(), labels: dict[str, str] | None = None) -> Figure:
    """HealthGPT as boxes: ``trained`` parts in orange, frozen in blue-gray, ``inactive`` faded;
    ``labels`` replaces the text of some boxes."""
    fig = Figure(figsize=(11, 5.2))
    ax = fig.add_subplot()
    for name, (x, y, w, h, label) in BOXES.items():
        label = (labels or {}).get(name, label)
        kind = "io" if name in IO else "trained" if name in trained else "off" if name in inactive else "frozen"
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=COLORS[kind],
                                    ec="#999999" if kind == "off" else "#333333", lw=1.2))
        ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=8.5,
                color="#999999" if kind == "off" else "black", weight="bold" if kind == "trained" else "normal")
    for a, b in ARROWS:
        (xa, ya, wa, ha, _), (xb, yb, wb, hb, _) = BOXES[a], BOXES[b]
        start, end = _anchor((xa, ya, wa, ha), (xb + wb / 2, yb + hb / 2)), _anchor((xb, yb, wb, hb), (xa + wa / 2, ya + ha / 2))
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, color="#555555", lw=1))
    ax.set_xlim(-0.3, 13.9), ax.set_ylim(-0.6, 5.5), ax.axis("off")
    handles = [FancyBboxPatch((0, 0), 1, 1, fc=COLORS[k], ec="#333") for k in ("trained", "frozen")]
    ax.legend(handles, ["trained in this step", "frozen"], loc="upper right", fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _anchor(box: tuple[float, float, float, float], toward: tuple[float, float]) -> tuple[float, float]:
    """The midpoint of the box side that faces ``toward``."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    dx, dy = toward[0] - cx, toward[1] - cy
    if abs(dx) * h > abs(dy) * w:
        return (x + w if dx > 0 else x, cy)
    return (cx, y + h if dy > 0 else y)


# stage-table group -> boxes of the diagram it trains
GROUP_BOXES = {"abstract_adapter": {"abstract_adapter"}, "concrete_adapter": {"concrete_adapter"},
               "comp_plugin": {"comp_plugin"}, "gen_plugin": {"gen_plugin"}, "embeddings": {"embeddings"},
               "head": {"embeddings"}, "image_rows": {"embeddings"}, "image_positions": {"embeddings"},
               "llm": {"llm", "embeddings"}}  # image_positions are added to the embeddings
TASK_BOXES = {"comprehension": {"abstract_adapter", "comp_plugin", "answer"},
              "generation": {"concrete_adapter", "gen_plugin", "vq_decoder", "vq_encoder", "out_image"}}


def stage_figure(spec, plugins: bool = True) -> Figure:
    """The model with what ``spec`` (a ``training.stages.StageSpec``) trains highlighted and the
    other task's path faded. ``plugins=False``: the LLaVA-style model of Qilin-Med-VL, which has
    no H-LoRA plugins and no generation path (both faded)."""
    trained = set().union(*(GROUP_BOXES[g] for g in spec.trains))
    inactive = set() if spec.task == "mixed" else TASK_BOXES["generation" if spec.task == "comprehension" else "comprehension"]
    labels = {}
    if not plugins:
        inactive = inactive | TASK_BOXES["generation"] | {"comp_plugin", "gen_plugin"}
        labels = {"comp_plugin": "(no plugins)", "gen_plugin": "(no plugins)", "hvp": "layer -2"}
    if "llm" in spec.trains:
        labels["llm"] = "LLM (Phi-3 architecture)\nevery weight trains\n(full fine-tune)"
    return architecture_figure(trained, title=f"{spec.name}: trains {', '.join(spec.trains)}",
                               inactive=inactive - trained, labels=labels)
