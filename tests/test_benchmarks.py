"""VQA-RAD / SLAKE / PathVQA: converted from their own source formats to LLaVA JSON, and
scored closed / open as each data set defines the split."""
import json

import pytest

from healthgpt_lite.cli import main as cli_main
from healthgpt_lite.data.convert import convert_file, convert_rows
from healthgpt_lite.data.records import load_records
from healthgpt_lite.errors import InputError
from healthgpt_lite.eval.benchmarks import (benchmark_records, evaluate_benchmark, open_recall, read_predictions,
                                            score_rows)
from healthgpt_lite.scale.stand_ins import write_benchmark_source


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("benchmarks")
    return {fmt: write_benchmark_source(root / fmt, fmt, n_patients=4) for fmt in ("vqa-rad", "slake", "pathvqa")}


@pytest.mark.parametrize("fmt", ["vqa-rad", "slake", "pathvqa"])
def test_convert_each_format(sources, tmp_path, fmt):
    src, images = sources[fmt]
    info = convert_file(src, tmp_path / "out.json", fmt, image_root=images)
    records = load_records(tmp_path / "out.json")  # valid LLaVA records
    assert info["records"] == len(records) == 8 and info["closed"] == 4 and info["open"] == 4
    closed = [r for r in records if r["answer_type"] == "closed"]
    assert all(r["question_type"] == "yes_no" and r["task"] == "vqa_closed" for r in closed)
    assert all((images / r["image"]).is_file() for r in records)
    assert records[1]["conversations"][0]["value"] == "<image>\nHow many lesions are there?"
    assert records[1]["conversations"][1]["value"].isdigit()  # VQA-RAD's numeric answers become text


def test_split_language_and_closed_rules():
    rad = [{"qid": 1, "image_name": "a.jpg", "question": "Is this CT or MRI?", "answer": "CT", "answer_type": "CLOSED ",
            "phrase_type": "test_para", "qid_linked_id": "x1"},  # the public file's columns: it holds both splits
           {"qid": 2, "image_name": "a.jpg", "question": "Is there a mass?", "answer": "yes", "answer_type": "closed",
            "phrase_type": "freeform", "qid_linked_id": "x2"}]
    test = convert_rows(rad, "vqa-rad", split="test")
    assert [r["id"] for r in test] == ["vqa-rad_1"] and test[0]["question_type"] == "choice"  # closed, not yes/no
    assert [r["id"] for r in convert_rows(rad, "vqa-rad", split="train")] == ["vqa-rad_2"]
    slake = [{"qid": 7, "img_name": "x/source.jpg", "question": "哪个器官?", "answer": "肝脏", "answer_type": "OPEN",
              "q_lang": "zh", "modality": "CT"},
             {"qid": 8, "img_name": "x/source.jpg", "question": "Which organ?", "answer": "Liver", "answer_type": "OPEN",
              "q_lang": "en", "modality": "CT"}]
    (en,) = convert_rows(slake, "slake", lang="en")
    assert en["lang"] == "en" and en["modality"] == "ct" and en["question_type"] == "open"
    path = [{"image": "t.jpg", "question": "Is this malignant?", "answer": "No."},
            {"image": "t.jpg", "question": "What is shown?", "answer": "necrosis"}]
    assert [r["answer_type"] for r in convert_rows(path, "pathvqa")] == ["closed", "open"]  # PathVQA: yes/no = closed


@pytest.mark.parametrize("rows, fmt, message", [
    ([{"image_name": "a.jpg", "answer": "yes", "answer_type": "CLOSED"}], "vqa-rad", "row 0: missing or empty 'question'"),
    ([{"image_name": "a.jpg", "question": "q?", "answer": " ", "answer_type": "OPEN"}], "vqa-rad", "'answer'"),
    ([{"question": "q?", "answer": "yes", "answer_type": "OPEN"}], "slake", "no image file name"),
    ([{"img_name": "a.jpg", "question": "q?", "answer": "yes", "answer_type": "MAYBE"}], "slake", "answer_type 'MAYBE'"),
    ([{"image": "a.jpg", "question": "q?", "answer": "yes"}], "medvqa", "unknown format"),
    ([{"img_name": "a.jpg", "question": "q?", "answer": "y", "answer_type": "OPEN", "q_lang": "zh"}], "slake",
     "no slake questions left"),
])
def test_bad_sources_are_named(rows, fmt, message):
    with pytest.raises(InputError, match=message):
        convert_rows(rows, fmt, lang="en")


def test_unreadable_sources_and_missing_images(sources, tmp_path):
    pickled = tmp_path / "train_vqa.pkl"
    pickled.write_bytes(b"\x80\x04\x95 not json")
    with pytest.raises(InputError, match="pickle"):
        convert_file(pickled, tmp_path / "o.json", "pathvqa")
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(InputError, match="not valid JSON"):
        convert_file(tmp_path / "broken.json", tmp_path / "o.json", "pathvqa")
    with pytest.raises(InputError, match="not found under"):
        convert_file(sources["slake"][0], tmp_path / "o.json", "slake", image_root=tmp_path)


def test_scores_closed_accuracy_and_open_recall():
    rows = [dict(question_type="yes_no", modality="ct", lang="en", prediction="Yes.", answer="yes"),
            dict(question_type="choice", modality="ct", lang="en", prediction="MRI", answer="CT"),
            dict(question_type="open", modality="ct", lang="en", prediction="the left lung", answer="left lung"),
            dict(question_type="open", modality="ct", lang="en", prediction="lung", answer="left lung")]
    s = score_rows(rows)
    assert s["closed"] == 0.5 and s["open"] == 0.5 and s["open_recall"] == pytest.approx(0.75)
    assert open_recall("", "left lung") == 0.0


def test_benchmark_command_scores_predictions(sources, tmp_path, capsys):
    src, _ = sources["slake"]
    converted = tmp_path / "slake_test.json"
    assert cli_main(["data", "convert", "--format", "slake", str(src), str(converted)]) == 0
    records = load_records(converted)
    answers = tmp_path / "answers.jsonl"  # a model that always says "Yes" and "1"
    answers.write_text("".join(json.dumps({"id": r["id"], "prediction": "Yes" if r["answer_type"] == "closed" else "1"})
                               + "\n" for r in records))
    assert cli_main(["benchmark", str(converted), "--predictions", str(answers), "--out", str(tmp_path / "eval")]) == 0
    scores = json.loads((tmp_path / "eval" / "scores.json").read_text())
    truth = [r["conversations"][1]["value"] for r in records if r["answer_type"] == "closed"]
    assert scores["closed"] == pytest.approx(sum(t == "Yes" for t in truth) / len(truth)) and scores["n/closed"] == 4
    assert len((tmp_path / "eval" / "predictions.jsonl").read_text().splitlines()) == len(records)


def test_benchmark_refuses_what_it_cannot_score(sources, tmp_path):
    generated = tmp_path / "raw.json"
    generated.write_text(json.dumps([{"id": "x", "image": "a.png", "conversations": [
        {"from": "human", "value": "<image>\nq?"}, {"from": "gpt", "value": "a"}]}]))
    with pytest.raises(InputError, match="data convert"):
        benchmark_records(generated)
    converted = tmp_path / "c.json"
    convert_file(sources["pathvqa"][0], converted, "pathvqa")
    with pytest.raises(InputError, match="no prediction"):
        evaluate_benchmark(converted, {})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    with pytest.raises(InputError, match="line 1"):
        read_predictions(bad)
