"""VQGAN shapes, the attention block, and the frozen VQTokenizer: encode/decode shapes and a
clear InputError for every kind of bad input."""
import pytest
import torch

from healthgpt_lite.config import build_config
from healthgpt_lite.errors import InputError
from healthgpt_lite.vq import VQGAN, VQTokenizer
from healthgpt_lite.vq.blocks import AttnBlock


@pytest.fixture(scope="module")
def tok():
    torch.manual_seed(0)
    cfg = build_config("tiny", "smoke", {"vq.quantizer": "vq"})  # 64 px, f4 -> 16x16, 512 codes
    model = VQGAN(cfg.vq)
    model.quantize.embedding.weight.data.normal_()
    model.quantize.reset_statistics()
    return VQTokenizer(model)


def test_tiny_preset_is_256_tokens_of_512_codes(tok):
    assert (tok.grid_size, tok.n_codes, tok.resolution) == (16, 512, 64)
    assert "256 tokens" in repr(tok)


def test_encode_decode_shapes_and_ranges(tok):
    images = torch.rand(3, 3, 64, 64)
    idx = tok.encode(images)
    assert idx.shape == (3, 16, 16) and idx.dtype == torch.int64
    assert 0 <= idx.min() and idx.max() < 512
    out = tok.decode(idx)
    assert out.shape == (3, 3, 64, 64) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    assert torch.equal(tok.decode(idx.flatten(1)), out)  # raster-flat (B, 256), as the LLM writes them
    assert torch.equal(tok.reconstruct(images), out)


def test_codebook_rows_are_what_decode_uses(tok):
    book = tok.codebook()
    assert book.shape == (512, 32) and not book.requires_grad
    idx = torch.randint(0, 512, (1, 16, 16))
    assert torch.equal(tok.model.quantize.lookup(idx), book[idx].permute(0, 3, 1, 2))


def test_gray_is_replicated_to_rgb(tok):
    gray = torch.rand(2, 1, 64, 64)
    assert torch.equal(tok.encode(gray), tok.encode(gray.expand(-1, 3, -1, -1).contiguous()))


def test_tokenizer_is_frozen(tok):
    assert not tok.model.training
    assert not any(p.requires_grad for p in tok.model.parameters())
    images = torch.rand(1, 3, 64, 64)
    tok.encode(images)
    assert torch.equal(tok.encode(images), tok.encode(images))  # no codebook update in eval


@pytest.mark.parametrize("bad, message", [
    ([[0.5]], "torch.Tensor"),
    (torch.rand(3, 64, 64), r"shape \(3, 64, 64\).*images\[None\]"),
    (torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8), r"dtype torch.uint8.*/ 255"),
    (torch.rand(1, 2, 64, 64), "2 channels"),
    (torch.rand(1, 4, 64, 64), "4 channels"),
    (torch.rand(1, 3, 32, 32), r"32x32 px.*64x64.*size=64"),
    (torch.rand(1, 3, 64, 48), "64x48 px"),
    (torch.rand(0, 3, 64, 64), "empty batch"),
    (torch.rand(1, 3, 64, 64) * 2 - 1, r"\[0, 1\]"),
    (torch.full((1, 3, 64, 64), float("nan")), "NaN"),
])
def test_encode_rejects_bad_images(tok, bad, message):
    with pytest.raises(InputError, match=message):
        tok.encode(bad)


@pytest.mark.parametrize("bad, message", [
    (torch.full((1, 16, 16), 512), r"span \[512, 512\].*0\.\.511"),
    (torch.full((1, 16, 16), -1), r"span \[-1, -1\]"),
    (torch.zeros(1, 8, 8, dtype=torch.long), r"shape \(1, 8, 8\); expected \(B, 16, 16\) or \(B, 256\)"),
    (torch.zeros(1, 255, dtype=torch.long), r"shape \(1, 255\)"),
    (torch.zeros(16, 16, dtype=torch.long), r"shape \(16, 16\)"),
    (torch.zeros(1, 16, 16), "dtype torch.float32"),
    (torch.zeros(1, 16, 16, dtype=torch.bool), "dtype torch.bool"),
    ([1, 2, 3], "torch.Tensor"),
])
def test_decode_rejects_bad_indices(tok, bad, message):
    with pytest.raises(InputError, match=message):
        tok.decode(bad)


def test_attention_block_is_taming_attention():
    """SDPA computes taming's AttnBlock: softmax(q^T k / sqrt(C)) over positions, applied to v."""
    torch.manual_seed(0)
    block = AttnBlock(32)
    x = torch.randn(2, 32, 4, 5)
    h = block.norm(x)
    q, k, v = (conv(h).flatten(2) for conv in (block.q, block.k, block.v))  # (B, C, HW)
    w = torch.softmax(torch.bmm(q.transpose(1, 2), k) / 32 ** 0.5, dim=2)  # (B, HW_q, HW_k)
    ref = x + block.proj_out(torch.bmm(v, w.transpose(1, 2)).view(2, 32, 4, 5))
    assert torch.allclose(block(x), ref, atol=1e-5)


@pytest.mark.parametrize("overrides, grid", [({}, 16), ({"vq.ch_mult": [1, 2, 2, 2], "vq.attn_resolutions": [8]}, 8)])
def test_vqgan_shapes(overrides, grid):
    cfg = build_config("tiny", "smoke", overrides)
    model = VQGAN(cfg.vq).eval()
    rec, q = model(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert rec.shape == (2, 3, 64, 64)
    assert q.indices.shape == (2, grid, grid) and q.quantized.shape == (2, cfg.vq.embed_dim, grid, grid)
    assert any("attn" in name for name, _ in model.encoder.down.named_modules())  # attention at the chosen resolution


@pytest.mark.parametrize("quantizer", ["vq", "ema", "gumbel"])
def test_every_quantizer_trains_end_to_end(quantizer):
    """One optimisation step of the Lightning module's loss (reconstruction + quantizer) reaches
    the encoder through the quantizer, for each quantizer the config offers."""
    from healthgpt_lite.vq.module import VQModule

    torch.manual_seed(0)
    cfg = build_config("tiny", "smoke", {"vq.quantizer": quantizer, "vq.resolution": 16, "vq.ch_mult": [1, 2],
                                         "vq.attn_resolutions": [8], "vq.n_embed": 32})
    module = VQModule(cfg.vq)
    module.log_dict = lambda *args, **kwargs: None  # no Trainer attached here
    loss = module.training_step((torch.rand(4, 1, 16, 16),), 0)
    loss.backward()
    assert torch.isfinite(loss)
    assert module.model.encoder.conv_in.weight.grad.abs().sum() > 0
    assert module.model.decoder.conv_out.weight.grad.abs().sum() > 0
