"""LLaVA-format files as they are published, made into the records ``load_records`` checks.

The variants the field's files come in (excerpts in ``tests/fixtures/benchmarks/``):

* **no ``id``**: LLaVA-Med's evaluation JSON lines number their questions ``question_id``; that is
  the id. A record with neither gets ``<file name>_<row>`` (unique within and across files).
* **LLaVA-Med question files** (``{"question_id", "image", "text", "gpt4_answer"}``, the question
  in ``text`` with ``<image>`` after it): the conversation is made from ``text`` and the answer
  (``gpt4_answer``, ``answer`` or ``gt_answer``); LLaVA-Med's own VQA-RAD / SLAKE test files spell
  the key ``conversatons``, read as ``conversations``.
* **``image`` as a list** (the VL-Health record template): one path is that path, an empty list
  is no image; several images are refused (one image per example here).
* **NaN / Infinity** (a pandas export writes missing values as ``NaN``): refused, naming the
  record and the field, since they would become the text "nan" or a bogus image path.
* **repeated ids**: a warning naming them (``unique_ids=True``, as for benchmark scoring,
  refuses them: predictions are joined to questions by id).

Every other field of a record is kept as it is.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

from ..errors import InputError

ANSWER_FIELDS = ("gpt4_answer", "answer", "gt_answer")


def non_finite_field(value, path: str = "") -> str | None:
    """The path (``conversations[1].value``) of the first NaN or infinite number inside ``value``."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "the record"
    if isinstance(value, dict):
        children = ((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
    elif isinstance(value, list):
        children = ((f"{path}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    return next((found for child, v in children if (found := non_finite_field(v, child))), None)


def normalize_record(rec, index: int, path: Path) -> dict:
    """One published record -> the LLaVA shape (see the module docstring); a copy, others' fields kept."""
    where = f"{path} record {index}"
    if not isinstance(rec, dict):
        raise InputError(f"{where}: expected an object, got {type(rec).__name__}")
    bad = non_finite_field(rec)
    if bad:
        raise InputError(f"{where}: {bad} is NaN or infinite (a pandas export writes missing values so); "
                         "write null, or drop the field")
    rec = dict(rec)
    if "conversations" not in rec and "conversatons" in rec:  # LLaVA-Med's VQA-RAD / SLAKE test files
        rec["conversations"] = rec.pop("conversatons")
    if "conversations" not in rec and isinstance(rec.get("text"), str):
        answer = next((rec[k] for k in ANSWER_FIELDS if isinstance(rec.get(k), str)), None)
        if answer is None:
            raise InputError(f"{where}: a LLaVA-Med question record (question_id, text) without an answer "
                             f"({' / '.join(ANSWER_FIELDS)}); add the reference answer to score or train on it")
        rec["conversations"] = [{"from": "human", "value": rec["text"]}, {"from": "gpt", "value": answer}]
    if rec.get("id") is None:
        qid = rec.get("question_id")
        rec["id"] = str(qid) if qid is not None else f"{path.stem}_{index}"
    elif not isinstance(rec["id"], str):
        rec["id"] = str(rec["id"])
    if isinstance(rec.get("image"), list):
        images = rec["image"]
        if not all(isinstance(p, str) for p in images):
            raise InputError(f"{where}: 'image' is a list holding {[type(p).__name__ for p in images]}; expected paths")
        if len(images) > 1:
            raise InputError(f"{where}: 'image' lists {len(images)} images; a record here has one input image "
                             "(put a generation target in 'target_image')")
        rec["image"] = images[0] if images else None
    return rec


def check_ids(records: list[dict], path: Path, unique: bool) -> None:
    """Warn about repeated ids (``unique``: refuse them), naming the first repeat."""
    first: dict[str, int] = {}
    repeats = []
    for i, r in enumerate(records):
        if r["id"] in first:
            repeats.append((r["id"], first[r["id"]], i))
        else:
            first[r["id"]] = i
    if not repeats:
        return
    rid, a, b = repeats[0]
    msg = (f"{path}: {len(repeats)} record(s) repeat an earlier id, e.g. {rid!r} at records {a} and {b}; "
           "predictions and scores are joined on ids, so make them unique before evaluating")
    if unique:
        raise InputError(msg)
    warnings.warn(msg, stacklevel=3)
