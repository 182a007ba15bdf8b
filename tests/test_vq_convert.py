"""Loading taming-transformers checkpoints: the test writes tiny checkpoints in taming's exact
key layout (enumerated here from taming's constructors, independently of our modules), then
checks every tensor lands where it belongs and bad checkpoints are refused by name."""
import argparse

import pytest
import torch

from healthgpt_lite.config import build_config
from healthgpt_lite.errors import InputError
from healthgpt_lite.vq import VQTokenizer, load_taming_checkpoint, load_vq_tokenizer
from healthgpt_lite.vq.convert import read_checkpoint
from healthgpt_lite.vq.vqgan import VQGAN

TINY = {"vq.resolution": 16, "vq.ch": 32, "vq.ch_mult": [1, 2], "vq.num_res_blocks": 1,
        "vq.attn_resolutions": [8], "vq.z_channels": 8, "vq.embed_dim": 8, "vq.n_embed": 16}


def taming_shapes(q) -> dict[str, tuple]:
    """Parameter names and shapes of taming's VQModel / GumbelVQ (Encoder and Decoder of
    ``taming/modules/diffusionmodules/model.py``, ``double_z=False``), written from its loops."""
    s: dict[str, tuple] = {}

    def conv(name, cin, cout, k):
        s[f"{name}.weight"], s[f"{name}.bias"] = (cout, cin, k, k), (cout,)

    def norm(name, c):
        s[f"{name}.weight"], s[f"{name}.bias"] = (c,), (c,)

    def resnet(name, cin, cout):
        norm(f"{name}.norm1", cin), conv(f"{name}.conv1", cin, cout, 3)
        norm(f"{name}.norm2", cout), conv(f"{name}.conv2", cout, cout, 3)
        if cin != cout:
            conv(f"{name}.nin_shortcut", cin, cout, 1)

    def attn(name, c):
        norm(f"{name}.norm", c)
        for part in ("q", "k", "v", "proj_out"):
            conv(f"{name}.{part}", c, c, 1)

    def mid(prefix, c):
        resnet(f"{prefix}.mid.block_1", c, c), attn(f"{prefix}.mid.attn_1", c), resnet(f"{prefix}.mid.block_2", c, c)

    ch, mult, n = q.ch, list(q.ch_mult), len(q.ch_mult)
    conv("encoder.conv_in", q.in_channels, ch, 3)
    res, in_mult = q.resolution, [1] + mult
    for i in range(n):
        block_in, block_out = ch * in_mult[i], ch * mult[i]
        for j in range(q.num_res_blocks):
            resnet(f"encoder.down.{i}.block.{j}", block_in, block_out)
            block_in = block_out
            if res in q.attn_resolutions:
                attn(f"encoder.down.{i}.attn.{j}", block_in)
        if i != n - 1:
            conv(f"encoder.down.{i}.downsample.conv", block_in, block_in, 3)
            res //= 2
    mid("encoder", block_in), norm("encoder.norm_out", block_in), conv("encoder.conv_out", block_in, q.z_channels, 3)
    block_in, res = ch * mult[-1], q.resolution // 2 ** (n - 1)
    conv("decoder.conv_in", q.z_channels, block_in, 3)
    mid("decoder", block_in)
    for i in reversed(range(n)):
        block_out = ch * mult[i]
        for j in range(q.num_res_blocks + 1):
            resnet(f"decoder.up.{i}.block.{j}", block_in, block_out)
            block_in = block_out
            if res in q.attn_resolutions:
                attn(f"decoder.up.{i}.attn.{j}", block_in)
        if i != 0:
            conv(f"decoder.up.{i}.upsample.conv", block_in, block_in, 3)
            res *= 2
    norm("decoder.norm_out", block_in), conv("decoder.conv_out", block_in, q.in_channels, 3)
    conv("quant_conv", q.z_channels, q.embed_dim, 1), conv("post_quant_conv", q.embed_dim, q.z_channels, 1)
    if q.quantizer == "gumbel":  # GumbelQuantize(num_hiddens=z_channels, embedding_dim, n_embed)
        conv("quantize.proj", q.z_channels, q.n_embed, 1)
        s["quantize.embed.weight"] = (q.n_embed, q.embed_dim)
    else:  # VectorQuantizer2
        s["quantize.embedding.weight"] = (q.n_embed, q.embed_dim)
    return s


