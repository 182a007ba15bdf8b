"""Scores on the real medical VQA benchmarks (VQA-RAD, SLAKE, PathVQA), docs/PAPERS.md section 4.

Input: the benchmark's test split converted to LLaVA JSON (``data/convert.py``: every record
carries ``question_type`` yes_no / choice / open and ``answer_type`` closed / open, as the data
set defines them). Output, per benchmark: **closed accuracy** (the number the HealthGPT paper
reports: VQA-RAD 73.7, SLAKE 74.6, PathVQA 78.7 for M3) and, for open questions, exact match
and **recall** (the share of the reference answer's words found in the prediction, the usual
open-question score of LLaVA-Med-style evaluations). Matching uses ``metrics.normalize_answer``
(case, punctuation, articles, number words, yes/no synonyms in English and Chinese), and a yes/no
question is scored on the yes or no the answer gives (``metrics.yes_no``: LLaVA-Med's closed rule
at the word level, so "Yes, it is." counts as yes).

    python -m healthgpt_lite benchmark slake_test.json --images Slake1.0/imgs --preset m3 --set ... --artifacts runs/m3
    python -m healthgpt_lite benchmark slake_test.json --predictions answers.jsonl   # score answers made elsewhere
"""
from __future__ import annotations

import json
from pathlib import Path

from ..artifacts import atomic_write_json
from ..data.records import IMAGE_TOKEN, load_records
from ..errors import InputError
from .metrics import comprehension_scores, normalize_answer, yes_no


def open_recall(prediction: str, answer: str) -> float:
    """Share of the reference's (normalised) words that appear in the prediction."""
    ref, pred = normalize_answer(answer).split(), set(normalize_answer(prediction).split())
    return sum(w in pred for w in ref) / len(ref) if ref else 0.0


def benchmark_records(path: str | Path) -> list[dict]:
    """The converted records of a benchmark, refusing files without the closed/open labels or
    with repeated ids. Records labelled only by the data set's ``answer_type`` (LLaVA-Med's own
    VQA-RAD / SLAKE test files: CLOSED / OPEN) get their ``question_type`` from it."""
    from ..data.source_rows import closed_question_type

    records = load_records(path, unique_ids=True)
    for r in records:
        kind = str(r.get("answer_type", "")).strip().lower()
        if "question_type" not in r and kind in ("closed", "open"):
            r["question_type"] = closed_question_type(r["conversations"][1]["value"]) if kind == "closed" else "open"
    bad = next((i for i, r in enumerate(records) if r.get("question_type") not in ("yes_no", "choice", "open")), None)
    if bad is not None:
        raise InputError(f"{path} record {bad}: no question_type yes_no/choice/open; convert the benchmark with "
                         "`python -m healthgpt_lite data convert --format vqa-rad|slake|pathvqa IN OUT`")
    return records


def score_rows(rows: list[dict]) -> dict:
    """rows: ``question_type, modality, lang, prediction, answer`` -> closed accuracy, open EM + recall.

    A yes/no question is scored on the yes or no the prediction gives (``metrics.yes_no``:
    "Yes, it is." is yes, "是的" is yes, "不包含" is no); the prediction text itself stays in the rows."""
    graded = [dict(r, prediction=yes_no(r["prediction"]) or r["prediction"]) if r["question_type"] == "yes_no" else r
              for r in rows]
    scores = comprehension_scores(graded)
    opened = [open_recall(r["prediction"], r["answer"]) for r in rows if r["question_type"] == "open"]
    if opened:
        scores["open_recall"] = sum(opened) / len(opened)
    return scores


def rows_with_predictions(records: list[dict], predictions: dict[str, str]) -> list[dict]:
    """Join records and ``{record id: predicted answer}``; a missing prediction is an error."""
    missing = [r["id"] for r in records if r["id"] not in predictions]
    if missing:
        raise InputError(f"{len(missing)} question(s) have no prediction, e.g. {missing[:3]}")
    return [{"id": r["id"], "question_type": r["question_type"], "modality": r.get("modality", "unknown"),
             "lang": r.get("lang", "en"), "question": r["conversations"][0]["value"].replace(f"{IMAGE_TOKEN}\n", ""),
             "answer": r["conversations"][1]["value"], "prediction": predictions[r["id"]]} for r in records]


def read_predictions(path: str | Path) -> dict[str, str]:
    """JSON lines of ``{"id": ..., "prediction": ...}``."""
    path, out = Path(path), {}
    if not path.is_file():
        raise InputError(f"{path}: predictions file not found")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out[str(row["id"])] = str(row["prediction"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{path} line {n}: expected {{\"id\": ..., \"prediction\": ...}}") from None
    return out


def predict(gpt, records: list[dict], image_root: str | Path, batch_size: int = 16, progress: bool = False) -> dict[str, str]:
    """Answers of a ``HealthGPTLite`` to every record (greedy, short answers)."""
    root, out = Path(image_root), {}
    chunks = [records[i:i + batch_size] for i in range(0, len(records), batch_size)]
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="answering")
    for chunk in chunks:
        answers = gpt.answer_batch([root / r["image"] for r in chunk], [r["conversations"][0]["value"] for r in chunk],
                                   max_new_tokens=32)
        out.update({r["id"]: a for r, a in zip(chunk, answers)})
    return out


def evaluate_benchmark(records_path, predictions: dict[str, str], out_dir: str | Path | None = None) -> dict:
    """Score ``predictions`` on a converted benchmark; writes ``scores.json`` and
    ``predictions.jsonl`` into ``out_dir`` when given."""
    records = benchmark_records(records_path)
    rows = rows_with_predictions(records, predictions)
    scores = score_rows(rows)
    if out_dir is not None:
        out = Path(out_dir)
        atomic_write_json(out / "scores.json", scores)
        (out / "predictions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                               encoding="utf-8")
    return {"scores": scores, "rows": rows}
