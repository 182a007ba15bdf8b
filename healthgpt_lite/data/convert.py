"""Medical VQA benchmarks -> LLaVA JSON records (the format ``load_records`` and training read).

    python -m healthgpt_lite data convert --format vqa-rad "VQA_RAD Dataset Public.json" vqa_rad_test.json --split test
    python -m healthgpt_lite data convert --format slake Slake1.0/test.json slake_test.json --lang en
    python -m healthgpt_lite data convert --format pathvqa pathvqa_test.jsonl pathvqa_test.json

What each source file holds (the fields read here):

* **VQA-RAD** (``VQA_RAD Dataset Public.json``, one list): ``qid, image_name, question, answer``
  (sometimes a number), ``answer_type`` (``CLOSED`` / ``OPEN``), ``phrase_type`` (``freeform``,
  ``para``, ``test_freeform``, ``test_para``: the ``test_*`` rows are the test split),
  ``image_organ``. Images: ``VQA_RAD Image Folder/<image_name>``.
* **SLAKE** (``train.json``, ``validate.json``, ``test.json``): ``qid, img_name, question,
  answer, answer_type`` (``CLOSED`` / ``OPEN``), ``q_lang`` (``en`` / ``zh``), ``modality``,
  ``location``. Images: ``imgs/<img_name>``.
* **PathVQA**: the original release is pickles (never read here: no pickle from downloaded
  files); export it once to JSON / JSON lines of ``{image, question, answer}`` (e.g. from the
  Hugging Face copy, writing each image to a file). It has no answer type: its closed
  questions are the yes/no ones, as the PathVQA paper defines them.

Closed vs open: the data set's own ``answer_type`` where it has one, else a yes/no answer means
closed. Each record gets ``question_type`` ``yes_no`` / ``choice`` (closed, other answers) /
``open``, which ``eval.metrics.comprehension_scores`` splits into closed accuracy and open
exact match, as for VL-Health-lite.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..artifacts import atomic_write_json
from ..errors import InputError
from .records import IMAGE_TOKEN, validate_record

FORMATS = ("vqa-rad", "slake", "pathvqa")
YES_NO = {"yes", "no"}
# source field names per format: image, question id, language, modality
FIELDS = {
    "vqa-rad": {"image": ("image_name",), "id": "qid"},
    "slake": {"image": ("img_name",), "id": "qid"},
    "pathvqa": {"image": ("image", "image_name", "img_name", "image_path"), "id": None},
}


def read_source(path: str | Path) -> list[dict]:
    """A JSON list or JSON lines file of objects."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: source file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 JSON file (a pickle such as PathVQA's .pkl is never read here: "
                         "export it to JSON lines of {image, question, answer} first)") from None
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(l) for l in text.splitlines() if l.strip()]
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON / JSON lines ({e})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError(f"{path}: expected a list of objects (one per question)")
    return rows


def convert_rows(rows: list[dict], fmt: str, split: str = "all", lang: str = "all", source: str = "source") -> list[dict]:
    """Source rows of ``fmt`` -> validated LLaVA records (see the module docstring)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    out = []
    for i, row in enumerate(rows):
        where = f"{source} row {i}"
        if not _keep(row, fmt, split, lang, where):
            continue
        question, answer = _text(row, "question", where), _text(row, "answer", where)
        image = _image(row, fmt, where)
        closed = _is_closed(row, answer, where)
        qtype = ("yes_no" if answer.lower().strip(" .") in YES_NO else "choice") if closed else "open"
        qid = row.get(FIELDS[fmt]["id"]) if FIELDS[fmt]["id"] else None
        rec = {"id": f"{fmt}_{qid if qid is not None else i}", "image": image,
               "conversations": [{"from": "human", "value": f"{IMAGE_TOKEN}\n{question}"},
                                 {"from": "gpt", "value": answer}],
               "task": "vqa_closed" if closed else "vqa_open", "task_type": "comprehension",
               "question_type": qtype, "answer_type": "closed" if closed else "open",
               "modality": str(row.get("modality") or "unknown").strip().lower(),  # VQA-RAD, PathVQA: none
               "organ": str(row.get("image_organ") or row.get("location") or "unknown").strip().lower(),
               "lang": str(row.get("q_lang", "en")), "dataset": fmt}
        validate_record(rec, where=where)
        out.append(rec)
    if not out:
        raise InputError(f"{source}: no {fmt} questions left after split={split!r}, lang={lang!r}")
    return out


def convert_file(src: str | Path, dst: str | Path, fmt: str, split: str = "all", lang: str = "all",
                 image_root: str | Path | None = None) -> dict:
    """Convert ``src`` into ``dst`` (JSON list, written atomically); with ``image_root``, every
    image must exist there. Returns counts."""
    records = convert_rows(read_source(src), fmt, split, lang, source=str(src))
    if image_root is not None:
        missing = [r["image"] for r in records if not (Path(image_root) / r["image"]).is_file()]
        if missing:
            raise InputError(f"{len(missing)} image(s) of {src} not found under {image_root}, e.g. {missing[:3]}")
    atomic_write_json(dst, records)
    closed = sum(r["answer_type"] == "closed" for r in records)
    return {"records": len(records), "closed": closed, "open": len(records) - closed, "out": str(dst)}


# ----------------------------------------------------------------------------- fields
def _keep(row: dict, fmt: str, split: str, lang: str, where: str) -> bool:
    if split not in ("all", "train", "test"):
        raise InputError(f"split={split!r}; choose all, train or test")
    if fmt == "vqa-rad" and split != "all":
        is_test = str(row.get("phrase_type", "")).startswith("test")
        if is_test != (split == "test"):
            return False
    return lang == "all" or str(row.get("q_lang", "en")) == lang


def _text(row: dict, key: str, where: str) -> str:
    value = row.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # VQA-RAD has numeric answers
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: missing or empty {key!r} (got {value!r})")
    return " ".join(value.split())


def _image(row: dict, fmt: str, where: str) -> str:
    for key in FIELDS[fmt]["image"]:
        if isinstance(row.get(key), str) and row[key].strip():
            return row[key].strip()
    raise InputError(f"{where}: no image file name (expected one of {FIELDS[fmt]['image']})")


def _is_closed(row: dict, answer: str, where: str) -> bool:
    kind = row.get("answer_type")
    if kind is None:  # PathVQA: closed = yes/no
        return answer.lower().strip(" .") in YES_NO
    kind = str(kind).strip().upper()
    if kind not in ("CLOSED", "OPEN"):
        raise InputError(f"{where}: answer_type {row.get('answer_type')!r}; expected CLOSED or OPEN")
    return kind == "CLOSED"
