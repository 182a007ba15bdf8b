"""Reading one row of a benchmark's own file: its text, image path, id, closed/open label, split.

Every rule here is one a published file needs (``tests/fixtures/benchmarks/`` holds excerpts):

* **Text**: numbers become text (VQA-RAD answers ``4``); an empty, missing or NaN question or
  answer is a bad row (SLAKE's train split has one: qid 1622, answer ""), never the text "nan".
* **Image paths**: Windows separators become ``/`` (``images\\test\\x.jpg``: an export made on
  Windows), a leading ``./`` goes; an absolute path is refused (paths are relative to ``--images``).
* **Ids**: the data set's own (``qid``, ``question_id``, ``id``) where it has one, else the row
  number *prefixed by the file name*: PathVQA and Hugging Face exports number their rows from 0
  in every split, so ``pathvqa_0`` would name a train and a test question alike.
* **Closed vs open**: the data set's own ``answer_type`` where it has one, else (PathVQA, a
  Hugging Face export of VQA-RAD) a yes/no answer means closed. Closed questions are typed
  ``yes_no`` when the answer is yes or no in either language (``metrics.SYNONYMS``: Yes, 是的, 不是,
  包含, 不包含, 有, 没有 ...), else ``choice`` ("CT or MRI?").
* **Splits**: only VQA-RAD's public file (``VQA_RAD Dataset Public.json``, recognised by its
  ``qid_linked_id`` / ``image_case_url`` columns) holds several splits: its ``phrase_type``
  ``test_freeform`` / ``test_para`` rows are the test set. Every other file *is* one split (SLAKE's
  ``train.json`` / ``validate.json`` / ``test.json``, MEVF's ``trainset.json`` / ``testset.json``,
  PathVQA and Hugging Face exports), named by its file name.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from ..errors import InputError

SPLITS = ("all", "train", "validate", "test")
SPLIT_ALIASES = {"val": "validate", "valid": "validate", "validation": "validate", "trainset": "train",
                 "testset": "test", "valset": "validate"}
PUBLIC_VQA_RAD_COLUMNS = ("qid_linked_id", "image_case_url")  # only in 'VQA_RAD Dataset Public.json'
IMAGE_FIELDS = ("image_name", "img_name", "image", "image_path")
ID_FIELDS = ("qid", "question_id", "id")


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def row_text(row: dict, key: str, where: str) -> str:
    """A question or answer as text: numbers as text, empty / missing / NaN refused."""
    value = row.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not is_missing(value):
        value = str(value)  # VQA-RAD has numeric answers
    if not isinstance(value, str) or not value.strip():
        shown = "NaN" if isinstance(value, float) else repr(value)
        raise InputError(f"{where}: missing or empty {key!r} (got {shown})")
    return " ".join(value.split())


def row_image(row: dict, where: str) -> str:
    """The row's image path, relative, with ``/`` separators."""
    for key in IMAGE_FIELDS:
        value = row.get(key)
        if isinstance(value, str) and value.strip():
            path = value.strip().replace("\\", "/")
            path = re.sub(r"^(\./)+", "", path)
            if path.startswith("/") or re.match(r"^[A-Za-z]:/", path):
                raise InputError(f"{where}: image path {value!r} is absolute; write it relative to the image folder "
                                 "(the one given with --images / benchmark --images)")
            return path
    raise InputError(f"{where}: no image file name (expected one of {IMAGE_FIELDS})")


def row_id(row: dict, fmt: str, index: int, stem: str) -> str:
    """``{fmt}_{the data set's id}``, or ``{fmt}_{file name}_{row}`` for files that have none."""
    for key in ID_FIELDS:
        if not is_missing(row.get(key)) and str(row[key]).strip():
            return f"{fmt}_{str(row[key]).strip()}"
    return f"{fmt}_{re.sub(r'[^A-Za-z0-9]+', '_', stem).strip('_').lower()}_{index}"


def is_closed(row: dict, answer: str, where: str) -> bool:
    """The data set's own answer_type (CLOSED / OPEN), else: a yes/no answer is closed."""
    kind = row.get("answer_type")
    if is_missing(kind):
        return closed_question_type(answer) == "yes_no"
    kind = str(kind).strip().upper()
    if kind not in ("CLOSED", "OPEN"):
        raise InputError(f"{where}: answer_type {row.get('answer_type')!r}; expected CLOSED or OPEN")
    return kind == "CLOSED"


def closed_question_type(answer: str) -> str:
    """``yes_no`` when the answer is yes or no (in English or Chinese), else ``choice``."""
    from ..eval.metrics import normalize_answer

    return "yes_no" if normalize_answer(answer) in ("yes", "no") else "choice"


def file_split(source: str) -> str | None:
    """The split a file's name says it holds: ``train``, ``validate`` or ``test`` (``None``: unknown)."""
    words = re.split(r"[^a-z]+", Path(source).stem.lower())
    found = {SPLIT_ALIASES.get(w, w) for w in words} & set(SPLITS[1:])
    return found.pop() if len(found) == 1 else None


def split_rule(rows: list[dict], fmt: str, split: str, source: str):
    """``(keep(row) -> bool, what was done)`` for ``--split`` on this file; refuses a request the
    file cannot answer instead of silently keeping the wrong rows."""
    split = SPLIT_ALIASES.get(split, split)
    if split not in SPLITS:
        raise InputError(f"split={split!r}; choose one of {SPLITS}")
    public = fmt == "vqa-rad" and any(k in r for r in rows for k in PUBLIC_VQA_RAD_COLUMNS)
    if public:
        if split == "validate":
            raise InputError(f"{source}: VQA-RAD has no validation split (its phrase_type marks test_* rows only)")
        test = lambda r: str(r.get("phrase_type", "")).strip().startswith("test")  # noqa: E731
        rule = {"all": lambda r: True, "test": test, "train": lambda r: not test(r)}[split]
        return rule, "all rows" if split == "all" else f"{split}: phrase_type {'' if split == 'test' else 'not '}test_*"
    if split == "all":
        return (lambda r: True), "all rows (the file is one split)"
    named = file_split(source)
    if named is None:
        raise InputError(f"{source}: the rows carry no split and the file name does not say which split this is; "
                         f"{fmt} ships one file per split (SLAKE: train.json / validate.json / test.json; MEVF's "
                         "VQA-RAD: trainset.json / testset.json): convert the file you want with --split all")
    if named != split:
        raise InputError(f"{source} is the {named} split, not {split} (its rows carry no split: the file is one); "
                         f"convert the {split} file instead, or this one with --split all")
    return (lambda r: True), f"all rows: {Path(source).name} is the {named} split"


def source_fields(row: dict) -> dict:
    """The row's own fields, kept on the record under ``source`` (NaN written as null)."""
    return {k: None if is_missing(v) else v for k, v in row.items()}
