"""Qilin-Med-VL's two-stage recipe (training/qilin_stages.py, training/qilin.py): exactly the
right parameters train in each stage, a 2-step run makes artifacts the model loads back, an
artifact of another preset is refused, and the CLI reaches it with ``--recipe qilin``."""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from healthgpt_lite.cli import build_parser, main
from healthgpt_lite.config import build_config
from healthgpt_lite.data import image_token_ids, load_records
from healthgpt_lite.data.text_tokenizer import tokenizer_for
from healthgpt_lite.errors import InputError
from healthgpt_lite.lora import wrapped_layers
from healthgpt_lite.model.llm import build_llm
from healthgpt_lite.training.datamodule import task_records
from healthgpt_lite.training.lit_module import HealthGPTLitModule
from healthgpt_lite.training.pipeline import build_model, ensure_prerequisites
from healthgpt_lite.training.qilin import recipe, recipe_model, recipe_stage_path, run_recipe_stage
from healthgpt_lite.training.qilin_stages import HEALTHGPT_ZH_STAGES, QILIN_STAGES

SMALL = {"llm.hidden_size": 32, "llm.num_layers": 2, "llm.num_heads": 2, "llm.num_kv_heads": 2,
         "llm.intermediate_size": 64, "lora.comprehension.rank": 8, "lora.generation.rank": 8,
         "vision.hidden_size": 32, "vision.num_heads": 2, "vision.intermediate_size": 64}


def tiny_model(plugins: bool):
    cfg = build_config("tiny", "smoke", SMALL)
    tok = tokenizer_for(cfg)
    torch.manual_seed(0)
    base = build_llm(cfg.llm, image_token_ids(tok).start, pad_token_id=tok.pad_token_id)
    return build_model(cfg, tok, base_llm=base, plugins=plugins)


def trainable_ids(model, spec) -> set[int]:
    HealthGPTLitModule(model, spec, total_steps=10)  # freezes everything but the stage's groups
    return {id(p) for p in model.parameters() if p.requires_grad}


def test_qilin_stages_train_the_projector_then_the_whole_llm():
    model = tiny_model(plugins=False)
    assert not wrapped_layers(model.llm), "Qilin-Med-VL has no H-LoRA plugins"
    assert model.llm.get_input_embeddings().weight.shape[0] == model.block.start, "vocabulary must stay unchanged"
    projector = {id(p) for p in model.adapters["comprehension"].parameters()}
    llm = {id(p) for p in model.llm.parameters()}
    assert trainable_ids(model, QILIN_STAGES["qilin_stage1"]) == projector
    assert trainable_ids(model, QILIN_STAGES["qilin_stage2"]) == projector | llm  # every LLM weight: a full fine-tune
    assert not any(p.requires_grad for p in model.adapters["generation"].parameters())
    assert QILIN_STAGES["qilin_stage1"].lrs == {"abstract_adapter": 1e-3}  # docs/PAPERS.md section 5
    assert QILIN_STAGES["qilin_stage2"].lrs == {"abstract_adapter": 2e-5, "llm": 2e-5}


def test_healthgpt_arm_trains_the_adapter_then_its_comprehension_plugin():
    model = tiny_model(plugins=True)
    groups = model.parameter_groups()
    projector = {id(p) for p in groups["abstract_adapter"]}
    plugin = {id(p) for p in groups["comp_plugin"]}
    assert trainable_ids(model, HEALTHGPT_ZH_STAGES["healthgpt_zh_stage1"]) == projector
    assert trainable_ids(model, HEALTHGPT_ZH_STAGES["healthgpt_zh_stage3"]) == projector | plugin
    assert not any(p.requires_grad for p in groups["llm"]), "HealthGPT keeps the base LLM frozen"


def test_both_recipes_learn_from_the_chinese_records_only(smoke_data):
    records = load_records(smoke_data / "train.json")
    for rec in (recipe("qilin"), recipe("healthgpt_zh")):
        align, instruct = (task_records(records, "comprehension", s.record_tasks, s.lang) for s in rec.stages)
        assert align and all(r["lang"] == "zh" and r["task"] == "report" for r in align)
        assert instruct and all(r["lang"] == "zh" and r["task"] in ("vqa_closed", "vqa_open") for r in instruct)


