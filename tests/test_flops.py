"""The FLOP counter of MFU (bench/flops.py): a hand-worked example, torch's own counter on a tiny
model with frozen and trained weights, and the real tiny HealthGPT's LLM."""
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from healthgpt_lite.bench.flops import (TransformerShape, attention_flops_forward, forward_flops, llm_shape,
                                        matmul_parameters, training_step_flops)


def test_hand_worked_example():
    # N = 10 weights, 2 of them trained, 1 layer, d = 4, two sequences of T = 3 (6 tokens):
    #   attention forward  4 L T^2 d = 4 * 1 * 9 * 4 = 144 per sequence, 288 for both
    #   forward            2 N tokens + 288 = 2 * 10 * 6 + 288 = 408
    #   backward, inputs   2 N tokens + 2 * 288 = 120 + 576 = 696
    #   backward, weights  2 N_trained tokens = 2 * 2 * 6 = 24
    #   total              408 + 696 + 24 = 1128   (6 N tokens + 3 x attention would say 1224)
    shape = TransformerShape(matmul_params=10, trained_matmul_params=2, layers=1, attention_width=4)
    flops = training_step_flops(shape, [3, 3])
    assert attention_flops_forward(shape, [3, 3]) == 288
    assert (flops.forward, flops.backward_inputs, flops.backward_weights, flops.total) == (408, 696, 24, 1128)
    assert forward_flops(shape, [3, 3]) == 408


class TinyLoRABlock(nn.Module):
    """One attention layer on a frozen base with a trained LoRA on its output projection, a
    trained input projection (so the backward pass reaches every layer, as in the real stages)
    and a frozen head. Attention with plain matmuls (torch's counter has no formula for the CPU
    flash kernel); no biases (the counter counts only the multiply of ``addmm``)."""

    def __init__(self, d=16, rank=4, vocab=24):
        super().__init__()
        self.inp = nn.Linear(d, d, bias=False)  # trained
        self.qkv = nn.Linear(d, 3 * d, bias=False).requires_grad_(False)
        self.out = nn.Linear(d, d, bias=False).requires_grad_(False)
        self.lora_a = nn.Parameter(torch.randn(d, rank) / d)  # trained
        self.lora_b = nn.Parameter(torch.randn(rank, d) / rank)  # trained
        self.head = nn.Linear(d, vocab, bias=False).requires_grad_(False)
        self.d = d

    def forward(self, x):  # x (B, T, d)
        h = self.inp(x)
        q, k, v = self.qkv(h).split(self.d, dim=-1)  # (B, T, d) each
        scores = (q @ k.transpose(1, 2)) / self.d**0.5  # (B, T, T)
        a = scores.softmax(-1) @ v  # (B, T, d)
        y = self.out(a) + (a @ self.lora_a) @ self.lora_b  # frozen W_o + LoRA update
        return self.head(y)  # (B, T, V)


def test_agrees_with_torch_flop_counter_on_a_tiny_lora_model():
    torch.manual_seed(0)
    model, (b, t) = TinyLoRABlock(), (3, 5)
    weights = matmul_parameters(model)
    shape = TransformerShape(matmul_params=sum(p.numel() for p in weights),
                             trained_matmul_params=sum(p.numel() for p in weights if p.requires_grad),
                             layers=1, attention_width=model.d)
    assert shape.matmul_params == 16 * 16 + 16 * 48 + 16 * 16 + 16 * 4 + 4 * 16 + 16 * 24
    assert shape.trained_matmul_params == 16 * 16 + 16 * 4 + 4 * 16
    x = torch.randn(b, t, model.d, requires_grad=True)  # the backward reaches the input, as assumed
    with FlopCounterMode(display=False) as counter:
        model(x).pow(2).mean().backward()
    ours = training_step_flops(shape, [t] * b).total
    # every multiply here is a matmul both count, so they agree exactly; the stated tolerance is 1%
    assert ours == pytest.approx(counter.get_total_flops(), rel=0.01)
    assert ours == counter.get_total_flops()


def test_llm_shape_of_the_tiny_healthgpt(smoke_cfg):
    """The real model: base weights + the active task's plugin + the head; the idle plugin and
    the embedding lookup do not count. Against torch's counter within 2% for the linear part
    (what torch counts and we do not: the adapter on the visual tokens, RoPE's frequency matmul;
    on the CPU torch has no formula for SDPA, so attention is left out of both sides)."""
    from healthgpt_lite.bench.gpu_m3_step import synthetic_batch
    from healthgpt_lite.data.text_tokenizer import image_token_ids, tokenizer_for
    from healthgpt_lite.lora import count_plugin_parameters
    from healthgpt_lite.model.llm import build_llm
    from healthgpt_lite.training.lit_module import freeze_for_stage
    from healthgpt_lite.training.pipeline import build_model
    from healthgpt_lite.training.stages import STAGES

    cfg, tok = smoke_cfg, tokenizer_for(smoke_cfg)
    model = build_model(cfg, tok, base_llm=build_llm(cfg.llm, image_token_ids(tok).start, tok.pad_token_id))
    freeze_for_stage(model, STAGES["stage3_comprehension"])
    h, i, vocab = cfg.llm.hidden_size, cfg.llm.intermediate_size, len(tok)
    per_layer = h * 3 * h + h * h + h * 2 * i + i * h  # qkv, o, gate_up, down (4 heads = 4 KV heads)
    comp = count_plugin_parameters(model.llm, "comprehension")
    shape = llm_shape(model, "comprehension")
    assert shape.matmul_params == cfg.llm.num_layers * per_layer + vocab * h + comp
    assert shape.trained_matmul_params == comp  # stage 3: the plugin trains; the adapter is outside the LLM
    assert llm_shape(model, "generation").matmul_params == cfg.llm.num_layers * per_layer + vocab * h + \
        count_plugin_parameters(model.llm, "generation")

    batch = synthetic_batch(cfg, model, 2, "cpu")
    features = torch.randn(2, cfg.vision.num_tokens, cfg.vision.hidden_size)
    with FlopCounterMode(display=False) as counter:
        model(batch["input_ids"], batch["attention_mask"], batch["labels"], features=features).loss.backward()
    counted = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    assert not any("attention" in op for op in counted)  # CPU: SDPA is not counted by torch
    seqs = [batch["input_ids"].shape[1]] * 2
    linear = training_step_flops(shape, seqs).total - 3 * attention_flops_forward(shape, seqs)
    assert linear == pytest.approx(sum(counted.values()), rel=0.02)
