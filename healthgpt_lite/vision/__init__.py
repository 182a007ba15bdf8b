"""The vision side: frozen CLIP ViT with hierarchical visual perception (HVP), the two task
adapters, and CLIP-lite pretraining for the presets that have no real CLIP weights."""
from .adapter import MLP2xGELU, make_adapters
from .clip_lite import ensure_clip_lite, load_clip_lite, load_vision_encoder
from .encoder import TASKS, HVPEncoder, build_clip_vision, load_clip_vision

__all__ = ["TASKS", "HVPEncoder", "MLP2xGELU", "build_clip_vision", "ensure_clip_lite", "load_clip_lite",
           "load_clip_vision", "load_vision_encoder", "make_adapters"]
