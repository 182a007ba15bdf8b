"""LLaVA-format task records made from a virtual patient (comprehension and generation).

Every record is the JSON VL-Health, VQA-RAD or SLAKE use once converted::

    {"id": "p00003_ct_open_count_en", "image": "images/p00003_ct.png",
     "conversations": [{"from": "human", "value": "<image>\\nHow many lesions are there?"},
                       {"from": "gpt", "value": "3"}],
     "task": "vqa_open", "task_type": "comprehension", "modality": "ct", "lang": "en", ...}

Generation records carry ``target_image``; their answer is the placeholder ``<target_image>``,
which the training pipeline replaces with ``<start_index> <idx_..>*h*w <end_index>`` once the VQ
tokenizer exists (the tokens depend on the tokenizer, the record does not).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import InputError
from .facts import answer_from_facts, facts_of
from .phantoms import LESION_ORGANS, Patient
from .vocabulary import COUNT_WORD, INSTRUCTIONS, MODALITY_NAME, ORGAN_NAME, QUESTIONS, SIZE_NAME, VIEW  # noqa: F401

IMAGE_TOKEN = "<image>"
TARGET_PLACEHOLDER = "<target_image>"
COMPREHENSION_TASKS = ("vqa_closed", "vqa_open", "report")
GENERATION_TASKS = ("ct2mri", "mri2ct", "super_resolution", "reconstruction", "report2image")

# ----------------------------------------------------------------------------- answers
def report_text(p: Patient, modality: str, lang: str) -> str:
    """A short radiology report: the view, then each lesion (largest first) or none."""
    lesions = sorted(p.lesions, key=lambda l: -l.diameter_mm)
    view = VIEW[lang][modality]
    if lang == "en":
        if not lesions:
            return f"{view}. No focal lesion."
        parts = [f"a {l.size_class} {l.diameter_mm:.0f} mm lesion in the {l.organ}" for l in lesions]
        noun = "lesion" if len(lesions) == 1 else "lesions"
        return f"{view}. {COUNT_WORD['en'][len(lesions)]} {noun}: " + ", ".join(parts) + "."
    if not lesions:
        return f"{view}。未见明确病灶。"
    parts = [f"{ORGAN_NAME['zh'][l.organ]}{SIZE_NAME['zh'][l.size_class]}病灶（{l.diameter_mm:.0f}毫米）" for l in lesions]
    return f"{view}。可见{len(lesions)}个病灶：" + "，".join(parts) + "。"


def comprehension_qa(p: Patient, modality: str, lang: str, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """(question_type, question, answer) triples for one image; answers from the ground truth."""
    q, mod_names = QUESTIONS[lang], MODALITY_NAME[lang]
    organ = str(rng.choice(LESION_ORGANS))
    asked_mod = str(rng.choice(list(mod_names)))
    mods = list(mod_names.values())
    rng.shuffle(mods)
    sep = ", " if lang == "en" else "、"
    asked = [
        ("yes_no", q["any_lesion"]),
        ("yes_no", q["organ_lesion"].format(organ=ORGAN_NAME[lang][organ])),
        ("yes_no", q["is_modality"].format(modality=mod_names[asked_mod])),
        ("choice", q["choice_modality"].format(options=sep.join(mods))),
        ("choice", q["choice_count"].format(options=sep.join("0123"))),
        ("open_modality", q["open_modality"]),
        ("open_count", q["open_count"]),
        ("open_location", q["open_location"]),
        ("open_size", q["open_size"]),
    ]
    facts = facts_of(p, modality)
    return [(kind, question, answer_from_facts(facts, kind, question, lang)) for kind, question in asked]


def lesion_free_instruction(instruction: str) -> str:
    """A report->X-ray instruction with its report replaced by the lesion-free report (the guide
    of guided sampling). An instruction in none of the data set's templates is refused."""
    healthy = f"{VIEW['en']['xray']}. No focal lesion."
    for template in INSTRUCTIONS["report2image"]:
        prefix = template.split("{report}")[0]
        if instruction.replace(IMAGE_TOKEN, "").strip().startswith(prefix):
            return prefix + healthy
    raise InputError(f"not a report->X-ray instruction of the data set: {instruction[:60]!r}...")


# ----------------------------------------------------------------------------- records
def _record(rid, p, split, task, task_type, modality, lang, question, answer, image, **extra) -> dict:
    human = f"{IMAGE_TOKEN}\n{question}" if image else question
    rec = {"id": rid, "patient": p.pid, "split": split, "task": task, "task_type": task_type,
           "modality": modality, "lang": lang, "image": image,
           "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": answer}]}
    rec.update(extra)
    return rec


def image_name(p: Patient, modality: str, low_res: bool = False) -> str:
    return f"images/{p.pid}_{modality}{'_lr' if low_res else ''}.png"


