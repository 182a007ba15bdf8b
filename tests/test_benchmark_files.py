"""Benchmark files as they are published (excerpts in tests/fixtures/benchmarks/, sources and
licences in its README): every case either converts / loads / scores correctly or stops with an
error naming the row and the fix; no record is silently lost or mistyped."""
import json
import shutil
import warnings
from pathlib import Path

import pytest

from healthgpt_lite.cli import main as cli_main
from healthgpt_lite.data.convert import convert_file, convert_source, read_source
from healthgpt_lite.data.records import load_records
from healthgpt_lite.errors import InputError
from healthgpt_lite.eval.benchmarks import benchmark_records, score_rows
from healthgpt_lite.eval.metrics import normalize_answer, yes_no

FIX = Path(__file__).parent / "fixtures" / "benchmarks"
PUBLIC = FIX / "vqa_rad" / "VQA_RAD Dataset Public.json"


def convert(path: Path, fmt: str, **kw):
    return convert_source(read_source(path), fmt, source=str(path), **kw)


def closed_row(prediction, answer, question_type="yes_no", lang="en"):
    return dict(question_type=question_type, modality="ct", lang=lang, prediction=prediction, answer=answer)


# ----------------------------------------------------------------------------- VQA-RAD
def test_public_vqa_rad_file_splits_by_phrase_type_and_keeps_its_fields():
    test = convert(PUBLIC, "vqa-rad", split="test")
    assert [r["source"]["phrase_type"] for r in test.records] == ["test_freeform", "test_para"]
    train = convert(PUBLIC, "vqa-rad", split="train").records
    assert len(train) == 5 and len(test.records) + len(train) == len(read_source(PUBLIC))
    by_qid = {str(r["source"]["qid"]): r for r in train}
    assert by_qid["1511"]["conversations"][1]["value"] == "4" and by_qid["1511"]["question_type"] == "open"
    assert by_qid["2156"]["answer_type"] == "closed" and by_qid["2156"]["question_type"] == "choice"  # "CLOSED ", "Maybe"
    assert by_qid["20"]["source"]["question_type"] == "SIZE, PRES"  # VQA-RAD's own type is kept, not overwritten
    assert by_qid["20"]["organ"] == "head" and by_qid["20"]["source"]["image_organ"] == "HEAD"
    assert by_qid["0"]["id"] == "vqa-rad_0"


def test_mevf_split_files_are_whole_splits(tmp_path):
    """Before: --split test kept only the test_* phrase types of MEVF's testset.json (75 of 450)."""
    rows = read_source(FIX / "vqa_rad_mevf" / "testset.json")
    test = convert(FIX / "vqa_rad_mevf" / "testset.json", "vqa-rad", split="test")
    assert len(test.records) == len(rows) == 8 and "testset.json is the test split" in test.split_rule
    with pytest.raises(InputError, match="trainset.json is the train split, not test"):
        convert(FIX / "vqa_rad_mevf" / "trainset.json", "vqa-rad", split="test")
    renamed = tmp_path / "rad_questions.json"
    shutil.copy(FIX / "vqa_rad_mevf" / "testset.json", renamed)
    with pytest.raises(InputError, match="file name does not say which split.*--split all"):
        convert(renamed, "vqa-rad", split="test")
    assert len(convert(renamed, "vqa-rad").records) == 8


def test_hugging_face_export_without_qid_converts():
    result = convert(FIX / "vqa_rad_hf" / "test.jsonl", "vqa-rad", split="test")
    ids = [r["id"] for r in result.records]
    assert ids == ["vqa-rad_test_0", "vqa-rad_test_1", "vqa-rad_test_2"]
    assert [r["image"] for r in result.records] == ["images/test/0.jpg", "images/test/1.jpg", "images/test/2.jpg"]
    assert [r["question_type"] for r in result.records] == ["yes_no", "open", "open"]  # no answer_type: yes/no = closed


# ----------------------------------------------------------------------------- SLAKE
def test_slake_empty_answer_row_is_named_or_skipped_with_a_warning(tmp_path):
    src = FIX / "slake" / "train.json"
    with pytest.raises(InputError, match=r"row 2 \(qid 1622\): missing or empty 'answer'.*--skip-invalid"):
        convert(src, "slake")
    with pytest.warns(UserWarning, match=r"skipped .*row 2 \(qid 1622\)"):
        info = convert_file(src, tmp_path / "train.json", "slake", skip_invalid=True)
    assert info["skipped"] == 1 and info["records"] == len(read_source(src)) - 1


