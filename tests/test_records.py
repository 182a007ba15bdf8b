import json

import pytest

from healthgpt_lite.data.phantoms import make_patient
from healthgpt_lite.data.records import (COMPREHENSION_TASKS, GENERATION_TASKS, IMAGE_TOKEN, TARGET_PLACEHOLDER,
                                          load_records, patient_records, validate_record)
from healthgpt_lite.errors import InputError


def test_every_task_from_one_patient():
    recs = patient_records(make_patient(6), "train", ("en", "zh"), 4)
    tasks = {r["task"] for r in recs}
    assert tasks == set(COMPREHENSION_TASKS) | set(GENERATION_TASKS)
    for r in recs:
        validate_record(r)
        if r["task_type"] == "generation":
            assert r["conversations"][1]["value"] == TARGET_PLACEHOLDER and r["target_image"]
    assert {r["lang"] for r in recs if r["task_type"] == "comprehension"} == {"en", "zh"}
    sr = [r for r in recs if r["task"] == "super_resolution"]
    assert all(r["image"].endswith("_lr.png") for r in sr)
    r2i = next(r for r in recs if r["task"] == "report2image")
    assert r2i["image"] is None and IMAGE_TOKEN not in r2i["conversations"][0]["value"]


def test_answers_match_the_ground_truth():
    for i in range(30):
        p = make_patient(i)
        for r in patient_records(p, "train", ("en",), 4):
            q, a = r["conversations"][0]["value"], r["conversations"][1]["value"]
            if r.get("question_type") == "open_count":
                assert a == str(len(p.lesions))
            if "Is there a lesion in this image" in q:
                assert a == ("Yes" if p.lesions else "No")
            if r.get("question_type") == "open_modality":
                assert a == {"ct": "CT", "mri": "MRI", "xray": "X-ray"}[r["modality"]]
            if r.get("question_type") == "open_location":
                largest = max(p.lesions, key=lambda l: l.diameter_mm).organ if p.lesions else "none"
                assert a == largest


def test_chinese_records():
    recs = patient_records(make_patient(3), "train", ("zh",), 4)
    report = next(r for r in recs if r["task"] == "report")
    assert "可见3个病灶" in report["conversations"][1]["value"]


def test_split_by_patient(smoke_data):
    seen = {}
    for split in ("train", "val", "test"):
        recs = load_records(smoke_data / f"{split}.json")
        assert recs, split
        patients = {r["patient"] for r in recs}
        for other, ps in seen.items():
            assert not patients & ps, f"{split} shares patients with {other}"
        seen[split] = patients
        for r in recs:
            assert r["split"] == split
            for key in ("image", "target_image"):
                if r.get(key):
                    assert (smoke_data / r[key]).is_file()


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not valid JSON"),
    (json.dumps([{"id": "a"}]), "missing key 'conversations'"),
    (json.dumps([{"id": "a", "conversations": [{"from": "human", "value": "hi"}]}]), "human/gpt pairs"),
    (json.dumps([{"id": "a", "conversations": [{"from": "human", "value": "  "}, {"from": "gpt", "value": "x"}]}]),
     "empty human turn"),
    (json.dumps([{"id": "a", "image": "x.png", "conversations": [{"from": "human", "value": "q"},
                                                                  {"from": "gpt", "value": "a"}]}]), "lacks the <image>"),
])
def test_bad_records_are_rejected(tmp_path, content, fragment):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InputError, match=fragment):
        load_records(path)


def test_json_lines(tmp_path):
    rec = {"id": "a", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec) + "\n" + json.dumps(dict(rec, id="b")) + "\n")
    assert len(load_records(path)) == 2
