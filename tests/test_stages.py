"""The stage table is what trains: for every stage and task, exactly the right parameters
require grad and exactly one optimizer group per trained group exists, at the right rate."""
import pytest
import torch

from healthgpt_lite.config import build_config
from healthgpt_lite.data import image_token_ids
from healthgpt_lite.data.text_tokenizer import tokenizer_for
from healthgpt_lite.errors import InputError
from healthgpt_lite.model.llm import build_llm
from healthgpt_lite.model.multimodal import collate, encode_example, user_text
from healthgpt_lite.training.lit_module import HealthGPTLitModule, trainable_parameter_count
from healthgpt_lite.training.pipeline import apply_stage, build_model, stages_before
from healthgpt_lite.training.stages import GROUPS, ORDER, STAGES

SMALL = {"llm.hidden_size": 32, "llm.num_layers": 2, "llm.num_heads": 2, "llm.num_kv_heads": 2,
         "llm.intermediate_size": 64, "lora.comprehension.rank": 8, "lora.generation.rank": 8,
         "vision.hidden_size": 32, "vision.num_heads": 2, "vision.intermediate_size": 64}


@pytest.fixture(scope="module")
def cfg():
    return build_config("tiny", "smoke", SMALL)


def tiny_model(cfg):
    tok = tokenizer_for(cfg)
    torch.manual_seed(0)
    base = build_llm(cfg.llm, image_token_ids(tok).start, pad_token_id=tok.pad_token_id)
    return build_model(cfg, tok, base_llm=base), tok


@pytest.mark.parametrize("name", ORDER)
def test_exactly_the_stage_groups_train(cfg, name):
    model, _ = tiny_model(cfg)
    spec = STAGES[name]
    module = HealthGPTLitModule(model, spec, total_steps=10, lr_scale=2.0)
    groups = model.parameter_groups()
    expected = {id(p) for g in spec.trains for p in groups[g]}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == expected
    vocab = ("embeddings", "head", "image_rows", "llm")  # share the embedding/head tensors
    for g in GROUPS:  # every other group is frozen
        shared = g in vocab and bool(set(vocab) & set(spec.trains))
        if g not in spec.trains and not shared:
            assert not any(p.requires_grad for p in groups[g]), f"{g} should be frozen in {name}"
    emb, head = model.llm.get_input_embeddings().weight, model.llm.get_output_embeddings().weight
    assert not any(p.requires_grad for p in groups["llm"] if p is not emb and p is not head), \
        f"HealthGPT never trains the base LLM's layers ({name})"
    opt = module.configure_optimizers()["optimizer"]
    assert [pg["name"] for pg in opt.param_groups] == list(spec.trains)
    for pg in opt.param_groups:
        assert pg["lr"] == pytest.approx(spec.lrs[pg["name"]] * 2.0) and pg["weight_decay"] == 0.0
    assert trainable_parameter_count(model, spec) > 0


def test_the_recipe_matches_the_paper():
    assert STAGES["stage1_comprehension"].trains == ("abstract_adapter",)
    assert set(STAGES["stage2"].trains) == {"embeddings", "head"} and STAGES["stage2"].schedule == "constant"
    assert set(STAGES["stage3_comprehension"].trains) == {"abstract_adapter", "comp_plugin"}
    # + this project's learned grid positions of the image tokens (model/image_positions.py), which
    # train with the image rows in stage 1 and with the generation plugin in stage 3
    assert set(STAGES["stage1_generation"].trains) == {"concrete_adapter", "gen_plugin", "image_rows", "image_positions"}
    assert set(STAGES["stage3_generation"].trains) == {"concrete_adapter", "gen_plugin", "image_positions"}
    assert STAGES["stage3_comprehension"].lrs["comp_plugin"] == 2e-4 and STAGES["stage1_comprehension"].lrs["abstract_adapter"] == 1e-3
    assert stages_before("stage3_generation") == ["stage1_comprehension", "stage1_generation", "stage2"]


def test_the_papers_1d_positions_leave_no_position_group(cfg):
    """``image_tokens.positions = "none"``: the group is empty and no optimizer group is made for it."""
    model, _ = tiny_model(build_config("tiny", "smoke", {**SMALL, "image_tokens.positions": "none"}))
    assert model.image_positions is None and model.parameter_groups()["image_positions"] == []
    module = HealthGPTLitModule(model, STAGES["stage3_generation"], total_steps=10)
    names = [pg["name"] for pg in module.configure_optimizers()["optimizer"].param_groups]
    assert names == ["concrete_adapter", "gen_plugin"]


def _gen_batch(cfg, tok, n=2):
    codes = torch.randint(0, cfg.vq.n_embed, (cfg.vq.grid_size, cfg.vq.grid_size))
    ex = [encode_example(tok, user_text("Reconstruct this image.", True), cfg.vision.num_tokens,
                         cfg.llm.max_position_embeddings, image_codes=codes, generation=True) for _ in range(n)]
    batch = collate(ex, tok.pad_token_id)
    batch.update(features=torch.randn(n, cfg.vision.num_tokens, cfg.vision.hidden_size), task="generation")
    return batch


def test_image_rows_train_only_the_new_rows(cfg):
    model, tok = tiny_model(cfg)
    module = HealthGPTLitModule(model, STAGES["stage1_generation"], total_steps=10, lr_scale=50.0)
    opt = module.configure_optimizers()["optimizer"]
    emb = model.llm.get_input_embeddings().weight
    before = emb.detach().clone()
    loss = module.training_step({"generation": _gen_batch(cfg, tok)}, 0)
    loss.backward()
    opt.step()
    start = model.block.start
    assert torch.equal(emb[:start], before[:start]), "text rows must not move"
    assert not torch.equal(emb[start:], before[start:]), "image rows must learn"