def patient_records(p: Patient, split: str, languages: Iterable[str], sr_factor: int, seed: int = 0) -> list[dict]:
    """Every task's records for one patient (docs/PAPERS.md section 4; README "VL-Health-lite").

    Per modality: 2 yes/no + 1 multiple choice (closed), 4 open questions, 1 report, each in a
    language drawn at random. Generation: CT->MRI, MRI->CT, 4x super-resolution (CT, MRI),
    reconstruction (CT, MRI, X-ray) and report->X-ray.
    """
    index = int(p.pid[1:])
    rng = np.random.default_rng([seed, index])
    langs = list(languages)
    out: list[dict] = []
    for m_index, modality in enumerate(("ct", "mri", "xray")):
        img = image_name(p, modality)
        # which questions to ask: 2 of the 3 yes/no, 1 of the 2 choices, all 4 open ones
        picks = [int(i) for i in rng.choice(3, size=2, replace=False)] + [3 + int(rng.integers(2)), 5, 6, 7, 8]
        for i in picks:
            lang = str(rng.choice(langs))
            question_rng = np.random.default_rng([seed, index, m_index, i])  # organ / options drawn
            qtype, question, answer = comprehension_qa(p, modality, lang, question_rng)[i]
            task = "vqa_closed" if qtype in ("yes_no", "choice") else "vqa_open"
            out.append(_record(f"{p.pid}_{modality}_{qtype}_{i}_{lang}", p, split, task, "comprehension",
                               modality, lang, question, answer, img, question_type=qtype))
        lang = str(rng.choice(langs))
        out.append(_record(f"{p.pid}_{modality}_report_{lang}", p, split, "report", "comprehension", modality,
                           lang, QUESTIONS[lang]["report"], report_text(p, modality, lang), img, question_type="report"))

    def gen(task, modality, source, target, **fmt):
        text = str(rng.choice(INSTRUCTIONS[task])).format(modality=MODALITY_NAME["en"][modality], **fmt)
        return _record(f"{p.pid}_{task}_{modality}", p, split, task, "generation", modality, "en",
                       text, TARGET_PLACEHOLDER, source, target_image=target)

    out.append(gen("ct2mri", "mri", image_name(p, "ct"), image_name(p, "mri")))
    out.append(gen("mri2ct", "ct", image_name(p, "mri"), image_name(p, "ct")))
    for m in ("ct", "mri"):
        out.append(gen("super_resolution", m, image_name(p, m, low_res=True), image_name(p, m), factor=sr_factor))
    for m in ("ct", "mri", "xray"):
        out.append(gen("reconstruction", m, image_name(p, m), image_name(p, m)))
    out.append(gen("report2image", "xray", None, image_name(p, "xray"), report=report_text(p, "xray", "en")))
    return out


# ----------------------------------------------------------------------------- loading
REQUIRED_KEYS = ("id", "conversations")


def load_records(path: str | Path, unique_ids: bool = False) -> list[dict]:
    """Load LLaVA-format records (a JSON list, or JSON lines), checking each one's shape.

    Works for VL-Health-lite and for real data sets in LLaVA JSON, in the variants they are
    published in (no ``id``, LLaVA-Med question files, ``image`` as a list: ``llava_files.py``).
    NaN values are refused; repeated ids are warned about (``unique_ids=True``: refused).
    """
    from .json_rows import read_json_rows
    from .llava_files import check_ids, normalize_record

    path = Path(path)
    data = read_json_rows(path, "records file")
    data = [normalize_record(rec, i, path) for i, rec in enumerate(data)]
    for i, rec in enumerate(data):
        validate_record(rec, where=f"{path} record {i}")
    check_ids(data, path, unique_ids)
    return data


def validate_record(rec: dict, where: str = "record") -> None:
    if not isinstance(rec, dict):
        raise InputError(f"{where}: expected an object, got {type(rec).__name__}")
    for k in REQUIRED_KEYS:
        if k not in rec:
            raise InputError(f"{where}: missing key {k!r}")
    conv = rec["conversations"]
    if not isinstance(conv, list) or len(conv) < 2 or len(conv) % 2:
        raise InputError(f"{where}: 'conversations' must be human/gpt pairs")
    for turn, expected in zip(conv, ["human", "gpt"] * len(conv)):
        if not isinstance(turn, dict) or turn.get("from") != expected or not isinstance(turn.get("value"), str):
            raise InputError(f"{where}: turn {turn!r} should be {{'from': '{expected}', 'value': str}}")
        if not turn["value"].strip():
            raise InputError(f"{where}: an empty {expected} turn")
    has_token = IMAGE_TOKEN in conv[0]["value"]
    if bool(rec.get("image")) != has_token:
        raise InputError(f"{where}: 'image' is {rec.get('image')!r} but the first turn "
                         f"{'has' if has_token else 'lacks'} the {IMAGE_TOKEN} token")
