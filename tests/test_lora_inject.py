"""Plugins inside a tiny Phi3: what gets wrapped, task switching for every kind, save/load."""
import pytest
import torch
from transformers import Phi3Config, Phi3ForCausalLM

from healthgpt_lite.config import PluginConfig
from healthgpt_lite.errors import InputError
from healthgpt_lite.lora import (HLoRALinear, MoELoRALinear, active_task, count_plugin_parameters, inject_hlora,
                                 layer_shapes, load_plugin, plugin_parameters, read_plugin_metadata,
                                 recorded_router_weights, save_plugin, set_task, wrapped_layers)

PHI3_LINEARS = {"self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj"}
PLUGINS = {"comprehension": PluginConfig(rank=8, experts=4, alpha=16.0, dropout=0.0),
           "generation": PluginConfig(rank=16, experts=4, alpha=32.0, dropout=0.0)}


def tiny_phi3(hidden=32, layers=2, seed=0) -> Phi3ForCausalLM:
    torch.manual_seed(seed)
    cfg = Phi3Config(vocab_size=64, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                     num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                     bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return Phi3ForCausalLM(cfg).eval()


def perturb_(model, task, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in plugin_parameters(model, task).values():
            p.add_(0.3 * torch.randn(p.shape, generator=g))


IDS = torch.randint(3, 64, (2, 9), generator=torch.Generator().manual_seed(0))


def logits(model):
    with torch.no_grad():
        return model(input_ids=IDS).logits


def test_wraps_exactly_the_four_linears_of_every_layer_and_not_lm_head():
    model = tiny_phi3(layers=3)
    lm_head = model.lm_head
    inject_hlora(model, PLUGINS)
    wrapped = wrapped_layers(model)
    assert len(wrapped) == 4 * 3
    assert {n.split(".", 3)[3] for n in wrapped} == PHI3_LINEARS
    assert model.lm_head is lm_head and type(model.lm_head) is torch.nn.Linear
    assert all(type(m) is HLoRALinear for m in wrapped.values())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(plugin_parameters(model, "comprehension")) | set(plugin_parameters(model, "generation"))
    assert layer_shapes(model)["model.layers.0.self_attn.qkv_proj"] == [32, 96]


@pytest.mark.parametrize("kind", ["hlora", "moelora", "lora"])
def test_fresh_plugins_are_a_noop_and_tasks_switch_in_place(kind):
    model = tiny_phi3()
    base = logits(model)
    inject_hlora(model, PLUGINS, kind=kind)
    assert active_task(model) == "comprehension"
    assert torch.equal(logits(model), base)  # B = 0: a fresh plugin changes nothing
    perturb_(model, "comprehension")
    comp = logits(model)
    set_task(model, "generation")
    assert torch.equal(logits(model), base)  # the generation plugin is still fresh
    set_task(model, None)
    assert torch.equal(logits(model), base)
    set_task(model, "comprehension")
    assert not torch.allclose(comp, base) and torch.equal(logits(model), comp)
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    set_task(model, "generation")
    assert flags == {n: p.requires_grad for n, p in model.named_parameters()}  # switching never retrains


def test_plugin_parameter_counts():
    model = inject_hlora(tiny_phi3(), PLUGINS)
    # per plugin and layer: r*k * (d_in + d_out) + k * d_in; Phi3 layer: qkv 32->96, o 32->32, gate_up 32->128, down 64->32
    shapes = [(32, 96), (32, 32), (32, 128), (64, 32)]
    expected = 2 * sum(8 * (i + o) + 4 * i for i, o in shapes)
    assert count_plugin_parameters(model, "comprehension") == expected
    assert count_plugin_parameters(inject_hlora(tiny_phi3(), PLUGINS, kind="moelora"), "comprehension") == expected


def test_gradients_reach_only_the_active_plugin():
    model = inject_hlora(tiny_phi3(), PLUGINS)
    perturb_(model, "generation")
    set_task(model, "generation")
    model.train()
    model(input_ids=IDS, labels=IDS).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in plugin_parameters(model, "generation").values())
    assert all(p.grad is None for p in plugin_parameters(model, "comprehension").values())
    assert all(p.grad is None for n, p in model.named_parameters() if ".plugins." not in n)


def test_router_weights_are_recorded_on_request():
    model = inject_hlora(tiny_phi3(), PLUGINS)
    with recorded_router_weights(model) as weights:
        assert weights == {}  # nothing before the forward
        logits(model)
    assert len(weights) == 8 and weights["model.layers.1.mlp.down_proj"].shape == (2, 9, 4)
    with torch.no_grad():
        model(input_ids=IDS[:1])
    assert weights["model.layers.1.mlp.down_proj"].shape == (2, 9, 4)  # after the block: not overwritten
    with recorded_router_weights(model, task="generation") as gen:
        logits(model)  # the active task is comprehension: the generation routers do not run
    assert gen == {}


@pytest.mark.parametrize("kind", ["hlora", "moelora", "lora"])
def test_save_load_round_trip(tmp_path, kind):
    model = inject_hlora(tiny_phi3(), PLUGINS, kind=kind)
    perturb_(model, "comprehension")
    expected = logits(model)
    adapter = {"0.weight": torch.randn(4, 3)}
    path = save_plugin(model, "comprehension", tmp_path / "comp.safetensors", extra=adapter, meta={"preset": "tiny"})
    assert read_plugin_metadata(path)["kind"] == kind
    fresh = inject_hlora(tiny_phi3(), PLUGINS, kind=kind)  # same base weights (same seed)
    assert not torch.equal(logits(fresh), expected)
    extra = load_plugin(fresh, "comprehension", path, preset="tiny")
    assert torch.equal(logits(fresh), expected)
    assert torch.equal(extra["0.weight"], adapter["0.weight"])


def test_loading_a_plugin_that_does_not_fit_names_the_mismatch(tmp_path):
    model = inject_hlora(tiny_phi3(), PLUGINS)
    path = save_plugin(model, "comprehension", tmp_path / "comp.safetensors", meta={"preset": "tiny"})
    bigger = {**PLUGINS, "comprehension": PluginConfig(rank=32, experts=4, alpha=16.0)}
    with pytest.raises(InputError, match="saved with rank 8 but this model's comprehension plugin has rank 32"):
        load_plugin(inject_hlora(tiny_phi3(), bigger), "comprehension", path)
    more_experts = {**PLUGINS, "comprehension": PluginConfig(rank=8, experts=2, alpha=16.0)}
    with pytest.raises(InputError, match="experts 4 but this model's comprehension plugin has experts 2"):
        load_plugin(inject_hlora(tiny_phi3(), more_experts), "comprehension", path)
    with pytest.raises(InputError, match="saved with kind hlora but .* has kind moelora"):
        load_plugin(inject_hlora(tiny_phi3(), PLUGINS, kind="moelora"), "comprehension", path)
    with pytest.raises(InputError, match="saved for task 'comprehension' but is being loaded as 'generation'"):
        load_plugin(model, "generation", path)
    with pytest.raises(InputError, match="saved for preset 'tiny' but this model is preset 'small'"):
        load_plugin(model, "comprehension", path, preset="small")
    with pytest.raises(InputError, match=r"layers do not match .*preset 'tiny'.*o_proj has \(d_in, d_out\) = \[32, 32\] there but \[64, 64\]"):
        load_plugin(inject_hlora(tiny_phi3(hidden=64), PLUGINS), "comprehension", path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(InputError, match="not a readable safetensors file"):
        load_plugin(model, "comprehension", tmp_path / "junk.safetensors")


def test_bad_injection_is_refused():
    model = inject_hlora(tiny_phi3(), PLUGINS)
    with pytest.raises(InputError, match="already has task plugins"):
        inject_hlora(model, PLUGINS)
    with pytest.raises(InputError, match="unknown plugin kind 'dora'"):
        inject_hlora(tiny_phi3(), PLUGINS, kind="dora")
    with pytest.raises(InputError, match="unknown task 'generaton'"):
        set_task(model, "generaton")
    with pytest.raises(InputError, match="no task plugins; call inject_hlora"):
        set_task(tiny_phi3(), "comprehension")


def test_moelora_injection_uses_the_loop_layer():
    model = inject_hlora(tiny_phi3(), PLUGINS, kind="moelora")
    assert all(type(m) is MoELoRALinear for m in wrapped_layers(model).values())
