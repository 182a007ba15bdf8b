"""Author once, hand out a generated copy (nbgrader's convention, docs/ARCHITECTURE.md section 6).

Each exercise is one folder ``exercises/NN_name/`` holding ``solution.py``, a jupytext percent
notebook whose answer code sits between marker lines::

    def psnr(pred, target, data_range=1.0):
        ### BEGIN SOLUTION
        mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))  # (B,)
        return 10 * torch.log10(data_range**2 / mse)
        ### END SOLUTION

``build`` writes ``student.py`` with each block replaced by ``raise NotImplementedError  # your
code here`` (or by the code after ``stub:`` on the BEGIN line, e.g. ``### BEGIN SOLUTION stub:
return None``), at the block's indentation, and generates ``student.ipynb`` and
``solution.ipynb`` from their sources (``nbsync``). ``stale`` lists what a fresh build would
change; a test fails on it.

    python -m healthgpt_lite exercises build            # after editing a solution.py
    python -m healthgpt_lite exercises build --check    # CI: exit 1 if a student copy is stale
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError
from ..artifacts import REPO_ROOT
from ..course.nbsync import out_of_sync, sync

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?:[ \t]+stub:[ \t]*(?P<stub>\S.*?))?[ \t]*$")
END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
DEFAULT_STUB = "raise NotImplementedError  # your code here"


def exercise_dirs(root: Path = REPO_ROOT) -> list[Path]:
    """Every ``exercises/NN_name/`` folder with a ``solution.py``, in order."""
    return sorted(p.parent for p in (root / "exercises").glob("[0-9][0-9]_*/solution.py"))


def student_text(solution: str, where: str = "solution.py") -> str:
    """The student copy of a solution notebook's text: every solution block -> its stub."""
    out, inside, lines = [], None, solution.splitlines(keepends=True)
    for number, line in enumerate(lines, 1):
        if (begin := BEGIN.match(line)):
            if inside is not None:
                raise InputError(f"{where}:{number}: BEGIN SOLUTION inside the block opened at line {inside}")
            inside = number
            out.append(f"{begin['indent']}{begin['stub'] or DEFAULT_STUB}\n")
        elif END.match(line):
            if inside is None:
                raise InputError(f"{where}:{number}: END SOLUTION without a BEGIN SOLUTION")
            inside = None
        elif "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
            raise InputError(f"{where}:{number}: a solution marker must stand alone on its line: {line.strip()!r}")
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise InputError(f"{where}:{inside}: BEGIN SOLUTION is never closed by END SOLUTION")
    if not any(BEGIN.match(line) for line in lines):
        raise InputError(f"{where}: no ### BEGIN SOLUTION block; nothing for the student to write")
    return "".join(out)


def solution_cells(path: Path) -> list[str]:
    """The code cells of a percent notebook that hold a solution block (as source text)."""
    cells, current = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("# %%"):
            cells.append("\n".join(current).strip())
            current = []
        else:
            current.append(line)
    cells.append("\n".join(current).strip())
    return [c for c in cells if "### BEGIN SOLUTION" in c]


def build(root: Path = REPO_ROOT) -> list[Path]:
    """Regenerate what is out of date among every ``student.py`` / ``student.ipynb`` /
    ``solution.ipynb`` (untouched files keep their bytes: no churn of notebook cell ids)."""
    written = []
    for folder in exercise_dirs(root):
        solution, student = folder / "solution.py", folder / "student.py"
        text = student_text(solution.read_text(encoding="utf-8"), str(solution))
        if not student.is_file() or student.read_text(encoding="utf-8") != text:
            student.write_text(text, encoding="utf-8")
            written.append(student)
        written += [sync(py) for py in (student, solution) if out_of_sync(py)]
    return written


def stale(root: Path = REPO_ROOT) -> list[str]:
    """What a fresh ``build`` would change ('' -> nothing); one line per stale file."""
    problems = []
    for folder in exercise_dirs(root):
        solution, student = folder / "solution.py", folder / "student.py"
        want = student_text(solution.read_text(encoding="utf-8"), str(solution))
        if not student.is_file() or student.read_text(encoding="utf-8") != want:
            problems.append(f"{student} is stale or missing (run: python -m healthgpt_lite exercises build)")
        problems += [why for py in (solution, student) if py.is_file() and (why := out_of_sync(py))]
    return problems