def test_stage2_steps_both_tasks(cfg):
    model, tok = tiny_model(cfg)
    module = HealthGPTLitModule(model, STAGES["stage2"], total_steps=10)
    comp = collate([encode_example(tok, user_text("How many lesions are there?", True), cfg.vision.num_tokens,
                                   cfg.llm.max_position_embeddings, answer="2")] * 2, tok.pad_token_id)
    comp.update(features=torch.randn(2, cfg.vision.num_tokens, cfg.vision.hidden_size), task="comprehension")
    loss = module.training_step({"comprehension": comp, "generation": _gen_batch(cfg, tok)}, 0)
    assert torch.isfinite(loss) and loss.requires_grad


def test_stage_artifacts_are_checked(cfg, tmp_path):
    model, _ = tiny_model(cfg)
    with pytest.raises(InputError, match="no complete artifact.*fit --stage stage2"):
        apply_stage(model, tmp_path / "missing", cfg, "stage2")
    from healthgpt_lite.artifacts import atomic_save_safetensors, write_meta

    other = build_config("small", "smoke")
    write_meta(tmp_path / "s", other, "stage2")
    with pytest.raises(InputError, match="made for preset 'small', but this run uses preset 'tiny'"):
        apply_stage(model, tmp_path / "s", cfg, "stage2")
    write_meta(tmp_path / "t", cfg, "stage2")
    atomic_save_safetensors({"llm.lm_head.weight": torch.zeros(3, 3)}, tmp_path / "t" / "trained.safetensors")
    with pytest.raises(InputError, match="does not fit this model"):
        apply_stage(model, tmp_path / "t", cfg, "stage2")


def test_task_switch_is_exact_and_in_place(cfg):
    model, tok = tiny_model(cfg)
    model.eval()  # no dropout
    with torch.no_grad():  # give both plugins non-zero B so they differ from the base
        for n, p in model.llm.named_parameters():
            if ".B." in n or n.endswith("B.weight"):
                p.normal_(0, 0.5)
    batch = _gen_batch(cfg, tok, 1)
    run = lambda: model(batch["input_ids"], features=batch["features"]).logits  # noqa: E731
    with torch.no_grad():
        model.set_task("generation")
        a = run()
        model.set_task("comprehension")
        b = run()
        model.set_task("generation")
        c = run()
    assert torch.equal(a, c) and not torch.allclose(a, b)


def test_stage2_gradients_are_the_same_with_activation_checkpointing():
    """Stage 2 runs both tasks' forwards before one backward; recomputed layers must use the plugin
    of their own task, not the one set last (SMALL: both plugins have rank 8, so a wrong plugin
    would not even fail loudly)."""
    cfg = build_config("tiny", "smoke", {**SMALL, "lora.comprehension.dropout": 0.0, "lora.generation.dropout": 0.0})

    def gradients(checkpointing: bool) -> dict[str, torch.Tensor]:
        model, tok = tiny_model(cfg)
        with torch.no_grad():  # plugins that change the output (B starts at zero)
            for n, p in model.llm.named_parameters():
                if ".B." in n or n.endswith("B.weight"):
                    p.normal_(0, 0.5)
        module = HealthGPTLitModule(model, STAGES["stage2"], total_steps=10)
        if checkpointing:
            model.llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.train()  # transformers checkpoints only in train mode
        torch.manual_seed(1)
        comp = collate([encode_example(tok, user_text("How many lesions are there?", True), cfg.vision.num_tokens,
                                       cfg.llm.max_position_embeddings, answer="2")] * 2, tok.pad_token_id)
        comp.update(features=torch.randn(2, cfg.vision.num_tokens, cfg.vision.hidden_size), task="comprehension")
        module.training_step({"comprehension": comp, "generation": _gen_batch(cfg, tok)}, 0).backward()
        return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    plain, recomputed = gradients(False), gradients(True)
    assert plain.keys() == recomputed.keys() and plain
    for n in plain:
        torch.testing.assert_close(recomputed[n], plain[n], rtol=1e-5, atol=1e-6, msg=f"{n}: recomputed gradients differ")


def _comp_batch(cfg, tok):
    qa = [("Which modality is this?", "CT"), ("How many lesions are there? Answer with a number.", "2"),
          ("Where is the largest lesion?", "in the liver, left lower part")]  # different lengths: padding
    ex = [encode_example(tok, user_text(q, True), cfg.vision.num_tokens, cfg.llm.max_position_embeddings, answer=a)
          for q, a in qa]
    batch = collate(ex, tok.pad_token_id)
    batch.update(features=torch.randn(len(qa), cfg.vision.num_tokens, cfg.vision.hidden_size), task="comprehension")
    return batch


@pytest.mark.parametrize("task", ["comprehension", "generation"])
def test_the_training_loss_is_the_full_heads_loss_at_the_labelled_positions(cfg, task):
    """``model.loss`` applies the LM head to the labelled positions only; value and gradients must
    equal those of ``forward(..., labels).loss``, which projects every position (float64 weights;
    transformers' loss casts the logits to float32, hence the float32 tolerance)."""
    model, tok = tiny_model(cfg)
    model.double().eval().set_task(task)
    batch = _comp_batch(cfg, tok) if task == "comprehension" else _gen_batch(cfg, tok, 2)
    assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()
    args = batch["input_ids"], batch["attention_mask"]
    losses, grads = [], []
    for loss_of in (lambda: model(*args, batch["labels"], features=batch["features"].double()).loss,
                    lambda: model.loss(batch["input_ids"], batch["labels"], batch["attention_mask"],
                                       features=batch["features"].double())):
        model.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(losses[1], losses[0].double(), rtol=1e-6, atol=0)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=1e-5, atol=1e-8, msg=n)
