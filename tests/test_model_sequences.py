import pytest
import torch
from transformers import LogitsProcessorList

from healthgpt_lite.config import build_config
from healthgpt_lite.data import image_token_ids, load_tokenizer
from healthgpt_lite.errors import InputError
from healthgpt_lite.model.decoding import ImageTokenConstraint, codes_from_tokens
from healthgpt_lite.model.llm import build_llm
from healthgpt_lite.model.multimodal import (IGNORE_INDEX, SequenceLayout, collate, encode_example,
                                              splice_visual_tokens, user_text)
from healthgpt_lite.model.vocab import extend_vocabulary


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(n_codes=512)


@pytest.fixture(scope="module")
def llm(tok):
    torch.manual_seed(0)
    cfg = build_config("tiny", "smoke", {"llm.num_layers": 2, "llm.hidden_size": 64, "llm.num_heads": 2,
                                         "llm.num_kv_heads": 2, "llm.intermediate_size": 128})
    block = image_token_ids(tok)
    model = build_llm(cfg.llm, block.start, pad_token_id=tok.pad_token_id)
    extend_vocabulary(model, len(tok), block.start)
    return model.eval()


def test_comprehension_labels_cover_the_answer_only(tok):
    e = encode_example(tok, user_text("How many lesions are there?", True), n_visual=64, max_length=512, answer="2")
    layout = SequenceLayout.from_tokenizer(tok)
    assert int((e["input_ids"] == layout.image).sum()) == 64
    supervised = e["labels"][e["labels"] != IGNORE_INDEX]
    assert tok.decode(supervised) == "2<|end|>"
    assert tok.decode(e["input_ids"][:3]).startswith("<|system|>")


def test_generation_target_is_start_codes_end(tok):
    codes = torch.randint(0, 512, (16, 16))
    e = encode_example(tok, user_text("Convert this CT image into an MRI image.", True), 64, 512,
                       image_codes=codes, generation=True)
    block, layout = image_token_ids(tok), SequenceLayout.from_tokenizer(tok)
    supervised = e["labels"][e["labels"] != IGNORE_INDEX]
    assert len(supervised) == 256 + 2
    assert torch.equal(supervised[:256] - block.first_idx, codes.flatten())
    assert supervised[256] == block.end and supervised[257] == layout.end_turn
    prompt = e["input_ids"][e["labels"] == IGNORE_INDEX]
    assert prompt[-1] == block.start  # generation prompts end with <start_index>


def test_long_text_is_cut_never_the_image(tok):
    long_q = "Convert this CT image into an MRI image. " * 200
    e = encode_example(tok, user_text(long_q, True), 64, 400, image_codes=torch.zeros(16, 16, dtype=torch.long),
                       generation=True)
    assert len(e["input_ids"]) <= 400
    assert int((e["input_ids"] == SequenceLayout.from_tokenizer(tok).image).sum()) == 64
    with pytest.raises(InputError, match="cannot fit max_length=300"):
        encode_example(tok, user_text("q", True), 64, 300, image_codes=torch.zeros(16, 16, dtype=torch.long),
                       generation=True)


@pytest.mark.parametrize("question", ["", "   ", "<image>", None])
def test_empty_question(question):
    with pytest.raises(InputError, match="question is empty"):
        user_text(question, True)


def test_codes_out_of_range(tok):
    with pytest.raises(InputError, match="0..511"):
        encode_example(tok, "<image>\nq", 4, 512, image_codes=torch.tensor([512]), generation=True)


def test_collate_pads_right(tok):
    a = encode_example(tok, "q", 0, 64, answer="a")
    b = encode_example(tok, "a longer question here", 0, 64, answer="b")
    batch = collate([a, b], tok.pad_token_id)
    assert batch["input_ids"].shape[0] == 2 and batch["attention_mask"][0].sum() == len(a["input_ids"])
    assert (batch["labels"][0, len(a["input_ids"]):] == IGNORE_INDEX).all()


