import pytest

from healthgpt_lite.data.text_tokenizer import (CHAT_TOKENS, IMAGE_TOKEN, SYSTEM_PROMPT, add_healthgpt_tokens,
                                            image_token_ids, load_tokenizer, train_tokenizer)
from healthgpt_lite.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(n_codes=512)


@pytest.mark.parametrize("text", [
    "Is there a lesion in the left lung?",
    "胸腹部冠状位CT。可见2个病灶：左肺小病灶（29毫米），肝脏大病灶（55毫米）。",
    "A word it never saw: pneumomediastinum, 气胸, émphysème 🫁",
    "<|user|>\n<image>\nHow many lesions are there?<|end|>\n<|assistant|>\n2<|end|>",
])
def test_round_trip_english_and_chinese(tok, text):
    assert tok.decode(tok(text)["input_ids"]) == text


def test_special_tokens_are_single_ids(tok):
    for t in [*CHAT_TOKENS, IMAGE_TOKEN, "<start_index>", "<idx_0>", "<idx_511>", "<end_index>"]:
        assert len(tok(t)["input_ids"]) == 1, t


def test_image_block_is_contiguous(tok):
    ids = image_token_ids(tok)
    assert ids.n_codes == 512
    assert tok.convert_ids_to_tokens(ids.first_idx + 37) == "<idx_37>"
    assert tok.convert_tokens_to_ids("<start_index>") == ids.start and ids.end == ids.first_idx + 512


def test_chat_template_is_phi3(tok):
    text = tok.apply_chat_template([{"role": "system", "content": SYSTEM_PROMPT},
                                    {"role": "user", "content": "<image>\nq"}], tokenize=False, add_generation_prompt=True)
    assert text == f"<|system|>\n{SYSTEM_PROMPT}<|end|>\n<|user|>\n<image>\nq<|end|>\n<|assistant|>\n"


def test_codebook_mismatch_is_a_clear_error(tmp_path):
    """A tokenizer of one's own, saved with 512 codes, is refused for a 1024-code VQ, naming the fix."""
    load_tokenizer(n_codes=512).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="512 <idx_\\*> tokens but the VQ codebook has 1024"):
        load_tokenizer(tmp_path, n_codes=1024)


def test_the_shipped_tokenizer_serves_every_codebook_size():
    """The shipped BPE gets an image block of the VQ's size (small: 1024 codes); text ids stay the same."""
    from healthgpt_lite.data.text_tokenizer import image_token_ids

    a, b = load_tokenizer(n_codes=512), load_tokenizer(n_codes=1024)
    text = "The CT shows a lesion in the liver. 肝脏"
    assert a(text)["input_ids"] == b(text)["input_ids"]
    assert image_token_ids(b).n_codes == 1024 and image_token_ids(b).start == image_token_ids(a).start
    assert b.convert_ids_to_tokens(image_token_ids(b).first_idx + 1023) == "<idx_1023>"


def test_missing_tokenizer_folder(tmp_path):
    with pytest.raises(InputError, match="no tokenizer here"):
        load_tokenizer(tmp_path)


def test_a_plain_llm_tokenizer_gets_the_same_block(tmp_path):
    """The real presets load Phi-3's tokenizer from a local folder and add the same tokens;
    exercised here on a tokenizer saved without them."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    base = Tokenizer(models.BPE())
    base.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    base.train_from_iterator(["plain text only"] * 10, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    PreTrainedTokenizerFast(tokenizer_object=base, eos_token="<|endoftext|>").save_pretrained(tmp_path)
    tok = load_tokenizer(tmp_path, n_codes=64)
    assert image_token_ids(tok).n_codes == 64
    assert all(len(tok(t)["input_ids"]) == 1 for t in [*CHAT_TOKENS, IMAGE_TOKEN])
    add_healthgpt_tokens(tok, 64)  # idempotent
    assert image_token_ids(tok).n_codes == 64


def test_train_small_tokenizer():
    tok = train_tokenizer(["ab ab ab cd", "病灶 病灶"] * 20, vocab_size=300, n_codes=8)
    assert image_token_ids(tok).n_codes == 8
    assert tok.decode(tok("病灶 ab")["input_ids"]) == "病灶 ab"
