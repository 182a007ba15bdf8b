"""Medical VQA benchmarks -> LLaVA JSON records (the format ``load_records`` and training read).

    python -m healthgpt_lite data convert --format vqa-rad "VQA_RAD Dataset Public.json" vqa_rad_test.json --split test
    python -m healthgpt_lite data convert --format vqa-rad data_RAD/testset.json vqa_rad_test.json   # MEVF's split
    python -m healthgpt_lite data convert --format slake Slake1.0/test.json slake_test.json --lang en
    python -m healthgpt_lite data convert --format slake Slake1.0/train.json slake_train.json --skip-invalid
    python -m healthgpt_lite data convert --format pathvqa pathvqa_test.jsonl pathvqa_test.json

What each source file holds (the fields read here; ``source_rows.py`` has every rule):

* **VQA-RAD**: the public file ``VQA_RAD Dataset Public.json`` (``qid, phrase_type, qid_linked_id,
  image_case_url, image_name, image_organ, question, question_type, answer, answer_type, ...``;
  its ``test_freeform`` / ``test_para`` rows are the test split, so ``--split`` applies), MEVF's
  ``trainset.json`` / ``testset.json`` (the same fields minus the links: already one split each),
  or a Hugging Face export (``image_path`` or ``image``, ``question``, ``answer``: no id, no answer type).
* **SLAKE** (``train.json``, ``validate.json``, ``test.json``): ``qid, img_name, question, answer,
  answer_type, q_lang`` (``en`` / ``zh``), ``modality, location, content_type``. One file per split.
* **PathVQA**: the original release is pickles (never read here: no pickle from downloaded
  files); export it once to JSON / JSON lines of ``{image, question, answer}`` (e.g. from the
  Hugging Face copy, writing each image to a file). It has no answer type: its closed
  questions are the yes/no ones, as the PathVQA paper defines them.

Each record keeps the source row verbatim under ``source`` (VQA-RAD's own ``question_type``
"PRES", ``phrase_type``, SLAKE's ``content_type`` ...) and gets ``question_type`` ``yes_no`` /
``choice`` (closed) / ``open``, ``answer_type``, ``modality``, ``organ`` and ``lang``, which
``eval.metrics.comprehension_scores`` splits into closed accuracy and open exact match.

A row that cannot become a record (an empty answer, no image name, an unknown answer type) stops
the conversion with its row number and the fix; ``skip_invalid=True`` (``--skip-invalid``) skips
such rows instead, with a warning per row and their count in the summary. A file whose ids repeat
is refused: predictions are joined to questions by id.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..artifacts import atomic_write_json
from .json_rows import read_json_rows
from ..errors import InputError
from .records import IMAGE_TOKEN, validate_record
from .source_rows import (closed_question_type, is_closed, is_missing, row_id, row_image, row_text, source_fields,
                          split_rule)

FORMATS = ("vqa-rad", "slake", "pathvqa")
LANGS = ("all", "en", "zh")


@dataclass
class Conversion:
    """The records of one source file, the rows skipped (``"row 1622 (qid 1622): ..."``) and how
    ``--split`` was applied."""

    records: list[dict]
    skipped: list[str] = field(default_factory=list)
    split_rule: str = "all rows"


def read_source(path: str | Path) -> list[dict]:
    """A JSON list or JSON lines file of objects."""
    rows = read_json_rows(path, "source file", " (a pickle such as PathVQA's .pkl is never read here: "
                          "export it to JSON lines of {image, question, answer} first)")
    if not all(isinstance(r, dict) for r in rows):
        raise InputError(f"{path}: expected a list of objects (one per question)")
    return rows


def convert_source(rows: list[dict], fmt: str, split: str = "all", lang: str = "all", source: str = "source",
                   skip_invalid: bool = False) -> Conversion:
    """Source rows of ``fmt`` -> validated LLaVA records (see the module docstring). ``source`` is
    the file's path: its name says which split a one-split file is and prefixes made-up ids."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    lang = str(lang).strip().lower()
    if lang not in LANGS:
        raise InputError(f"lang={lang!r}; choose one of {LANGS} (SLAKE has English and Chinese questions)")
    keep, rule = split_rule(rows, fmt, split, source)
    out, skipped, stem = [], [], Path(source).stem
    for i, row in enumerate(rows):
        if not keep(row) or (lang != "all" and str(row.get("q_lang", "en")).strip().lower() != lang):
            continue
        where = f"{source} row {i}" + (f" (qid {row['qid']})" if isinstance(row, dict) and "qid" in row else "")
        try:
            out.append(_record(row, fmt, i, stem, where))
        except InputError as e:
            if not skip_invalid:
                raise InputError(f"{e}; fix the row, or pass --skip-invalid to skip such rows with a warning") from None
            skipped.append(str(e))
    if not out:
        langs = sorted({str(r.get("q_lang", "en")).strip() for r in rows})
        raise InputError(f"{source}: no {fmt} questions left after split={split!r}, lang={lang!r} "
                         f"(the file's languages: {langs})")
    _check_unique_ids(out, source)
    return Conversion(out, skipped, rule)


