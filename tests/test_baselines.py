"""The honest baselines and the answer rule behave as documented (smoke data)."""
import json

import torch

from healthgpt_lite.data.facts import ImageFacts, answer_from_facts, facts_of
from healthgpt_lite.data.phantoms import Patient
from healthgpt_lite.data.records import load_records
from healthgpt_lite.eval.aggregate import mean_and_spread, pm
from healthgpt_lite.eval.baselines import GreyLevelTable, lesion_free_xrays, text_baseline_answers, text_baselines
from healthgpt_lite.eval.pixel_reference import PixelReference, split_images


def test_the_answer_rule_gives_every_reference_answer_of_the_data_set(smoke_data):
    patients = {p["pid"]: Patient.from_dict(p) for p in json.loads((smoke_data / "patients.json").read_text())}
    checked = 0
    for split in ("train", "val", "test"):
        for r in load_records(smoke_data / f"{split}.json"):
            if r["task_type"] == "comprehension" and r["question_type"] != "report":
                facts = facts_of(patients[r["patient"]], r["modality"])
                assert answer_from_facts(facts, r["question_type"], r["conversations"][0]["value"], r["lang"]) == \
                    r["conversations"][1]["value"], r["id"]
                checked += 1
    assert checked > 500


def test_answer_rule_reads_the_asked_organ_and_modality():
    facts = ImageFacts("mri", 1, frozenset({"left lung"}), ("left lung", "small"))
    assert answer_from_facts(facts, "yes_no", "Is there a lesion in the left lung?", "en") == "Yes"
    assert answer_from_facts(facts, "yes_no", "Is there a lesion in the liver?", "en") == "No"
    assert answer_from_facts(facts, "yes_no", "这是CT图像吗？", "zh") == "否"
    assert answer_from_facts(facts, "choice", "How many lesions are visible? Options: 0, 1, 2, 3.", "en") == "1"
    assert answer_from_facts(facts, "choice", "Which imaging modality is this? Options: X-ray, CT, MRI.", "en") == "MRI"
    assert answer_from_facts(facts, "open_size", "最大的病灶有多大？", "zh") == "小"


def test_grey_level_table_learns_a_monotone_map_and_keeps_unseen_levels():
    x = torch.linspace(0, 0.5, 128).repeat(4, 3, 128, 1)  # levels 0..128 only
    table = GreyLevelTable.fit(x, 1 - x)  # an inverted contrast
    assert torch.allclose(table(x), 1 - x[:, :1], atol=2e-3)
    assert abs(float(table.table[255]) - 1.0) < 1e-6  # never seen on train: identity


def test_text_baselines_answer_from_the_question_alone(smoke_data):
    tables = text_baselines(smoke_data)
    recs = [r for r in load_records(smoke_data / "train.json") if r["task_type"] == "comprehension"
            and r["question_type"] != "report"]
    answers = text_baseline_answers(tables, recs)
    assert set(answers) == {"majority answer", "blind text prior"}
    by_question = {}
    for r, a in zip(recs, answers["blind text prior"]):
        by_question.setdefault(r["conversations"][0]["value"], set()).add(a)
    assert all(len(a) == 1 for a in by_question.values())  # one answer per question text, whatever the image
    assert len(set(answers["majority answer"])) <= len({(r["question_type"], r["lang"]) for r in recs})


def test_lesion_free_baseline_images_have_no_lesion(smoke_data):
    healthy = {p["pid"] for p in json.loads((smoke_data / "patients.json").read_text())
               if p["split"] == "train" and not p["lesions"]}
    images = lesion_free_xrays(smoke_data, 5, 64)
    assert images.shape == (5, 3, 64, 64) and healthy


def test_pixel_reference_learns_its_training_images(smoke_data):
    """Capacity check: after a short fit it reads the modality of every training image."""
    ref = PixelReference.fit(smoke_data, 64, steps=150, width=8)
    images, _, facts = split_images(smoke_data, "train", 64)
    read = ref.read(images)
    assert sum(r.modality == f.modality for r, f in zip(read, facts)) / len(facts) > 0.95


def test_features_reference_reads_the_frozen_tokens_it_is_given(smoke_data):
    """The features CNN learns from the encoder's comprehension tokens, not from the pixels:
    same capacity check as above through a (random, frozen) ViT, and its input is (M, N, D)."""
    from healthgpt_lite import build_config
    from healthgpt_lite.vision.encoder import HVPEncoder

    v = build_config("tiny").vision
    encoder = HVPEncoder.from_config(v, seed=0)
    ref = PixelReference.fit(smoke_data, 64, steps=150, width=8, encoder=encoder)
    images, _, facts = split_images(smoke_data, "train", 64)
    assert ref.inputs(images[:3]).shape == (3, (v.image_size // v.patch_size) ** 2, v.hidden_size)
    read = ref.read(images)
    assert sum(r.modality == f.modality for r, f in zip(read, facts)) / len(facts) > 0.95
    with torch.no_grad():  # the tokens decide: the same images through another ViT read differently
        other = PixelReference(ref.net, 64, HVPEncoder.from_config(v, seed=1)).read(images)
    assert [r.modality for r in other] != [r.modality for r in read]


def test_mean_and_spread_over_seeds():
    mean, spread = mean_and_spread([{"a": 1.0, "t": "x", "b": {"c": 2}}, {"a": 3.0, "t": "y", "b": {"c": 4}}])
    assert mean == {"a": 2.0, "t": "x", "b": {"c": 3.0}}
    assert abs(spread["a"] - 2 ** 0.5) < 1e-12 and "t" not in spread
    assert pm(0.5, 0.01, 3) == "0.500 ± 0.010" and pm(0.5, 0.0, 1) == "0.500"
