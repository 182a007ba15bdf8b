"""The VQ image tokenizer: images become words an LLM can read and write (docs/PAPERS.md section 1).

quantizer.py (nearest code / EMA / Gumbel), blocks.py + vqgan.py (taming-style encoder and
decoder), module.py (Lightning training), tokenizer.py (the frozen ``VQTokenizer``),
convert.py (real taming checkpoints), artifact.py (load-or-train), evaluate.py (the numbers).
"""
from .artifact import ensure_vq, load_vq_tokenizer
from .convert import load_taming_checkpoint
from .evaluate import evaluate_vq
from .tokenizer import VQTokenizer
from .vqgan import VQGAN

__all__ = ["VQGAN", "VQTokenizer", "ensure_vq", "evaluate_vq", "load_taming_checkpoint", "load_vq_tokenizer"]