def test_slake_split_follows_the_file_it_is(tmp_path):
    """Before: --split was ignored for SLAKE (any split requested gave the whole file)."""
    assert len(convert(FIX / "slake" / "test.json", "slake", split="test").records) == 10
    with pytest.raises(InputError, match="test.json is the test split, not train"):
        convert(FIX / "slake" / "test.json", "slake", split="train")
    hf_name = tmp_path / "validation.json"  # the Hugging Face copy renamed validate.json
    shutil.copy(FIX / "slake" / "test.json", hf_name)
    assert convert(hf_name, "slake", split="validate").split_rule.endswith("is the validate split")


@pytest.mark.parametrize("lang, expected", [("EN", 4), ("Zh", 6), ("all", 10)])
def test_lang_is_case_insensitive(lang, expected):
    """Before: --lang EN found nothing."""
    records = convert(FIX / "slake" / "test.json", "slake", lang=lang).records
    assert len(records) == expected and all(r["lang"] in ("en", "zh") for r in records)


def test_unknown_language_is_refused():
    with pytest.raises(InputError, match="lang='fr'"):
        convert(FIX / "slake" / "test.json", "slake", lang="fr")
    with pytest.raises(InputError, match=r"no vqa-rad questions left.*languages: \['en'\]"):
        convert(PUBLIC, "vqa-rad", lang="zh")


def test_chinese_closed_questions_are_typed_yes_no():
    """Before: 是的 / 不是 / 包含 / 有 ... were typed choice, so the yes/no breakdown missed Chinese."""
    records = convert(FIX / "slake" / "train.json", "slake", lang="zh").records
    types = {r["conversations"][1]["value"]: r["question_type"] for r in records}
    assert types == {"包含": "yes_no", "不包含": "yes_no", "不是": "yes_no", "是的": "yes_no", "有": "yes_no",
                     "没有": "yes_no", "肺": "choice"}
    assert records[0]["source"]["content_type"] and records[0]["source"]["q_lang"] == "zh"


# ----------------------------------------------------------------------------- PathVQA
def test_pathvqa_windows_paths_find_their_images_and_ids_differ_across_splits(tmp_path):
    """Before: images\\test\\x.jpg was kept as is (never found), and train and test both had pathvqa_0."""
    from PIL import Image

    images = tmp_path / "images"
    for name in ("train/train_0000.jpg", "test/test_0000.jpg", "test/test_0001.jpg"):
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(images / name)
    ids = set()
    for split in ("train", "test"):
        out = tmp_path / f"{split}.json"
        convert_file(FIX / "pathvqa" / f"{split}.jsonl", out, "pathvqa", split=split, image_root=tmp_path)
        ids |= {r["id"] for r in load_records(out)}
    assert ids == {"pathvqa_train_0", "pathvqa_train_1", "pathvqa_test_0", "pathvqa_test_1"}


def test_bad_pathvqa_rows_are_named_never_mistyped(tmp_path):
    src = tmp_path / "test.jsonl"
    src.write_text('{"image": "a.jpg", "question": "Is it benign?", "answer": NaN}\n'
                   '{"image": "C:\\\\data\\\\a.jpg", "question": "q?", "answer": "yes"}\n')
    with pytest.raises(InputError, match=r"row 0: missing or empty 'answer' \(got NaN\)"):  # never the text "nan"
        convert(src, "pathvqa")
    src.write_text('{"image": "C:\\\\data\\\\a.jpg", "question": "q?", "answer": "yes"}\n')
    with pytest.raises(InputError, match="row 0: image path .* is absolute"):
        convert(src, "pathvqa")


def test_repeated_ids_in_a_source_are_refused(tmp_path):
    rows = read_source(FIX / "vqa_rad_mevf" / "testset.json")
    src = tmp_path / "testset.json"
    src.write_text(json.dumps(rows + rows[:1]))
    with pytest.raises(InputError, match="records 0 and 8 share the id 'vqa-rad_680'"):
        convert(src, "vqa-rad")


# ----------------------------------------------------------------------------- closed-answer scoring
@pytest.mark.parametrize("text, expected", [
    ("Yes, it is.", "yes"), ("No.", "no"), ("no", "no"), ("There is no mass.", "no"), ("是的，包含肝脏", "yes"),
    ("图中不包含肝脏", "no"), ("不是", "no"), ("有", "yes"), ("nodule", None), ("Lung", None), ("", None),
])
def test_yes_no_reads_the_answer_given(text, expected):
    assert yes_no(text) == expected


