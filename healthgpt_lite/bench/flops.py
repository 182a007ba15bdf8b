"""Model FLOPs of one training step, counted from the shapes (the numerator of MFU).

MFU (model FLOPs utilisation, PaLM: Chowdhery et al. 2022, appendix B) = the FLOPs a step
*must* do, given the model's shapes, per second, over the GPU's peak. It ignores what the
kernels really do (recomputation, padding, a causal kernel skipping half the scores), so two
implementations of the same model are compared on the same yardstick.

One linear layer ``y = x W``, x (tokens, d_in), W (d_in, d_out), costs per token:

    forward             y  = x W        2 d_in d_out
    backward, inputs    dx = dy W^T     2 d_in d_out   (whenever anything before the layer trains)
    backward, weights   dW = x^T dy     2 d_in d_out   (only when W itself trains)

Summed over the N weights every token multiplies with, N_trained of which train:

    linear FLOPs per step = (2 N  +  2 N  +  2 N_trained) x tokens

The textbook "6 N tokens" assumes every weight trains. HealthGPT's stages train adapters,
H-LoRA plugins or embedding rows on a frozen LLM (paper, "Three-stage Learning Strategy"), so N_trained is a few
percent of N and a step costs about 4 N tokens: counting 6 would inflate MFU by ~1.5x.

Attention scores, per sequence of T tokens, per layer, d = query heads x head dim:

    forward    S = Q K^T, O = P V                 2 matmuls x 2 T^2 d = 4 T^2 d
    backward   dP = dO V^T, dV = P^T dO,
               dQ = dS K,  dK = dS^T Q            4 matmuls x 2 T^2 d = 8 T^2 d

counted over the full T x T (the PaLM convention), although a causal kernel skips half.

Not counted (small, or not a multiply): embedding lookups, biases, norms, activations,
softmax, the loss, the adapter MLP on the visual tokens (under 1% of the LLM's FLOPs in the
``small`` preset). Assumed: the backward pass runs through every layer. It does in every
stage here, since something at the input trains (an adapter, the embeddings or the plugins of
layer 0), so ``dx`` is counted for all N weights.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn


@dataclass(frozen=True)
class TransformerShape:
    """What the FLOP count needs to know about a transformer in one training stage."""

    matmul_params: int  # N: weights every token multiplies with (layers, active plugin, head)
    trained_matmul_params: int  # N_trained <= N: those that get a weight gradient
    layers: int  # L
    attention_width: int  # d = query heads x head dim


@dataclass(frozen=True)
class StepFlops:
    forward: int  # linear + attention, forward
    backward_inputs: int  # dx of every linear + attention backward
    backward_weights: int  # dW of the trained weights

    @property
    def total(self) -> int:
        return self.forward + self.backward_inputs + self.backward_weights

    def as_dict(self) -> dict:
        return asdict(self) | {"total": self.total}


def attention_flops_forward(shape: TransformerShape, seq_lens: list[int]) -> int:
    """4 L T^2 d per sequence: Q K^T and P V in every layer."""
    return sum(4 * shape.layers * t * t * shape.attention_width for t in seq_lens)


def forward_flops(shape: TransformerShape, seq_lens: list[int]) -> int:
    """FLOPs of a forward pass over sequences of ``seq_lens`` tokens (a frozen encoder's only cost)."""
    return 2 * shape.matmul_params * sum(seq_lens) + attention_flops_forward(shape, seq_lens)


def training_step_flops(shape: TransformerShape, seq_lens: list[int]) -> StepFlops:
    """Forward + backward FLOPs of one step over sequences of ``seq_lens`` tokens (a padded
    batch of B sequences of T positions: ``[T] * B``). The module docstring derives each term."""
    tokens = sum(seq_lens)
    attention = attention_flops_forward(shape, seq_lens)
    return StepFlops(forward=2 * shape.matmul_params * tokens + attention,
                     backward_inputs=2 * shape.matmul_params * tokens + 2 * attention,
                     backward_weights=2 * shape.trained_matmul_params * tokens)


def matmul_parameters(module: nn.Module, exclude: set[int] = frozenset(),
                      keep: set[int] = frozenset()) -> list[nn.Parameter]:
    """The weights of ``module`` that multiply tokens: every parameter of two or more dimensions
    (linear and conv weights, LoRA A/B, routers) except lookup tables (``nn.Embedding``) and the
    ids in ``exclude``; ids in ``keep`` always count (an output head tied to its embedding).
    Works on the meta device (only shapes are read)."""
    lookups = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)} - set(keep)
    unique = {id(p): p for p in module.parameters()}
    return [p for k, p in unique.items() if p.ndim >= 2 and k not in lookups and k not in exclude]


def llm_shape(model: nn.Module, task: str) -> TransformerShape:
    """The LLM of a ``HealthGPTModel`` as it runs ``task``: base weights, the task's own H-LoRA
    plugin (the other plugin stays idle) and the head; ``requires_grad`` as the stage set it."""
    from ..lora import plugin_parameters

    llm = model.llm
    idle = {id(p) for t, plugin in model.plugin_of_task.items() if plugin != model.plugin_of_task[task]
            for p in (plugin_parameters(llm, plugin).values() if model.has_plugins else [])}
    weights = matmul_parameters(llm, exclude=idle, keep={id(llm.get_output_embeddings().weight)})
    c = llm.config
    head_dim = c.hidden_size // c.num_attention_heads
    return TransformerShape(matmul_params=sum(p.numel() for p in weights),
                            trained_matmul_params=sum(p.numel() for p in weights if p.requires_grad),
                            layers=c.num_hidden_layers, attention_width=c.num_attention_heads * head_dim)


def vision_shape(vision: nn.Module) -> TransformerShape:
    """A frozen CLIP ViT (``HVPEncoder``): every layer runs (HVP reads two of its hidden states)."""
    c = vision.clip.config
    weights = matmul_parameters(vision)
    return TransformerShape(matmul_params=sum(p.numel() for p in weights), trained_matmul_params=0,
                            layers=c.num_hidden_layers, attention_width=c.hidden_size)
