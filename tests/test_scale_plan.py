"""The real-size presets on the meta device: shapes, parameters per stage vs the released
HealthGPT, and the analytical memory model (scale/)."""
import pytest

from healthgpt_lite.cli import main as cli_main
from healthgpt_lite.config import build_config
from healthgpt_lite.lora import count_plugin_parameters
from healthgpt_lite.scale import build_meta_model
from healthgpt_lite.scale.memory import (GiB, ModelCounts, activation_bytes, activation_bytes_per_token_layer,
                                         estimate_memory)
from healthgpt_lite.scale.plan import parameter_breakdown, sample_tokens, stage_plan


@pytest.fixture(scope="module")
def m3():
    cfg = build_config("m3", "full", {"train.comp_batch_size": 8, "train.gen_batch_size": 2})
    return cfg, build_meta_model(cfg)


@pytest.fixture(scope="module")
def m3_plan(m3):
    cfg, built = m3
    return {r["stage"]: r for r in stage_plan(cfg, 8, built)}


def test_m3_is_built_on_meta_with_the_real_shapes(m3):
    cfg, built = m3
    model = built.model
    assert all(p.is_meta for p in model.parameters()) and all(p.is_meta for p in built.vq.parameters())
    # Phi-3-mini: 32011 tokenizer entries + <image> + 8195 image tokens (docs/PAPERS.md section 1: 40206 without <image>)
    assert len(built.vocabulary) == 40207 and model.llm.get_input_embeddings().weight.shape == (40207, 3072)
    assert model.llm.get_output_embeddings().weight.shape == (40207, 3072)
    assert model.block.start == 32012 and model.block.n_codes == 8192 and model.block.end == 40205
    assert model.vision.num_tokens == 576 and model.adapters["generation"][0].in_features == 1024
    parts = parameter_breakdown(built)
    assert parts["vision (CLIP ViT)"] == 303_507_456  # CLIP ViT-L/14-336 vision tower
    assert parts["LLM (base + new rows)"] - (40207 - 32064) * 3072 * 2 == 3_821_079_552  # Phi-3-mini
    assert parts["VQGAN"] == 68_995_971


def test_m3_trainable_parameters_match_the_released_plugins(m3, m3_plan):
    _, built = m3
    llm = built.model.llm
    # docs/PAPERS.md section 2: comprehension H-LoRA + projector about 115M; generation H-LoRA about 405M
    assert count_plugin_parameters(llm, "comprehension") == 102_891_520
    assert count_plugin_parameters(llm, "generation") == 404_881_408
    assert m3_plan["stage3_comprehension"]["trainable"] == 102_891_520 + 12_589_056
    assert abs(m3_plan["stage3_comprehension"]["trainable"] / 115e6 - 1) < 0.01
    grid = 2 * 32 * 3072  # row + column vectors of the 32x32 code grid (image_tokens.positions=grid; none: 0)
    assert m3_plan["stage3_generation"]["trainable"] == 404_881_408 + 12_589_056 + grid  # plugin + concrete adapter
    assert m3_plan["stage1_comprehension"]["trainable"] == 12_589_056  # the abstract adapter alone
    assert m3_plan["stage1_generation"]["trainable"] == 404_881_408 + 12_589_056 + 8195 * 3072 * 2 + grid  # + image rows
    assert m3_plan["stage2"]["trainable"] == 40207 * 3072 * 2
    # image_rows trains through a row mask: the whole matrices still get gradients and AdamW states
    assert m3_plan["stage1_generation"]["requires_grad"] == 404_881_408 + 12_589_056 + 40207 * 3072 * 2 + grid


