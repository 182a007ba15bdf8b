"""The frozen CLIP ViT with HVP layer selection, the adapters, and loading real-layout checkpoints."""
import pytest
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig

from healthgpt_lite.config import build_config
from healthgpt_lite.errors import InputError
from healthgpt_lite.vision import HVPEncoder, MLP2xGELU, load_vision_encoder, make_adapters
from healthgpt_lite.vision.encoder import clip_vision_config, normalize_pixels

TINY_VISION = {"vision.image_size": 32, "vision.patch_size": 8, "vision.hidden_size": 32, "vision.num_layers": 3,
               "vision.num_heads": 2, "vision.intermediate_size": 64, "vision.projection_dim": 16}


@pytest.fixture(scope="module")
def cfg():
    return build_config("tiny", "smoke", TINY_VISION)


@pytest.fixture(scope="module")
def encoder(cfg):
    return HVPEncoder.from_config(cfg.vision, seed=0)


def test_hvp_reads_exactly_one_hidden_state_per_task_cls_dropped(cfg, encoder):
    pixels = torch.rand(2, 3, 32, 32)
    ref = encoder.clip(pixel_values=normalize_pixels(pixels), output_hidden_states=True).hidden_states
    assert len(ref) == cfg.vision.num_layers + 1
    comp, gen = encoder(pixels, "comprehension"), encoder(pixels, "generation")
    assert comp.shape == gen.shape == (2, cfg.vision.num_tokens, 32) == (2, 16, 32)
    assert torch.equal(comp, ref[-2][:, 1:]) and torch.equal(gen, ref[1][:, 1:])
    assert not torch.equal(comp, gen)


def test_hf_hidden_states_are_embeddings_then_each_block(encoder):
    """What transformers 5.x returns: [0] = pre_layrnorm(embeddings), [i] = output of block i."""
    x = normalize_pixels(torch.rand(2, 3, 32, 32))
    clip = encoder.clip
    hs = clip(pixel_values=x, output_hidden_states=True).hidden_states
    h = clip.pre_layrnorm(clip.embeddings(x))
    assert torch.equal(hs[0], h)
    for i, block in enumerate(clip.encoder.layers, start=1):
        h = block(h, None)
        h = h[0] if isinstance(h, tuple) else h
        assert torch.allclose(hs[i], h, atol=1e-6), f"hidden_states[{i}] is not the output of block {i}"


def test_frozen_and_stays_in_eval_mode(cfg, encoder):
    parent = torch.nn.ModuleDict({"encoder": encoder, "adapter": torch.nn.Linear(2, 2)})
    parent.train()
    assert all(not p.requires_grad for p in encoder.parameters())
    assert not any(m.training for m in encoder.clip.modules()), "the frozen ViT must stay in eval mode"
    assert parent["adapter"].training
    assert not encoder(torch.rand(1, 3, 32, 32), "generation").requires_grad


@pytest.mark.parametrize("pixels, match", [
    (torch.rand(3, 32, 32), "add a batch dimension"),
    (torch.rand(2, 1, 32, 32), "3 channels"),
    (torch.rand(2, 3, 64, 64), "32x32"),
    (torch.rand(2, 3, 32, 32) * 4 - 2, r"\[0, 1\]"),
    (torch.full((1, 3, 32, 32), float("nan")), "finite"),
    (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "floats"),
])
def test_bad_pixels_are_input_errors(encoder, pixels, match):
    with pytest.raises(InputError, match=match):
        encoder(pixels, "comprehension")


def test_unknown_task_is_an_input_error(encoder):
    with pytest.raises(InputError, match="task='captioning'"):
        encoder(torch.rand(1, 3, 32, 32), "captioning")


def test_adapters_one_per_task_with_llava_shapes(cfg):
    adapters = make_adapters(cfg)
    assert set(adapters) == {"comprehension", "generation"}
    tokens = torch.randn(2, cfg.vision.num_tokens, cfg.vision.hidden_size)
    for task in adapters:
        assert adapters[task](tokens).shape == (2, cfg.vision.num_tokens, cfg.llm.hidden_size)
    assert adapters["comprehension"][0].weight.data_ptr() != adapters["generation"][0].weight.data_ptr()
    mlp = MLP2xGELU(1024, 3072)  # HealthGPT-M3: CLIP-L hidden -> Phi-3-mini hidden
    assert [k for k, _ in mlp.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]  # LLaVA's names
    assert sum(p.numel() for p in mlp.parameters()) == 1024 * 3072 + 3072 + 3072 * 3072 + 3072
    assert isinstance(mlp[1], torch.nn.GELU)


# ----------------------------------------------------------------------------- checkpoints
def _save_full_clip(cfg, folder):
    """A whole CLIPModel in the layout of openai/clip-vit-large-patch14-336 (vision_model.* keys)."""
    text = CLIPTextConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, max_position_embeddings=16, projection_dim=16,
                          bos_token_id=0, eos_token_id=1, pad_token_id=1)
    torch.manual_seed(1)
    full = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=clip_vision_config(cfg.vision).to_dict(),
                                projection_dim=16))
    full.save_pretrained(folder)
    return full


def test_save_pretrained_round_trip_both_layouts(cfg, encoder, tmp_path):
    encoder.clip.save_pretrained(tmp_path / "vision")
    again = HVPEncoder.from_pretrained(tmp_path / "vision", cfg.vision)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(again(x, "comprehension"), encoder(x, "comprehension"))
    full = _save_full_clip(cfg, tmp_path / "full")
    from_full = HVPEncoder.from_pretrained(tmp_path / "full", cfg.vision)
    assert torch.equal(from_full.clip.embeddings.patch_embedding.weight, full.vision_model.embeddings.patch_embedding.weight)


def test_real_preset_loads_from_local_path_and_refuses_wrong_shapes(cfg, tmp_path):
    _save_full_clip(cfg, tmp_path / "clip")
    m3 = build_config("m3", "smoke", {"vision.pretrained_path": str(tmp_path / "clip")})
    with pytest.raises(InputError, match=r"hidden_size=32 \(expected 1024, vision.hidden_size\)"):
        load_vision_encoder(m3)
    shrunk = build_config("m3", "smoke", {**TINY_VISION, "vision.pretrained_path": str(tmp_path / "clip")})
    enc = load_vision_encoder(shrunk)
    assert enc(torch.rand(1, 3, 32, 32), "comprehension").shape == (1, 16, 32)
    with pytest.raises(InputError, match="config.json missing"):
        HVPEncoder.from_pretrained(tmp_path / "nowhere", cfg.vision)


def test_checkpoint_without_vision_weights_is_refused(cfg, tmp_path):
    import json

    from safetensors.torch import save_file

    (tmp_path / "config.json").write_text(json.dumps(clip_vision_config(cfg.vision).to_dict()))
    save_file({"unrelated.weight": torch.zeros(2)}, tmp_path / "model.safetensors")
    with pytest.raises(InputError, match="lacks or mis-shapes"):
        HVPEncoder.from_pretrained(tmp_path, cfg.vision)