def write_taming_ckpt(path, q, seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    weights = {k: torch.randn(shape, generator=g) * 0.2 for k, shape in taming_shapes(q).items()}
    loss = {"loss.logvar": torch.zeros(()), "loss.discriminator.main.0.weight": torch.randn(64, 3, 4, 4),
            "loss.perceptual_loss.net.slice1.0.weight": torch.randn(64, 3, 3, 3)}
    torch.save({"epoch": 3, "global_step": 1200, "state_dict": {**weights, **loss}}, path)
    return weights


@pytest.fixture(params=["vq", "gumbel"])
def taming(request, tmp_path):
    cfg = build_config("tiny", "smoke", {**TINY, "vq.quantizer": request.param})
    path = tmp_path / "last.ckpt"
    return cfg, path, write_taming_ckpt(path, cfg.vq)


def test_every_taming_tensor_lands_in_the_same_named_parameter(taming):
    cfg, path, weights = taming
    model = load_taming_checkpoint(path, cfg.vq)
    ours = model.state_dict()
    for k, v in weights.items():
        assert torch.equal(ours[k], v), k
    assert all(not k.startswith("loss.") for k in read_checkpoint(path))


def test_converted_model_matches_loading_the_weights_directly(taming, tmp_path):
    from safetensors.torch import save_file

    cfg, path, weights = taming
    direct = VQGAN(cfg.vq)
    direct.load_state_dict(weights, strict=False)  # the taming layout *is* our layout
    save_file(weights, tmp_path / "vqgan.safetensors")
    images = torch.rand(2, 3, 16, 16)
    tokenizers = [VQTokenizer(direct), VQTokenizer(load_taming_checkpoint(path, cfg.vq)),
                  VQTokenizer(load_taming_checkpoint(tmp_path / "vqgan.safetensors", cfg.vq))]
    codes = [t.encode(images) for t in tokenizers]
    assert codes[0].shape == (2, 8, 8)
    for c, t in zip(codes[1:], tokenizers[1:]):
        assert torch.equal(c, codes[0])
        assert torch.equal(t.decode(c), tokenizers[0].decode(codes[0]))


def test_load_vq_tokenizer_uses_pretrained_path(taming):
    cfg, path, weights = taming
    cfg.vq.pretrained_path = str(path)
    tok = load_vq_tokenizer(cfg, artifacts_dir="/nonexistent")  # no artifact needed
    assert tok.n_codes == 16 and tok.grid_size == 8
    book = "quantize.embed.weight" if cfg.vq.quantizer == "gumbel" else "quantize.embedding.weight"
    assert torch.equal(tok.codebook(), weights[book])
    assert tok.model.quantize.STATISTICS == () or bool(tok.model.quantize.initialized)  # never re-initialised


def test_missing_and_unexpected_keys_are_named(tmp_path):
    cfg = build_config("tiny", "smoke", TINY)
    weights = write_taming_ckpt(tmp_path / "a.ckpt", cfg.vq)
    del weights["decoder.conv_out.bias"]
    weights["encoder.extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": weights}, tmp_path / "b.ckpt")
    with pytest.raises(InputError, match=r"1 missing key\(s\): decoder\.conv_out\.bias.*1 unexpected key\(s\): encoder\.extra\.weight"):
        load_taming_checkpoint(tmp_path / "b.ckpt", cfg.vq)


def test_wrong_quantizer_or_shapes_are_explained(tmp_path):
    gumbel = build_config("tiny", "smoke", {**TINY, "vq.quantizer": "gumbel"})
    write_taming_ckpt(tmp_path / "g.ckpt", gumbel.vq)
    with pytest.raises(InputError, match="set vq.quantizer=gumbel"):
        load_taming_checkpoint(tmp_path / "g.ckpt", build_config("tiny", "smoke", TINY).vq)
    bigger = build_config("tiny", "smoke", {**TINY, "vq.n_embed": 32, "vq.quantizer": "gumbel"})
    with pytest.raises(InputError, match=r"quantize\.embed\.weight \(16, 8\) \(config expects \(32, 8\)\)"):
        load_taming_checkpoint(tmp_path / "g.ckpt", bigger.vq)


def test_unreadable_checkpoints(tmp_path):
    cfg = build_config("tiny", "smoke", TINY)
    with pytest.raises(InputError, match="not found"):
        load_taming_checkpoint(tmp_path / "none.ckpt", cfg.vq)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.ckpt"):
        load_taming_checkpoint(tmp_path / "junk.ckpt", cfg.vq)

    # an arbitrary pickled object (as in old Lightning checkpoints): refused, never executed
    torch.save({"state_dict": {}, "hparams": argparse.Namespace(lr=1.0)}, tmp_path / "pickled.ckpt")
    with pytest.raises(InputError, match="weights_only=True"):
        load_taming_checkpoint(tmp_path / "pickled.ckpt", cfg.vq)


@pytest.mark.parametrize("preset", ["m3", "small"])
def test_preset_builds_exactly_the_taming_layout(preset):
    """m3 is HealthGPT's tokenizer (taming f8-8192 Gumbel): same names and shapes as the real
    checkpoint, so it loads with vq.pretrained_path. Built on the meta device: no memory."""
    cfg = build_config(preset, "smoke")
    with torch.device("meta"):
        model = VQGAN(cfg.vq)
    statistics = {f"quantize.{n}" for n in model.quantize.STATISTICS}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items() if k not in statistics}
    assert ours == taming_shapes(cfg.vq)
    if preset == "m3":
        assert ours["quantize.embed.weight"] == (8192, 256) and ours["quantize.proj.weight"] == (8192, 256, 1, 1)
        assert cfg.vq.grid_size == 32  # 256 px -> 32x32 = 1024 tokens
