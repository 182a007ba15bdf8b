"""CLIP-lite pretraining, its artifact, zero-shot retrieval and the linear probes."""
import json

import pytest
import torch

from healthgpt_lite.config import build_config
from healthgpt_lite.data import load_tokenizer
from healthgpt_lite.errors import InputError
from healthgpt_lite.vision import ensure_clip_lite, load_clip_lite, load_vision_encoder
from healthgpt_lite.vision.clip_data import CaptionPairs, collate_pairs, load_captioned_images, short_caption
from healthgpt_lite.vision.clip_lite import CLIPLite, clip_lite_config
from healthgpt_lite.vision.probes import (attribute_probe, layer_similarity, linear_cka, patchify, pixel_probe,
                                          run_probes, unpatchify)

SMALL = {"vision.image_size": 32, "vision.patch_size": 8, "vision.hidden_size": 32, "vision.num_layers": 3,
         "vision.num_heads": 2, "vision.intermediate_size": 64, "vision.projection_dim": 16,
         "vision.clip_text_hidden_size": 32, "vision.clip_text_layers": 1, "vision.clip_text_heads": 2,
         "vision.clip_steps": 3, "vision.clip_batch_size": 8}


def test_a_few_steps_lower_the_contrastive_loss_on_a_fixed_batch(smoke_data):
    cfg = build_config("tiny", "smoke", SMALL)
    tok = load_tokenizer()
    data = load_captioned_images(smoke_data, "train", 32)
    pairs = CaptionPairs(data, short_fraction=0.0)
    distinct = list({r: i for i, r in enumerate(data.reports)}.values())[:8]  # 8 images, 8 different reports
    batch = collate_pairs(tok, 64)([pairs[i] for i in distinct])
    assert batch["pixels"].shape == (8, 3, 32, 32) and (batch["input_ids"] == tok.eos_token_id).any(1).all()
    torch.manual_seed(0)
    module = CLIPLite(clip_lite_config(cfg, len(tok), tok.eos_token_id), lr=2e-3, max_steps=100)
    opt = torch.optim.AdamW(module.parameters(), lr=2e-3)
    first = module(batch)["loss"].item()
    for _ in range(25):
        opt.zero_grad()
        module(batch)["loss"].backward()
        opt.step()
    assert module(batch)["loss"].item() < 0.5 * first


def test_captions_and_augmentation(smoke_data):
    data = load_captioned_images(smoke_data, "test", 32)
    assert len(data) == 3 * len(set(data.patients)) and data.images.dtype == torch.uint8
    assert all(r.startswith(s.split(". ")[0]) for r, s in zip(data.reports, data.shorts))
    assert short_caption("ct", 0) == "Coronal CT of the chest and upper abdomen. No focal lesion."
    assert short_caption("xray", 2).endswith("Two lesions.")
    x, _ = CaptionPairs(data, augment=True)[0]
    assert x.shape == (3, 32, 32) and 0 <= x.min() and x.max() <= 1 and not torch.equal(x, data.pixels()[0])
    with pytest.raises(InputError, match="no patients in split 'holdout'"):
        load_captioned_images(smoke_data, "holdout", 32)


def test_artifact_load_or_train_then_refuse_another_preset(smoke_data, tmp_path):
    cfg = build_config("tiny", "smoke", SMALL)
    with pytest.raises(InputError, match="no complete artifact.*02_vision_encoder_hvp"):
        load_vision_encoder(cfg, tmp_path)
    path = ensure_clip_lite(cfg, tmp_path, data_dir=smoke_data)
    assert (path / "vision" / "model.safetensors").is_file() and (path / "run" / "logs" / "metrics.csv").is_file()
    assert not (path / "run" / "checkpoints").exists()  # nothing pickled stays behind
    meta = json.loads((path / "meta.json").read_text())
    scores = meta["retrieval"]
    assert 0 <= scores["modality_acc"] <= 1 and scores["modality_chance"] == pytest.approx(1 / 3, abs=1e-3)
    assert 1 / scores["retrieval_batch"] - 5e-5 <= scores["retrieval_chance"] < 1 and 0 <= scores["i2t_top1"] <= 1
    assert ensure_clip_lite(cfg, tmp_path, data_dir=smoke_data) == path  # loaded, not retrained
    encoder = load_vision_encoder(cfg, tmp_path)
    clip = load_clip_lite(cfg, tmp_path)
    assert torch.equal(encoder.clip.embeddings.patch_embedding.weight,
                       clip.vision_model.embeddings.patch_embedding.weight)
    meta["preset"] = "small"
    (path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match="made for preset 'small'.*02_vision_encoder_hvp"):
        load_vision_encoder(cfg, tmp_path)


