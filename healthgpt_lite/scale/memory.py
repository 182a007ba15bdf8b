"""Memory per GPU of one training stage: an analytical model, every term written down.

Precision ``bf16-mixed`` as the full-run configs use it (Lightning 2.6): parameters are stored
in fp32 and matmuls run in bf16 under autocast; AdamW keeps two fp32 states per trained weight.
Bytes per GPU, with P = all parameters (LLM + both plugins + adapters + CLIP + VQGAN), T = the
parameters that require grad in the stage (``image_rows`` trains whole embedding matrices
behind a row mask, so their full size counts here), N = GPUs:

    DDP  = 4 P  +  (4 + 8 + 4) T                                 + activations
           weights  grads, AdamW m and v, DDP's gradient buckets
    FSDP = (4 P + 4 P_grad + 8 T) / N  +  2 (2 U_max) + 2 U_root + activations
           shards of weights, grads, AdamW   two gathered bf16 units (current + prefetch) + root

FSDP (``use_orig_params=True``, needed for frozen + trained weights in one unit) gives the
*whole* flat parameter of a wrapped unit a gradient as soon as one of its weights trains
(pytorch/pytorch#91167): P_grad = every unit holding a trained weight. Wrapped units: the Phi3
decoder layers and CLIP encoder layers; the root unit (embeddings, head, adapters, VQGAN) stays
gathered from forward to backward.

Activations, bytes per token per decoder layer, bf16, SDPA/flash attention (no T x T scores
kept), h hidden, h_kv key/value width, i MLP width, rk the active plugin's rank r*k:

    A_layer = 8 h            two RMSNorm inputs kept in fp32 (the residual stream is fp32)
            + 8 h + 6 h_kv   attention: qkv input, q k v, rotated q k, attention output
            + 2 h + 8 i      MLP: gate_up input, gate_up output (2 i), SiLU(gate) * up, down input
            + 20 rk          H-LoRA on 4 linears: A x, dropout mask, routed A x (+ router, small)

without checkpointing L A_layer per token; with activation checkpointing per decoder layer
(only each layer's fp32 input is kept; one layer is recomputed at a time) L 4h + A_layer.
Plus the logits: 10 V per token (bf16 logits, fp32 copy, fp32 log-softmax for the loss).
Not counted: the CUDA context and allocator fragmentation (add ~2-4 GiB), transient bf16 casts
of frozen weights, the frozen ViT and VQGAN forwards (no_grad: nothing kept), kernels' workspace.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

GiB = 2**30
WRAPPED_UNITS = ("Phi3DecoderLayer", "CLIPEncoderLayer")  # what FSDP's auto_wrap_policy wraps


@dataclass(frozen=True)
class ModelCounts:
    """What the memory model needs from a model whose ``requires_grad`` flags are set for a stage."""

    total: int  # P
    trained: int  # T: parameters with requires_grad
    grad_units: int  # P_grad: parameters of every FSDP unit (or the root) holding a trained weight
    largest_unit: int  # U_max
    root: int  # U_root: parameters outside the wrapped units
    hidden: int
    kv_width: int
    intermediate: int
    layers: int
    vocab: int


def count_for_fsdp(module: nn.Module, llm_config, vocab: int) -> ModelCounts:
    """Count P, T and the FSDP unit sizes of ``module`` (meta is fine: only shapes are read)."""
    units = [m for m in module.modules() if type(m).__name__ in WRAPPED_UNITS]
    in_unit, grad_units, largest = set(), 0, 0
    for unit in units:
        params = list(unit.parameters())
        in_unit.update(id(p) for p in params)
        size = sum(p.numel() for p in params)
        largest = max(largest, size)
        grad_units += size if any(p.requires_grad for p in params) else 0
    everything = {id(p): p for p in module.parameters()}
    root = [p for k, p in everything.items() if k not in in_unit]
    root_size = sum(p.numel() for p in root)
    grad_units += root_size if any(p.requires_grad for p in root) else 0
    head_dim = llm_config.hidden_size // llm_config.num_attention_heads
    return ModelCounts(
        total=sum(p.numel() for p in everything.values()),
        trained=sum(p.numel() for p in everything.values() if p.requires_grad),
        grad_units=grad_units, largest_unit=largest, root=root_size,
        hidden=llm_config.hidden_size, kv_width=llm_config.num_key_value_heads * head_dim,
        intermediate=llm_config.intermediate_size, layers=llm_config.num_hidden_layers, vocab=vocab)


def activation_bytes_per_token_layer(c: ModelCounts, plugin_rank: int) -> int:
    """A_layer of the module docstring."""
    h, kv, i = c.hidden, c.kv_width, c.intermediate
    return 8 * h + (8 * h + 6 * kv) + (2 * h + 8 * i) + 20 * plugin_rank


def activation_bytes(c: ModelCounts, tokens: int, plugin_rank: int, checkpointing: bool) -> int:
    """Activations kept for backward for ``tokens`` tokens (all sequences of one micro-batch)."""
    per_layer = activation_bytes_per_token_layer(c, plugin_rank)
    kept = c.layers * 4 * c.hidden + per_layer if checkpointing else c.layers * per_layer
    return tokens * (kept + 10 * c.vocab)


@dataclass(frozen=True)
class MemoryEstimate:
    weights: float  # GiB per GPU, each term
    grads: float
    optimizer: float
    buffers: float  # DDP buckets, or FSDP's gathered units
    activations: float

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.optimizer + self.buffers + self.activations

    def as_dict(self) -> dict:
        return {k: round(v, 1) for k, v in asdict(self).items()} | {"total": round(self.total, 1)}


def estimate_memory(c: ModelCounts, strategy: str, n_gpus: int, tokens: int, plugin_rank: int,
                    checkpointing: bool) -> MemoryEstimate:
    """GiB per GPU for ``strategy`` ("ddp" | "fsdp") on ``n_gpus`` GPUs, ``tokens`` per micro-batch."""
    act = activation_bytes(c, tokens, plugin_rank, checkpointing) / GiB
    if strategy == "ddp":
        return MemoryEstimate(4 * c.total / GiB, 4 * c.trained / GiB, 8 * c.trained / GiB, 4 * c.trained / GiB, act)
    if strategy == "fsdp":
        gathered = (2 * 2 * c.largest_unit + 2 * c.root) / GiB
        return MemoryEstimate(4 * c.total / n_gpus / GiB, 4 * c.grad_units / n_gpus / GiB,
                              8 * c.trained / n_gpus / GiB, gathered, act)
    raise ValueError(f"strategy must be 'ddp' or 'fsdp', got {strategy!r}")