def test_closed_answers_are_scored_as_llava_med_does_without_its_flaws():
    """Before: "Yes, it is." against "yes" counted as wrong; 是 against 包含 as wrong."""
    rows = [closed_row("Yes, it is.", "yes"), closed_row("是", "包含", lang="zh"), closed_row("没有", "不存在", lang="zh"),
            closed_row("No, there is none.", "No"), closed_row("nodule", "no"), closed_row("Yes", "No"),
            closed_row("The lung.", "Lung", question_type="choice")]
    s = score_rows(rows)
    assert s["closed/yes_no"] == pytest.approx(4 / 6)  # a wrong yes/no answer stays in the count
    assert s["closed/choice"] == 1.0 and s["n/closed"] == 7
    assert normalize_answer("Two lesions") == normalize_answer("2 lesions")


# ----------------------------------------------------------------------------- LLaVA-format files
def test_llava_med_jsonl_without_id_loads():
    """Before: refused (missing key 'id')."""
    records = load_records(FIX / "llava_med" / "llava_med_eval_qa50_qa.jsonl")
    assert [r["id"] for r in records] == ["0", "1", "2"]
    assert records[0]["conversations"][0]["value"].endswith("<image>") and records[0]["image"] == "18063892_F3.jpg"
    assert records[2]["conversations"][1]["value"].startswith("No, there are no inflammatory cells")
    assert records[0]["pair_id"] == "18063892_F3"  # its own fields stay


def test_vl_health_template_with_image_lists(tmp_path):
    """Before: a raw TypeError from the records loader."""
    first, second = load_records(FIX / "vl_health" / "comprehension.json")
    assert first["image"] == "images/ct/0001.png" and second["image"] is None
    assert first["id"] == "comprehension_0"  # no id in the template: file name + row
    records = json.loads((FIX / "vl_health" / "comprehension.json").read_text())
    for image, message in ((["a.png", "b.png"], "lists 2 images"), ([1], r"is a list holding \['int'\]; expected paths")):
        records[0]["image"] = image
        (tmp_path / "vl.json").write_text(json.dumps(records))
        with pytest.raises(InputError, match=f"record 0: 'image' {message}"):
            load_records(tmp_path / "vl.json")


def test_nan_and_repeated_ids_are_named(tmp_path):
    """Before: both passed without a word."""
    src = FIX / "llava_format" / "pandas_export.json"
    with pytest.raises(InputError, match="record 1: modality is NaN.*write null"):
        load_records(src)
    fixed = tmp_path / "export.json"
    fixed.write_text(src.read_text().replace("NaN", "null"))
    with pytest.warns(UserWarning, match="1 record.* repeat an earlier id, e.g. 'q1' at records 0 and 2"):
        assert len(load_records(fixed)) == 3
    with pytest.raises(InputError, match="repeat an earlier id"):
        benchmark_records(fixed)


def test_llava_med_test_files_score_by_their_answer_type(tmp_path):
    """LLaVA-Med's own VQA-RAD / SLAKE test files: 'conversatons' (sic) and answer_type CLOSED / OPEN only."""
    rec = lambda i, a, kind: {"id": i, "image": "x.jpg", "answer_type": kind, "conversatons": [  # noqa: E731
        {"from": "human", "value": "<image>\nq?"}, {"from": "gpt", "value": a}]}
    path = tmp_path / "test.json"
    path.write_text(json.dumps([rec("1", "yes", "CLOSED"), rec("2", "CT", "CLOSED"), rec("3", "liver", "OPEN")]))
    assert [r["question_type"] for r in benchmark_records(path)] == ["yes_no", "choice", "open"]


def test_cli_convert_reports_skips_and_the_split_rule(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli_main(["data", "convert", "--format", "slake", str(FIX / "slake" / "train.json"),
                         str(tmp_path / "o.json"), "--skip-invalid", "--lang", "EN"]) == 0
    out = capsys.readouterr().out
    assert "'skipped': 1" in out and "'records': 3" in out
    assert cli_main(["data", "convert", "--format", "slake", str(FIX / "slake" / "train.json"), str(tmp_path / "o.json")]) == 2
    assert "--skip-invalid" in capsys.readouterr().err