# ----------------------------------------------------------------------------- probes
def test_patch_order_is_the_vit_token_order():
    """Token n of a conv patch embedding sees exactly the pixels patchify puts in row n."""
    p, s = 4, 12
    images = torch.rand(2, 1, s, s)
    conv = torch.nn.Conv2d(1, p * p, p, stride=p, bias=False)
    conv.weight.data = torch.eye(p * p).reshape(p * p, 1, p, p)  # channel k copies pixel k of the patch
    tokens = conv(images).flatten(2).transpose(1, 2)  # (B, N, p*p), as CLIPVisionEmbeddings orders them
    assert torch.allclose(patchify(images, p), tokens)
    assert torch.equal(unpatchify(patchify(images, p), p), images)


def test_probes_on_a_synthetic_case():
    torch.manual_seed(0)
    patches = torch.rand(40, 16, 4)  # 40 images, 16 tokens of 2x2 pixels
    mix = torch.randn(4, 8)
    linear = patches @ mix + 0.01 * torch.randn(40, 16, 8)  # a layer that keeps the pixels
    noise = torch.randn(40, 16, 8)  # a layer that forgot them
    good = pixel_probe(linear[:30], patches[:30], linear[30:], patches[30:], patch=2)
    bad = pixel_probe(noise[:30], patches[:30], noise[30:], patches[30:], patch=2)
    assert good["pixel R2"] > 0.98 and abs(bad["pixel R2"]) < 0.1 and good["pixel PSNR (dB)"] > bad["pixel PSNR (dB)"] + 10
    labels = torch.arange(120) % 3
    informative = torch.nn.functional.one_hot(labels, 3).float() + 0.1 * torch.randn(120, 3)
    acc, majority = attribute_probe(informative[:90], labels[:90], informative[90:], labels[90:])
    assert acc == 1.0 and majority == pytest.approx(1 / 3, abs=0.05)
    acc, _ = attribute_probe(torch.randn(120, 5)[:90], labels[:90], torch.randn(30, 5), labels[90:])
    assert acc < 0.7
    assert linear_cka(linear.reshape(-1, 8), linear.reshape(-1, 8) @ torch.linalg.qr(torch.randn(8, 8))[0]) > 0.999
    assert linear_cka(linear.reshape(-1, 8), noise.reshape(-1, 8)) < 0.05
    sim = layer_similarity(torch.stack([linear, noise]))
    assert sim.shape == (2, 2) and torch.allclose(sim.diagonal(), torch.ones(2, dtype=sim.dtype))


def test_run_probes_rows_per_hidden_state(smoke_data):
    from healthgpt_lite.vision import HVPEncoder

    cfg = build_config("tiny", "smoke", SMALL)
    enc = HVPEncoder.from_config(cfg.vision, seed=0)
    train, test = (load_captioned_images(smoke_data, s, 32) for s in ("train", "test"))
    rows = run_probes(enc, train, test, layers=[1, -2])
    assert [r["layer"] for r in rows] == [1, 2]
    for r in rows:
        assert 0.5 < r["pixel R2"] <= 1 and 0 <= r["lesion count"] <= 1 and "modality majority" in r


def _probe_row(layer, r2, **accuracy):
    from healthgpt_lite.vision.probes import MEANING

    majority = {"modality": 0.34, "any lesion": 0.5, "lesion count": 0.5, "lesion in right lung": 0.8,
                "lesion in left lung": 0.8, "lesion in liver": 0.9}
    row = {"layer": layer, "pixel R2": r2}
    for a in MEANING:
        row[a], row[f"{a} majority"] = accuracy.get(a.replace(" ", "_"), majority[a]), majority[a]
    return row


def test_hvp_layers_chosen_from_probes_by_detail_and_by_skill_over_the_baseline():
    """Hand-worked: hs[0] has the best R2 but is no block output; hs[2] gains +0.10 over a 0.5
    baseline (skill 0.2 / 6 attributes), hs[3] +0.09 over the liver's 0.9 (skill 0.9 / 6)."""
    from healthgpt_lite.vision.probes import choose_hvp_layers, meaning_skill

    rows = [_probe_row(3, 0.90, lesion_in_liver=0.99), _probe_row(0, 0.99), _probe_row(1, 0.95),
            _probe_row(2, 0.95, any_lesion=0.6)]
    assert meaning_skill(rows[0]) == pytest.approx(0.9 / 6) and meaning_skill(rows[3]) == pytest.approx(0.2 / 6)
    assert choose_hvp_layers(rows) == {"generation": 1, "comprehension": 3}  # R2 tie 1 = 2: the shallower
    sure = {**_probe_row(2, 0.9), "lesion in liver": 1.0, "lesion in liver majority": 1.0}
    assert meaning_skill(sure) == 0.0  # the attribute with nothing to avoid is left out, not 0/0
    with pytest.raises(InputError, match="no block output"):
        choose_hvp_layers([_probe_row(0, 0.99)])