def test_l14_shapes_and_vocabulary():
    built = build_meta_model(build_config("l14", "full"))
    llm = built.model.llm
    assert len(built.vocabulary) == 100352 + 4 + 1 + 8195  # phi-4 lacks Phi-3's four chat markers
    qkv = llm.model.layers[0].self_attn.qkv_proj.base
    assert (qkv.in_features, qkv.out_features) == (5120, 5120 + 2 * 10 * 128)  # 40 heads, 10 KV heads
    assert count_plugin_parameters(llm, "comprehension") == 40 * (
        sum(d_in * 32 + 32 * d_out + d_in * 4 for d_in, d_out in
            [(5120, 7680), (5120, 5120), (5120, 2 * 17920), (17920, 5120)]))


def test_tiny_on_meta_counts_what_the_real_tiny_model_has():
    """tiny / small plan with the shipped tokenizer: the meta build has exactly the weights of
    the model a run builds (here with a random LLM-lite instead of the artifact)."""
    from healthgpt_lite.data.text_tokenizer import image_token_ids, tokenizer_for
    from healthgpt_lite.model.llm import build_llm
    from healthgpt_lite.scale.meta import count
    from healthgpt_lite.training.pipeline import build_model

    cfg = build_config("tiny")
    tok = tokenizer_for(cfg)
    real = build_model(cfg, tok, base_llm=build_llm(cfg.llm, image_token_ids(tok).start), with_vision=False)
    built = build_meta_model(cfg)
    assert count(built.model) - count(built.model.vision) == count(real)
    assert len(built.vocabulary) == len(tok) == 827 + 512 + 3


def test_tokens_per_sample(m3):
    cfg, _ = m3
    t = sample_tokens(cfg)
    assert t["conversion"]["visual"] == 576 and t["conversion"]["image_out"] == 1026
    assert t["report2image"]["visual"] == 0 and t["vqa"]["total"] < t["caption"]["total"] < t["conversion"]["total"]


COUNTS = ModelCounts(total=1000, trained=100, grad_units=600, largest_unit=50, root=200,
                     hidden=10, kv_width=10, intermediate=20, layers=4, vocab=30)


def test_memory_model_terms():
    assert activation_bytes_per_token_layer(COUNTS, plugin_rank=2) == 8 * 10 + 8 * 10 + 6 * 10 + 2 * 10 + 8 * 20 + 40
    full = activation_bytes(COUNTS, tokens=7, plugin_rank=2, checkpointing=False)
    ckpt = activation_bytes(COUNTS, tokens=7, plugin_rank=2, checkpointing=True)
    assert full == 7 * (4 * 440 + 300) and ckpt == 7 * (4 * 4 * 10 + 440 + 300) and ckpt < full
    ddp = estimate_memory(COUNTS, "ddp", 8, tokens=0, plugin_rank=2, checkpointing=False)
    assert ddp.total * GiB == pytest.approx(4 * 1000 + 16 * 100)
    fsdp = estimate_memory(COUNTS, "fsdp", 8, tokens=0, plugin_rank=2, checkpointing=False)
    assert fsdp.total * GiB == pytest.approx((4 * 1000 + 4 * 600 + 8 * 100) / 8 + 4 * 50 + 2 * 200)
    with pytest.raises(ValueError):
        estimate_memory(COUNTS, "zero3", 8, 0, 2, False)


def test_plan_memory_is_consistent(m3_plan):
    for row in m3_plan.values():
        assert row["ddp+ac_GiB"] < row["ddp_GiB"] and row["fsdp+ac_GiB"] < row["fsdp_GiB"] < row["ddp_GiB"]
    # the full-run choice for M3 (DDP, no checkpointing, 8 + 2 per GPU) fits an 80 GB GPU
    assert m3_plan["stage1_comprehension"]["ddp_GiB"] < 70 and m3_plan["stage1_generation"]["ddp_GiB"] < 70


def test_plan_command(capsys):
    assert cli_main(["plan", "--config", "configs/m3_stage3.yaml"]) == 0
    out = capsys.readouterr().out
    assert "stage3_comprehension" in out and "115.5M" in out and "stage1" not in out and "fsdp+ac_GiB" in out