def convert_rows(rows: list[dict], fmt: str, split: str = "all", lang: str = "all", source: str = "source",
                 skip_invalid: bool = False) -> list[dict]:
    """The records of :func:`convert_source`."""
    return convert_source(rows, fmt, split, lang, source, skip_invalid).records


def convert_file(src: str | Path, dst: str | Path, fmt: str, split: str = "all", lang: str = "all",
                 image_root: str | Path | None = None, skip_invalid: bool = False) -> dict:
    """Convert ``src`` into ``dst`` (JSON list, written atomically); with ``image_root``, every
    image must exist there. Returns counts (skipped rows are also warned about, one by one)."""
    result = convert_source(read_source(src), fmt, split, lang, source=str(src), skip_invalid=skip_invalid)
    for why in result.skipped:
        warnings.warn(f"skipped {why}", stacklevel=2)
    records = result.records
    if image_root is not None:
        missing = [r["image"] for r in records if not (Path(image_root) / r["image"]).is_file()]
        if missing:
            raise InputError(f"{len(missing)} image(s) of {src} not found under {image_root}, e.g. {missing[:3]}")
    atomic_write_json(dst, records)
    closed = sum(r["answer_type"] == "closed" for r in records)
    return {"records": len(records), "closed": closed, "open": len(records) - closed, "skipped": len(result.skipped),
            "split": result.split_rule, "out": str(dst)}


def _record(row: dict, fmt: str, index: int, stem: str, where: str) -> dict:
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected an object, got {type(row).__name__}")
    question, answer = row_text(row, "question", where), row_text(row, "answer", where)
    image = row_image(row, where)
    closed = is_closed(row, answer, where)
    rec = {"id": row_id(row, fmt, index, stem), "image": image,
           "conversations": [{"from": "human", "value": f"{IMAGE_TOKEN}\n{question}"}, {"from": "gpt", "value": answer}],
           "task": "vqa_closed" if closed else "vqa_open", "task_type": "comprehension",
           "question_type": closed_question_type(answer) if closed else "open", "answer_type": "closed" if closed else "open",
           "modality": _label(row, "modality"), "organ": _label(row, "image_organ", "location"),
           "lang": str(row.get("q_lang") or "en").strip().lower(), "dataset": fmt, "source": source_fields(row)}
    validate_record(rec, where=where)
    return rec


def _label(row: dict, *keys: str) -> str:
    """A grouping label (lower case) from the first of ``keys`` the row has; the original stays in ``source``."""
    value = next((row[k] for k in keys if not is_missing(row.get(k)) and str(row[k]).strip()), "unknown")
    return str(value).strip().lower()


def _check_unique_ids(records: list[dict], source: str) -> None:
    first: dict[str, int] = {}
    for i, r in enumerate(records):
        if r["id"] in first:
            raise InputError(f"{source}: records {first[r['id']]} and {i} share the id {r['id']!r}; predictions are "
                             "joined to questions by id, so the file must not repeat one")
        first[r["id"]] = i
