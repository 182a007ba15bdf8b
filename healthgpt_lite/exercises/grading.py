"""Grade a class's submissions: run every notebook, collect each check's verdict, tabulate.

    python -m healthgpt_lite exercises grade SUBMISSIONS/ [--out grades] [--timeout 300]

Layout: ``SUBMISSIONS/<student>/<NN_anything>.ipynb``, e.g. ``alice/04_stage_rules.ipynb`` or
``bob/04.ipynb``: the two leading digits pick the exercise. Every submission runs with
papermill (``nbrun.run_notebook``) in its own process, with a time limit, in its own temporary
folder behind the fence of ``sandbox.py`` (read its docstring for what that does and does not
protect), with ``STRICT=False`` so that every check runs. Each ``check()`` appends its verdict
to a file in that folder; a question whose check never ran is "not run", with the reason
(invalid notebook, timed out, the error that stopped it). A broken, endless or hostile
submission costs at most its time limit and never stops the others.

Writes ``OUT/grades.csv`` (one row per student, exercise and question, plus one "notebook" row
per submission), ``OUT/grades.md`` (a summary table and every failed check's reason) and
``OUT/executed/<student>/<exercise>.ipynb`` (the executed notebooks, to read the outputs).
"""
from __future__ import annotations

import csv
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import InputError
from . import questions_of
from .authoring import exercise_dirs
from .checking import CORRECT, RESULTS_ENV, read_verdicts
from .sandbox import sandbox_env

NOT_RUN = "not run"
MAX_NOTEBOOK_BYTES = 50 * 2**20
GRADING_PARAMETERS = {"PROFILE": "smoke", "STRICT": False}


@dataclass
class Row:
    student: str
    exercise: str
    question: str  # "q1", ... or "notebook" (did it run to the end?)
    status: str
    reason: str = ""


@dataclass
class GradeTable:
    rows: list[Row]
    csv_path: Path
    markdown_path: Path


def find_submissions(submissions: Path) -> list[tuple[str, str | None, Path]]:
    """(student, exercise or None when the file name names none, notebook path), sorted."""
    known = {d.name[:2]: d.name for d in exercise_dirs()}
    found = []
    for student in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for nb in sorted(student.rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in nb.parts:
                m = re.match(r"(\d\d)", nb.stem)
                found.append((student.name, known.get(m.group(1)) if m else None, nb))
    return found


def grade_submission(student: str, exercise: str, notebook: Path, timeout_s: float,
                     executed_dir: Path | None = None) -> list[Row]:
    """Run one submission in a fresh sandbox and return its rows (never raises for a bad notebook)."""
    from ..course.nbrun import declared_parameters, run_notebook

    labels = [q.label for q in questions_of(exercise)]
    rows = lambda status, why: [Row(student, exercise, q, status, why) for q in labels]  # noqa: E731
    if notebook.stat().st_size > MAX_NOTEBOOK_BYTES:
        return [Row(student, exercise, "notebook", "failed", "larger than 50 MB"), *rows(NOT_RUN, "not run: too large")]
    problem = _unreadable(notebook)
    if problem:
        return [Row(student, exercise, "notebook", "failed", problem), *rows(NOT_RUN, f"not run: {problem}")]
    with tempfile.TemporaryDirectory(prefix="hgl-grade-") as tmp:
        root = Path(tmp).resolve()
        work = root / "work"
        work.mkdir()
        copy = shutil.copyfile(notebook, work / "submission.ipynb")
        try:
            declared = declared_parameters(copy)
        except Exception:  # papermill could not read it: run without parameters
            declared = {}
        params = {k: v for k, v in {**GRADING_PARAMETERS, "ARTIFACTS_DIR": str(root / "artifacts")}.items() if k in declared}
        env = sandbox_env(root) | {RESULTS_ENV: str(root / "verdicts.jsonl")}
        result = run_notebook(copy, work / "executed.ipynb", params, timeout_s=timeout_s, cwd=work, env=env, check=False)
        verdicts = read_verdicts(root / "verdicts.jsonl")
        if executed_dir is not None and (work / "executed.ipynb").is_file():
            executed_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / "executed.ipynb", executed_dir / f"{exercise}.ipynb")
    out = [Row(student, exercise, "notebook", "ran" if result.ok else "failed",
               f"{result.wall_s:.0f} s" if result.ok else result.error[:300])]
    for label in labels:
        v = verdicts.get(label)
        if v is not None and v.exercise == exercise:
            out.append(Row(student, exercise, label, v.status, v.reason))
        else:
            why = "its check() cell did not run" if result.ok else f"the notebook stopped first ({result.error[:200]})"
            out.append(Row(student, exercise, label, NOT_RUN, why))
    return out


def _unreadable(notebook: Path) -> str:
    import nbformat

    try:
        nbformat.read(notebook, as_version=4)
        return ""
    except Exception as e:  # invalid JSON, not a notebook, wrong encoding ...
        return f"not a valid notebook ({type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''})"


def grade_submissions(submissions: str | Path, out: str | Path = "grades", timeout_s: float = 300,
                      log=print) -> GradeTable:
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise InputError(f"{submissions}: not a folder; expected SUBMISSIONS/<student>/<NN_exercise>.ipynb")
    rows: list[Row] = []
    for student, exercise, nb in find_submissions(submissions):
        if exercise is None:
            rows.append(Row(student, "?", "notebook", "failed",
                            f"{nb.name}: the name does not start with an exercise number (01, 02, ...)"))
            continue
        got = grade_submission(student, exercise, nb, timeout_s, out / "executed" / student)
        rows += got
        log(f"{student}/{exercise}: " + ", ".join(f"{r.question} {r.status}" for r in got))
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / "grades.csv", out / "grades.md"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(Row.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    md_path.write_text(markdown(rows), encoding="utf-8")
    return GradeTable(rows, csv_path, md_path)


def markdown(rows: list[Row]) -> str:
    """A summary (correct / questions per student and exercise) and the reason of every failure."""
    students = sorted({r.student for r in rows})
    exercises = sorted({r.exercise for r in rows})
    cell = {}
    for s in students:
        for e in exercises:
            qs = [r for r in rows if r.student == s and r.exercise == e and r.question != "notebook"]
            cell[s, e] = f"{sum(r.status == CORRECT for r in qs)}/{len(qs)}" if qs else "-"
    lines = ["# Grades", "", "Correct answers per student and exercise (`-`: no submission).", "",
             "| student | " + " | ".join(exercises) + " |", "|---" * (len(exercises) + 1) + "|"]
    lines += [f"| {s} | " + " | ".join(cell[s, e] for e in exercises) + " |" for s in students]
    failed = [r for r in rows if r.status not in (CORRECT, "ran")]
    lines += ["", "## Every check that did not pass", ""]
    if failed:
        lines += ["| student | exercise | question | status | reason |", "|---|---|---|---|---|"]
        lines += [f"| {r.student} | {r.exercise} | {r.question} | {r.status} | {_md(r.reason)} |" for r in failed]
    else:
        lines.append("None: every submitted check is correct.")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
