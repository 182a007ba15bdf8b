"""H-LoRA layers: the fused form equals the expert loop and (k=1) peft's LoRA; plugins start as
no-ops, switch in place, and only the active one receives gradients (docs/PAPERS.md section 2)."""
import pytest
import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from healthgpt_lite.config import PluginConfig
from healthgpt_lite.errors import ConfigError, InputError
from healthgpt_lite.lora import HLoRALinear, MoELoRALinear, recorded_router_weights

D_IN, D_OUT = 24, 40


def randomize_(layer: nn.Module, seed: int = 0) -> nn.Module:
    """Give every plugin weight (B included, which starts at zero) a random value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.plugins.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return layer


def make_layer(experts=4, rank=16, dtype=torch.float64, tasks=("comprehension", "generation")):
    base = nn.Linear(D_IN, D_OUT, dtype=dtype)
    plugins = {t: PluginConfig(rank=rank * (i + 1), experts=experts, alpha=2.0 * rank, dropout=0.1)
               for i, t in enumerate(tasks)}
    return HLoRALinear(base, plugins)


@pytest.mark.parametrize("experts", [1, 2, 4, 8])
def test_fused_equals_expert_loop(experts):
    layer = randomize_(make_layer(experts=experts)).eval()
    moe = MoELoRALinear.from_hlora(layer).eval()
    x = torch.randn(3, 7, D_IN, dtype=torch.float64)
    for task in ("comprehension", "generation"):
        layer.set_task(task), moe.set_task(task)
        torch.testing.assert_close(moe(x), layer(x), atol=1e-10, rtol=0)
    assert not torch.allclose(layer(x), layer.base(x))  # the check compares non-trivial updates


def test_fused_equals_explicit_formula():
    layer = randomize_(make_layer(experts=4, rank=8)).eval()
    p, x = layer.plugins["comprehension"], torch.randn(5, D_IN, dtype=torch.float64)
    r, k = p.rank_per_expert, p.experts
    w = torch.softmax(x @ p.router.weight.T, -1)  # (5, k)
    expected = layer.base(x) + p.scale * sum(
        w[:, i:i + 1] * (x @ p.A.weight[i * r:(i + 1) * r].T @ p.B.weight[:, i * r:(i + 1) * r].T) for i in range(k))
    torch.testing.assert_close(layer(x), expected, atol=1e-10, rtol=0)
    assert (r, p.scale) == (2, 16.0 / 2)  # r = rank / k = 8 / 4; scale = alpha / r


def test_one_expert_equals_peft_lora():
    rank, alpha = 8, 16.0
    layer = randomize_(make_layer(experts=1, rank=rank, tasks=("comprehension",))).eval()
    p = layer.plugins["comprehension"]
    wrapper = nn.Sequential()
    wrapper.add_module("proj", nn.Linear(D_IN, D_OUT, dtype=torch.float64))
    wrapper.proj.load_state_dict(layer.base.state_dict())
    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.1), wrapper)
    with torch.no_grad():
        wrapper.proj.lora_A["default"].weight.copy_(p.A.weight)
        wrapper.proj.lora_B["default"].weight.copy_(p.B.weight)
    wrapper.eval()
    assert wrapper.proj.scaling["default"] == p.scale == alpha / rank
    x = torch.randn(4, 6, D_IN, dtype=torch.float64)
    torch.testing.assert_close(layer(x), wrapper(x), atol=1e-10, rtol=0)


@pytest.mark.parametrize("cls", [HLoRALinear, MoELoRALinear])
def test_fresh_plugin_is_a_noop(cls):
    base = nn.Linear(D_IN, D_OUT)
    layer = cls(base, {"comprehension": PluginConfig(rank=8, experts=4)})
    x = torch.randn(2, 5, D_IN)
    assert layer.active_task == "comprehension"
    assert torch.equal(layer(x), base(x))


def test_switching_changes_output_and_restores_exactly():
    layer = randomize_(make_layer(dtype=torch.float32)).eval()
    x = torch.randn(2, 5, D_IN)
    layer.set_task("comprehension")
    comp = layer(x)
    layer.set_task("generation")
    gen = layer(x)
    layer.set_task(None)
    base = layer(x)
    layer.set_task("comprehension")
    assert not torch.allclose(comp, gen) and not torch.allclose(comp, base)
    assert torch.equal(base, layer.base(x))
    assert torch.equal(layer(x), comp)


def test_gradients_reach_only_the_active_plugin():
    layer = randomize_(make_layer(dtype=torch.float32))
    layer.set_task("generation")
    layer(torch.randn(3, D_IN)).square().sum().backward()
    for name, p in layer.plugins["generation"].named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in layer.plugins["comprehension"].parameters())
    assert not layer.base.weight.requires_grad and layer.base.weight.grad is None


def test_router_recording_happens_only_inside_the_block():
    layer = make_layer(dtype=torch.float32)
    p = layer.plugins["comprehension"]
    x = torch.randn(2, 3, D_IN)
    with recorded_router_weights(layer) as weights:
        layer(x)
    w = weights[""]  # the layer itself is the one wrapped layer
    assert w.shape == (2, 3, 4) and torch.allclose(w.sum(-1), torch.ones(2, 3))
    assert torch.allclose(w, p.router_weights(x))
    assert not p.router._forward_hooks  # removed on exit: no recording state left on the plugin
    layer(torch.randn(2, 3, D_IN))
    assert torch.equal(weights[""], w)  # outside the block nothing is recorded


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="rank=10 must be a positive multiple of experts=4"):
        HLoRALinear(nn.Linear(4, 4), {"comprehension": PluginConfig(rank=10, experts=4)})
    with pytest.raises(InputError, match="wraps an nn.Linear"):
        HLoRALinear(nn.Conv1d(4, 4, 1), {"comprehension": PluginConfig()})
    with pytest.raises(InputError, match="unknown task 'generaton'"):
        make_layer().set_task("generaton")