def test_splice_puts_visual_tokens_in_order():
    ids = torch.tensor([[5, 9, 9, 6], [9, 9, 7, 7]])
    embeds = torch.zeros(2, 4, 3)
    visual = torch.arange(12.0).reshape(2, 2, 3)
    out = splice_visual_tokens(embeds, ids, visual, image_token_id=9)
    assert torch.equal(out[0, 1:3], visual[0]) and torch.equal(out[1, :2], visual[1])
    assert out[0, 0].abs().sum() == 0
    with pytest.raises(InputError, match="4 <image> positions in the batch but 6"):
        splice_visual_tokens(embeds, ids, torch.zeros(2, 3, 3), 9)


def test_new_rows_start_at_the_mean(tok, llm):
    block = image_token_ids(tok)
    emb, head = llm.get_input_embeddings().weight, llm.get_output_embeddings().weight
    assert emb.shape[0] == len(tok) == head.shape[0]
    assert torch.allclose(emb[block.first_idx + 7], emb[:block.start].mean(0))
    assert torch.allclose(head[block.end], head[:block.start].mean(0))


@pytest.mark.parametrize("do_sample", [False, True])
def test_every_generation_decodes_to_an_image(tok, llm, do_sample):
    """Even an untrained model yields exactly h*w codes, then <end_index>, then <|end|>."""
    block, layout = image_token_ids(tok), SequenceLayout.from_tokenizer(tok)
    grid = 4
    e = encode_example(tok, user_text("Reconstruct this image.", True), 3, 128, generation=True)
    ids = e["input_ids"][None].repeat(2, 1)
    embeds = splice_visual_tokens(llm.get_input_embeddings()(ids), ids, torch.randn(2, 3, 64), layout.image)
    torch.manual_seed(0)
    out = llm.generate(input_ids=ids, inputs_embeds=embeds, attention_mask=torch.ones_like(ids),
                       max_new_tokens=grid * grid + 5, do_sample=do_sample, pad_token_id=tok.pad_token_id,
                       logits_processor=LogitsProcessorList([ImageTokenConstraint(block, grid * grid, layout.end_turn)]))
    new = out[:, ids.shape[1]:]
    codes = codes_from_tokens(new, block, grid)
    assert codes.shape == (2, grid, grid) and codes.min() >= 0 and codes.max() < 512
    assert (new[:, grid * grid] == block.end).all() and (new[:, grid * grid + 1] == layout.end_turn).all()


def test_constraint_leaves_text_rows_alone(tok):
    block = image_token_ids(tok)
    proc = ImageTokenConstraint(block, 4, end_turn_id=4)
    ids = torch.tensor([[1, 2, 3], [1, block.start, block.first_idx]])
    allowed = proc.allowed_mask(ids, len(tok))
    assert allowed[0].all()
    assert allowed[1, block.first_idx:block.first_idx + 512].all() and allowed[1].sum() == 512


def test_codes_from_tokens_rejects_text(tok):
    with pytest.raises(InputError, match="fewer than the 16 image tokens"):
        codes_from_tokens(torch.tensor([[1, 2, 3]]), image_token_ids(tok), 4)
    with pytest.raises(InputError, match="not all <idx_"):
        codes_from_tokens(torch.tensor([[1, 2, 3, 4]]), image_token_ids(tok), 2)


def test_llm_from_local_folder(tmp_path, llm):
    """The real presets load Phi-3 / phi-4 from a local path; exercised on a tiny saved model."""
    llm.save_pretrained(tmp_path / "phi3-tiny")
    cfg = build_config("tiny", "smoke", {"llm.num_layers": 2, "llm.hidden_size": 64, "llm.num_heads": 2,
                                         "llm.num_kv_heads": 2, "llm.intermediate_size": 128,
                                         "llm.pretrained_path": str(tmp_path / "phi3-tiny")})
    loaded = build_llm(cfg.llm, vocab_size=0)
    x = torch.tensor([[1, 2, 3]])
    assert torch.allclose(loaded(x).logits, llm(x).logits)
    wrong = build_config("tiny", "smoke", {"llm.pretrained_path": str(tmp_path / "phi3-tiny")})
    with pytest.raises(InputError, match="hidden_size: checkpoint 64 vs preset 128"):
        build_llm(wrong.llm, vocab_size=0)
    with pytest.raises(InputError, match="no config.json"):
        build_llm(build_config("tiny", "smoke", {"llm.pretrained_path": str(tmp_path)}).llm, vocab_size=0)