def _mirror_prerequisites(src, dst):
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if not entry.name.startswith(("qilin", "healthgpt_zh")):
            (dst / entry.name).symlink_to(entry)


def test_two_step_qilin_run_loads_back_and_refuses_another_preset(shared_artifacts, tmp_path):
    cfg = build_config("tiny", "smoke", {"qilin.stage1_steps": 2, "qilin.stage2_steps": 2})
    ensure_prerequisites(cfg, shared_artifacts)
    root = tmp_path / "art"
    _mirror_prerequisites(shared_artifacts, root)
    with pytest.raises(InputError, match="no complete artifact.*--recipe qilin"):  # stage 1 must come first
        recipe_model(cfg, "qilin", 1, root)
    for stage in ("qilin_stage1", "qilin_stage2"):
        run_recipe_stage(cfg, "qilin", stage, root)
    path = recipe_stage_path(cfg, recipe("qilin"), "qilin_stage2", root)
    meta = json.loads((path / "meta.json").read_text())
    assert meta["steps"] == 2 and meta["recipe"] == "qilin" and meta["trains"] == ["abstract_adapter", "llm"]
    saved = load_file(str(path / "trained.safetensors"))
    assert any(k.startswith("llm.model.layers.") for k in saved), "a full fine-tune stores the LLM's layers"
    model = recipe_model(cfg, "qilin", None, root)
    own = dict(model.named_parameters())
    assert saved.keys() <= own.keys()
    for k, v in saved.items():
        assert torch.equal(own[k], v), k
    untrained = recipe_model(cfg, "qilin", 0, root)
    assert not all(torch.equal(dict(untrained.named_parameters())[k], v) for k, v in saved.items())

    other = tmp_path / "other"
    _mirror_prerequisites(root, other)
    for stage in ("qilin_stage1", "qilin_stage2"):
        src = recipe_stage_path(cfg, recipe("qilin"), stage, root)
        shutil.copytree(src, other / src.name)
    meta_path = other / path.name / "meta.json"
    meta_path.write_text(json.dumps({**meta, "preset": "small"}))
    with pytest.raises(InputError, match="made for preset 'small', but this run uses preset 'tiny'.*--recipe qilin"):
        recipe_model(cfg, "qilin", None, other)


def test_unknown_recipe_or_stage_is_named():
    with pytest.raises(InputError, match="unknown recipe 'llava'"):
        recipe("llava")
    with pytest.raises(InputError, match="recipe 'qilin' has no stage 'stage3'"):
        run_recipe_stage(build_config("tiny", "smoke"), "qilin", "stage3")


def test_at_m3_size_the_full_fine_tune_trains_the_whole_llm():
    from healthgpt_lite.eval.recipe_costs import scale_costs

    qilin, healthgpt = scale_costs(("qilin", "healthgpt_zh"))
    assert qilin["trainable params"] > 3.5e9  # Phi-3-mini's 3.8B weights (+ the projector)
    assert healthgpt["trainable params"] == pytest.approx(115e6, rel=0.02)  # the released comprehension plugin
    assert qilin["DDP GiB/GPU"] > 2 * healthgpt["DDP GiB/GPU"]  # gradients + AdamW state for every weight


def test_cli_recipe_flag(monkeypatch):
    parser = build_parser()
    assert parser.parse_args(["reproduce"]).recipe == "healthgpt"
    assert parser.parse_args(["reproduce", "--recipe", "qilin"]).recipe == "qilin"
    with pytest.raises(SystemExit):
        parser.parse_args(["reproduce", "--recipe", "llava"])
    calls = []
    import healthgpt_lite.pipelines.qilin as rq

    monkeypatch.setattr(rq, "reproduce_qilin", lambda cfg, **kw: calls.append((cfg, kw)))
    assert main(["reproduce", "--recipe", "qilin", "--profile", "smoke", "--out", "x"]) == 0
    cfg, kw = calls[0]
    assert cfg.profile == "smoke" and kw["out_dir"] == "x"
