"""What the stages learn from: multi-turn conversations about one image, labels on every answer
and on no question, and generation tasks drawn equally often when asked."""
from collections import Counter

import torch

from healthgpt_lite.config import build_config
from healthgpt_lite.data.records import load_records
from healthgpt_lite.data.text_tokenizer import tokenizer_for
from healthgpt_lite.model.multimodal import IGNORE_INDEX, add_turns, encode_example, user_text
from healthgpt_lite.training.datamodule import balance_tasks, group_by_image


def test_added_turns_label_every_answer_and_no_question():
    cfg = build_config("tiny", "smoke")
    tok = tokenizer_for(cfg)
    first = encode_example(tok, user_text("How many lesions are there?", True), 4, 512, answer="2")
    conv = add_turns(tok, first, [("Is there a lesion in the liver?", "Yes"), ("How large is the largest lesion?", "small")], 512)
    labelled = tok.decode(conv["labels"][conv["labels"] != IGNORE_INDEX])
    assert labelled.replace("<|end|>", "|") == "2|Yes|small|"
    assert torch.equal(conv["input_ids"][:len(first["input_ids"])], first["input_ids"])  # the first turn is unchanged
    text = tok.decode(conv["input_ids"])
    assert text.count("<|user|>") == 3 and text.count("<|assistant|>") == 3 and text.count("<image>") == 4
    short = add_turns(tok, first, [("Is there a lesion in the liver?", "Yes")] * 50, len(first["input_ids"]) + 30)
    assert len(short["input_ids"]) <= len(first["input_ids"]) + 30  # turns that do not fit are left out


def test_conversations_group_the_questions_of_one_image(smoke_data):
    recs = [r for r in load_records(smoke_data / "train.json") if r["task_type"] == "comprehension"]
    groups = group_by_image(recs, 4, seed=0)
    assert all(len({r["image"] for r in g}) == 1 and len(g) <= 4 for g in groups)
    assert sorted(r["id"] for g in groups for r in g) == sorted(r["id"] for r in recs)  # every record once
    assert group_by_image(recs, 1, seed=0) == [[r] for r in recs]


def test_balanced_generation_tasks_are_drawn_equally(smoke_data):
    recs = [r for r in load_records(smoke_data / "train.json") if r["task_type"] == "generation"]
    before, after = Counter(r["task"] for r in recs), Counter(r["task"] for r in balance_tasks(recs))
    assert before["reconstruction"] == 3 * before["ct2mri"]
    assert len(set(after.values())) == 1 and set(after) == set(before)
