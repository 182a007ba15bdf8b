"""Student notebooks and the grader under papermill: a blank student copy runs top to bottom
(the reference stands in) and fails with STRICT=True; the grader tabulates correct, blank,
broken, endless and hostile submissions, and the hostile one cannot delete a canary file."""
import csv
import shutil
import subprocess
import sys

import nbformat
import pytest

from healthgpt_lite.cli import main
from healthgpt_lite.exercises.authoring import solution_cells
from healthgpt_lite.exercises.grading import Row, find_submissions, grade_submissions, markdown
from healthgpt_lite.course.nbrun import run_notebook

EXERCISE = "04_stage_rules"  # the quickest to run


def make_notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook
def test_blank_student_copy_fails_in_strict_mode(repo, tmp_path):
    student = repo / "exercises" / EXERCISE / "student.ipynb"
    result = run_notebook(student, tmp_path / "strict.ipynb", {"PROFILE": "smoke", "STRICT": True,
                                                                "ARTIFACTS_DIR": str(tmp_path / "art")}, timeout_s=300)
    assert not result.ok and "ExerciseNotDone" in result.error and "not attempted" in result.error


@pytest.mark.notebook
def test_grader_runs_every_submission_and_survives_bad_ones(repo, tmp_path):
    canary = tmp_path / "instructor" / "canary.txt"
    canary.parent.mkdir()
    canary.write_text("precious")
    subs = tmp_path / "submissions"
    answer = solution_cells(repo / "exercises" / EXERCISE / "solution.py")[0]  # q1 solved, q2 left out
    make_notebook(subs / "alice" / f"{EXERCISE}.ipynb", "STRICT = False",
                  f"from healthgpt_lite.exercises import load_questions\nq1, q2 = load_questions({EXERCISE!r}, globals())",
                  answer, "q1.check()")
    (subs / "bob").mkdir()
    shutil.copy(repo / "exercises" / EXERCISE / "student.ipynb", subs / "bob" / "04.ipynb")  # blank: falls back
    (subs / "carol").mkdir()
    (subs / "carol" / f"{EXERCISE}.ipynb").write_text('{"cells": [')  # not valid JSON
    make_notebook(subs / "mallory" / f"{EXERCISE}.ipynb",
                  "import os, shutil, subprocess",
                  f"for attempt in (lambda: open({str(canary)!r}, 'w'), lambda: shutil.rmtree({str(canary.parent)!r}),\n"
                  f"                lambda: subprocess.run(['rm', {str(canary)!r}])):\n"
                  "    try:\n        attempt()\n    except PermissionError as e:\n        print(e)",
                  "open('scratch.txt', 'w').write('ok'); os.remove('scratch.txt')  # inside its folder: allowed",
                  f"os.remove({str(canary)!r})")
    (subs / "zed").mkdir()
    (subs / "zed" / "notes.ipynb").write_text("{}")  # names no exercise

    out = tmp_path / "grades"
    assert main(["exercises", "grade", str(subs), "--out", str(out), "--timeout", "240"]) == 0
    assert canary.read_text() == "precious"
    rows = {(r["student"], r["question"]): r for r in csv.DictReader((out / "grades.csv").open())}
    assert rows["alice", "q1"]["status"] == "correct" and rows["alice", "q2"]["status"] == "not run"
    assert rows["bob", "notebook"]["status"] == "ran" and rows["bob", "q2"]["status"] == "not attempted"
    assert rows["carol", "q1"]["status"] == "not run" and "not a valid notebook" in rows["carol", "q1"]["reason"]
    assert rows["mallory", "notebook"]["status"] == "failed" and "PermissionError: sandbox" in rows["mallory", "notebook"]["reason"]
    assert "does not start with an exercise number" in rows["zed", "notebook"]["reason"]
    md = (out / "grades.md").read_text()
    assert "| alice | 1/2 |" in md and "| bob | 0/2 |" in md
    assert (out / "executed" / "alice" / f"{EXERCISE}.ipynb").is_file()


@pytest.mark.notebook
def test_an_endless_submission_is_killed_and_the_next_one_still_runs(tmp_path):
    subs = tmp_path / "submissions"
    make_notebook(subs / "eve" / f"{EXERCISE}.ipynb", "while True:\n    pass")
    make_notebook(subs / "frank" / f"{EXERCISE}.ipynb", "x = 1")  # runs, but calls no check
    lines = []
    table = grade_submissions(subs, tmp_path / "grades", timeout_s=10, log=lines.append)
    rows = {(r.student, r.question): r for r in table.rows}
    assert rows["eve", "notebook"].status == "failed" and "timed out" in rows["eve", "notebook"].reason
    assert rows["frank", "notebook"].status == "ran" and rows["frank", "q1"].reason == "its check() cell did not run"
    assert len(lines) == 2


def test_the_fence_alone(tmp_path):
    """install_guard in a plain Python process: writes outside its folder and programs are refused."""
    canary = tmp_path / "canary.txt"
    canary.write_text("precious")
    box = tmp_path / "box"
    box.mkdir()
    code = ("import os, subprocess, sys\n"
            "from healthgpt_lite.exercises.sandbox import install_guard\n"
            f"install_guard({str(box)!r})\n"
            "open('inside.txt', 'w').write('ok')\n"
            "refused = 0\n"
            f"for attempt in (lambda: os.remove({str(canary)!r}), lambda: os.replace('inside.txt', {str(canary)!r}),\n"
            f"                lambda: os.link({str(canary)!r}, 'hard'), lambda: os.system('true')):\n"
            "    try:\n        attempt()\n    except PermissionError:\n        refused += 1\n"
            "sys.exit(0 if refused == 4 else 1)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=box, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert canary.read_text() == "precious" and (box / "inside.txt").read_text() == "ok"


def test_find_submissions_and_markdown(tmp_path):
    for path in ("ann/04_stage_rules.ipynb", "ann/.ipynb_checkpoints/04_stage_rules-checkpoint.ipynb", "ben/06.ipynb"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("{}")
    found = [(s, e) for s, e, _ in find_submissions(tmp_path)]
    assert found == [("ann", "04_stage_rules"), ("ben", "06_metrics")]
    md = markdown([Row("ann", "04_stage_rules", "q1", "correct"), Row("ann", "04_stage_rules", "q2", "incorrect", "a|b")])
    assert "| ann | 1/2 |" in md and "a\\|b" in md
