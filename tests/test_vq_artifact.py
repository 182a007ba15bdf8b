"""The tokenizer as an artifact: train (a few steps, tiny shapes) once, load it without
Lightning, refuse a missing or foreign artifact with the command that makes it, and measure it."""
import json

import pytest
import torch

from healthgpt_lite.config import build_config
from healthgpt_lite.errors import InputError
from healthgpt_lite.training.trainer import read_metrics
from healthgpt_lite.vq import VQTokenizer, ensure_vq, evaluate_vq, load_vq_tokenizer

FAST = {"vq.ch": 32, "vq.ch_mult": [1, 2], "vq.attn_resolutions": [], "vq.n_embed": 64,
        "vq.train_steps": 4, "vq.val_every": 2, "vq.batch_size": 8}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, smoke_data):
    cfg = build_config("tiny", "smoke", FAST)
    art = tmp_path_factory.mktemp("art")
    return cfg, art, ensure_vq(cfg, art, data_dir=smoke_data)


def test_ensure_vq_trains_once_and_logs_metrics(trained, smoke_data):
    cfg, art, path = trained
    weights = path / "vq.safetensors"
    assert weights.is_file() and not (path / "checkpoints").exists()  # no pickle left in the artifact
    stamp = weights.stat().st_mtime_ns
    assert ensure_vq(cfg, art, data_dir=smoke_data) == path and weights.stat().st_mtime_ns == stamp  # loaded, not retrained
    df = read_metrics(path)
    assert {"train/loss", "train/rec_loss", "train/perplexity", "val/psnr", "val/ssim", "val/usage", "val/perplexity"} <= set(df)
    assert df["val/psnr"].notna().sum() == 2 and df["step"].max() >= 3
    meta = json.loads((path / "meta.json").read_text())
    assert meta["train_seconds"] > 0 and 0 < meta["val"]["usage"] <= 1


def test_load_vq_tokenizer_from_artifact(trained):
    cfg, art, _ = trained
    tok = load_vq_tokenizer(cfg, art)
    assert isinstance(tok, VQTokenizer) and tok.n_codes == 64 and tok.grid_size == 32
    assert not tok.model.training and bool(tok.model.quantize.initialized)
    assert tok.encode(torch.rand(2, 1, 64, 64)).shape == (2, 32, 32)


def test_missing_or_foreign_artifact_is_refused(trained, tmp_path):
    cfg, art, path = trained
    with pytest.raises(InputError, match="03_vq_tokenizer"):
        load_vq_tokenizer(cfg, tmp_path)  # nothing trained there
    foreign = tmp_path / path.name
    foreign.mkdir()
    (foreign / "vq.safetensors").write_bytes((path / "vq.safetensors").read_bytes())
    meta = json.loads((path / "meta.json").read_text())
    (foreign / "meta.json").write_text(json.dumps({**meta, "preset": "small"}))
    with pytest.raises(InputError, match="made for preset 'small'.*03_vq_tokenizer"):
        load_vq_tokenizer(cfg, tmp_path)


def test_pretrained_path_is_loaded_not_trained(tmp_path):
    cfg = build_config("tiny", "smoke", {"vq.pretrained_path": str(tmp_path / "vqgan.ckpt")})
    with pytest.raises(InputError, match="load_vq_tokenizer"):
        ensure_vq(cfg, tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_vq_tokenizer(cfg, tmp_path)


def test_evaluate_vq_reports_every_modality(trained, smoke_data):
    cfg, art, _ = trained
    result = evaluate_vq(load_vq_tokenizer(cfg, art), smoke_data, "val")
    assert result["tokens_per_image"] == 32 * 32 and result["images"] > 0
    for key in ("psnr", "ssim", "usage", "perplexity", "psnr_ct", "psnr_mri", "psnr_xray", "ssim_xray"):
        assert key in result
    assert 0 < result["usage"] <= 1 and 1 <= result["perplexity"] <= 64 and -1 <= result["ssim"] <= 1
