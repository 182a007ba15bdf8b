"""The full-run path on a laptop: real-layout weights from local paths (random, tiny shapes),
a benchmark converted to LLaVA JSON, images encoded inline, through `fit --config
configs/m3_stage1.yaml` with the CPU settings swapped in."""
import pytest
import torch
from safetensors.torch import load_file

from healthgpt_lite.config import PluginConfig, build_config
from healthgpt_lite.data.convert import convert_file
from healthgpt_lite.data.text_tokenizer import tokenizer_for
from healthgpt_lite.errors import ConfigError, InputError
from healthgpt_lite.lora import inject_hlora
from healthgpt_lite.model.llm import build_llm
from healthgpt_lite.model.multimodal import encode_example
from healthgpt_lite.scale.dry_run import laptop_fit_args
from healthgpt_lite.scale.stand_ins import write_benchmark_source, write_generation_records, write_stand_in_weights
from healthgpt_lite.training.fit_cli import StageData, main
from healthgpt_lite.training.records_data import fill_target_codes, load_task_records


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    """Stand-ins for the downloads: weights in the real layouts, a converted VQA-RAD, CT->MRI pairs."""
    root = tmp_path_factory.mktemp("downloads")
    cfg = build_config("tiny", "smoke")
    overrides = write_stand_in_weights(cfg, root / "models")
    src, images = write_benchmark_source(root / "vqa_rad", "vqa-rad", n_patients=4)
    convert_file(src, root / "comprehension.json", "vqa-rad", image_root=images)
    generation = write_generation_records(root / "vqa_rad", n_patients=4)
    records = {"comprehension": str(root / "comprehension.json"), "generation": str(generation)}
    return {"root": root, "overrides": overrides, "records": records, "images": str(images)}


def fit_args(downloads, config: str, stage: str, artifacts, batch_size: int) -> list[str]:
    # like the real configs, every stage's steps live in the one shared overrides block, so that
    # stage 2 finds the stage-1 artifacts by the same key they were saved under
    steps = {f"train.{s}_steps": 2 for s in ("stage1_comprehension", "stage1_generation", "stage2")}
    return laptop_fit_args(config, stage, {**downloads["overrides"], **steps}, downloads["records"], downloads["images"],
                           artifacts, steps=2, batch_size=batch_size)


def test_stage_chain_on_real_layout_weights_and_llava_json(downloads, tmp_path):
    """Stage 1 (both tasks) from m3_stage1.yaml, then stage 2 from m3_stage2.yaml with another
    per-GPU batch: stage 2 finds the stage-1 artifacts, and each saves only what it trains."""
    runs = [("configs/m3_stage1.yaml", "stage1_comprehension", 2, {"adapters.comprehension"}),
            ("configs/m3_stage1.yaml", "stage1_generation", 2,
             {"adapters.generation", "plugins.generation", "embed_tokens", "lm_head"}),
            ("configs/m3_stage2.yaml", "stage2", 1, {"embed_tokens", "lm_head"})]
    for config, stage, batch, groups in runs:
        cli = main(fit_args(downloads, config, stage, tmp_path, batch))
        assert cli.trainer.global_step == 2 and torch.isfinite(cli.trainer.callback_metrics["train/loss"])
        assert cli.model.model.vision is not None  # the ViT runs inline: no feature cache for real data
        assert cli.datamodule.batch_sizes["comprehension"] == batch
        (art,) = [p for p in tmp_path.iterdir() if p.name.startswith(stage + "-")]
        saved = load_file(art / "trained.safetensors")
        assert {g for g in groups if any(g in k for k in saved)} == groups, stage
        assert not any("plugins.comprehension" in k or "vision" in k for k in saved)
        if stage == "stage2":
            assert set(saved) == {"llm.model.embed_tokens.weight", "llm.lm_head.weight"}


def test_generation_batches_carry_pixels_and_placeholder_codes(downloads):
    data = StageData("stage1_generation", "tiny", "smoke", overrides=downloads["overrides"],
                     train_records=downloads["records"], image_root=downloads["images"])
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))[0]["generation"]
    cfg = data.cfg
    assert batch["pixels"].shape[1:] == (3, cfg.vision.image_size, cfg.vision.image_size)
    assert batch["target_pixels"].shape[1:] == (3, cfg.vq.resolution, cfg.vq.resolution)
    assert "features" not in batch


def test_fill_target_codes_equals_encoding_the_codes():
    cfg = build_config("tiny", "smoke")
    tok = tokenizer_for(cfg)
    codes = torch.randint(0, cfg.vq.n_embed, (cfg.vq.grid_size, cfg.vq.grid_size))
    user = "<image>\nConvert this CT image into an MRI image."
    args = (tok, user, cfg.vision.num_tokens, cfg.llm.max_position_embeddings)
    placeholder = encode_example(*args, image_codes=torch.zeros_like(codes), generation=True)
    truth = encode_example(*args, image_codes=codes, generation=True)
    batch = {k: v[None].clone() for k, v in placeholder.items()}
    from healthgpt_lite.data.text_tokenizer import image_token_ids

    fill_target_codes(batch, codes[None], image_token_ids(tok).first_idx)
    assert torch.equal(batch["input_ids"][0], truth["input_ids"]) and torch.equal(batch["labels"][0], truth["labels"])


def test_records_problems_are_named(downloads, tmp_path):
    with pytest.raises(InputError, match="target_image"):
        load_task_records(downloads["records"]["comprehension"], "generation", tmp_path)
    with pytest.raises(InputError, match="not found under image_root"):
        load_task_records(downloads["records"]["comprehension"], "comprehension", tmp_path)
    with pytest.raises(ConfigError, match="also needs"):
        StageData("stage2", "tiny", "smoke", overrides=downloads["overrides"],
                  train_records={"comprehension": downloads["records"]["comprehension"]})


def test_activation_checkpointing_gives_the_same_gradients():
    cfg = build_config("tiny", "smoke")
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        llm = build_llm(cfg.llm, 64)
        inject_hlora(llm, {"comprehension": PluginConfig(rank=8, experts=2, alpha=16.0, dropout=0.0)})
        if checkpointing:
            llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        llm.train()
        ids = torch.randint(0, 64, (2, 12))
        llm(input_ids=ids, labels=ids).loss.backward()
        grads.append([p.grad.clone() for p in llm.parameters() if p.requires_grad])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))
