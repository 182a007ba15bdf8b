"""The checker behind every exercise question: ``q1.check()``, ``q1.hint()``, ``q1.solution()``.

A :class:`Question` names the function the student writes in the notebook (``name``; always a
function: to ask for a constant, ask for a function that returns it), the
project's own implementation with the same signature (``reference``), test cases, and a
``compare`` that explains a wrong result *without* giving the answer away. ``check()`` answers
one of three verdicts (the nbgrader / otter / Kaggle-learntools convention, docs/ARCHITECTURE.md section 6):

* **correct**: the answer matches the reference on every case;
* **incorrect**: the first case where it does not, with a reason ("shape (2, 5) but expected
  one row per sequence", "the mask still allows text tokens after <start_index>");
* **not attempted**: the name is not defined, the stub still raises ``NotImplementedError``,
  or it returns the declared placeholder.

An answer that calls or wraps the project's own implementation is **incorrect**: while it
runs, the reference and every function named in ``forbidden`` are poisoned (``poison.py``:
their code is swapped for code that records the call and raises), so every route to them is
caught, not only an ``import`` line. ``hint()`` has two levels (``hint(2)``), neither of which
is the code; ``solution()`` shows the code.

A notebook must run top to bottom even with blanks, so when the answer is not correct the
name is re-bound to the reference in the notebook's namespace (with a visible note) and later
cells keep working; with ``strict=True`` (the notebook's ``STRICT`` parameter) ``check()``
raises :class:`ExerciseNotDone` instead. Each verdict is also appended, as one JSON line, to
the file named by ``$HEALTHGPT_LITE_EXERCISE_RESULTS`` when it is set: that is how the grader
(``grading.py``) collects them.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from ..artifacts import REPO_ROOT
from ..errors import InputError
from .poison import UsedReference, reference_unavailable, refers_to, resolve, unwrapped

RESULTS_ENV = "HEALTHGPT_LITE_EXERCISE_RESULTS"
CORRECT, INCORRECT, NOT_ATTEMPTED = "correct", "incorrect", "not attempted"
_MISSING = object()


class ExerciseNotDone(AssertionError):
    """Raised by ``check()`` in STRICT mode when an answer is not correct."""


@dataclass(frozen=True)
class Case:
    """One test input. ``make_args`` builds fresh arguments on every call, so an answer that
    modifies its input cannot change what the reference sees."""

    description: str  # shown in a reason: "a batch of 3 sequences, one <start_index> each"
    make_args: Callable[[], tuple]


@dataclass(frozen=True)
class Verdict:
    exercise: str
    question: str  # "q1"
    name: str  # the function the student writes
    status: str  # CORRECT | INCORRECT | NOT_ATTEMPTED
    reason: str = ""
    fallback: bool = False  # later cells use the reference implementation

    @property
    def message(self) -> str:
        mark = {CORRECT: "✅ Correct", INCORRECT: "❌ Incorrect", NOT_ATTEMPTED: "⏳ Not attempted"}[self.status]
        text = f"{mark} ({self.question}, `{self.name}`): {self.reason}"
        if self.fallback:
            text += f"\n   Note: later cells use the reference `{self.name}` so the notebook still runs."
        return text

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), ensure_ascii=False)

    def _ipython_display_(self) -> None:  # check() has printed the message already
        pass


@dataclass(frozen=True)
class Question:
    exercise: str  # the folder under exercises/, e.g. "05_constrained_decoding"
    label: str  # "q1"
    name: str  # what the student defines in the notebook
    reference: Callable  # the project's implementation, same signature (the fallback)
    cases: Callable[[], Iterable[Case]]
    compare: Callable[[Any, Any], str | None]  # (expected, got) -> None if equal, else the reason
    hints: tuple[str, str]  # a nudge, then a closer one; neither is the code (solution() is)
    # what is compared: by default the returned value; for a function that works in place,
    # e.g. observe=lambda args, returned: <the state of args[0]>
    observe: Callable[[tuple, Any], Any] | None = None
    placeholder: Any = _MISSING  # a value the stub returns that means "blank" (e.g. None)
    # dotted paths of the package's implementations an answer must not use (poison.py); the
    # reference itself is always forbidden. Never name what an earlier question's fallback calls.
    forbidden: tuple[str, ...] = ()
    namespace: dict | None = None  # the notebook's globals(), set by bind()
    strict: bool = False

    def bind(self, namespace: dict, strict: bool = False) -> "Question":
        return dataclasses.replace(self, namespace=namespace, strict=bool(strict))

    # ------------------------------------------------------------------ judging (no side effects)
    def evaluate(self, answer: Any = _MISSING) -> Verdict:
        """The verdict for ``answer`` (default: ``self.name`` in the bound namespace)."""
        if answer is _MISSING:
            answer = (self.namespace or {}).get(self.name, _MISSING)
        if answer is _MISSING:
            return self._verdict(NOT_ATTEMPTED, f"`{self.name}` is not defined yet: write it and run its cell.")
        if answer is self.reference:
            return self._verdict(NOT_ATTEMPTED, f"`{self.name}` is still the reference put there by an earlier "
                                                "check: run your own cell again first.")
        if not callable(answer):
            return self._verdict(INCORRECT, f"`{self.name}` should be a function, got {type(answer).__name__}.")
        poisoned = self.forbidden_functions()
        if (named := refers_to(answer, poisoned)):
            return self._verdict(INCORRECT, _uses_reference(named))
        n = 0
        for n, case in enumerate(self.cases(), 1):
            args = case.make_args()
            try:
                expected, refused = self._observe(args, self.reference(*args)), None
            except InputError as e:  # an inconsistent input: the answer must refuse it too
                expected, refused = None, e
            try:
                args = case.make_args()
                with reference_unavailable(poisoned) as calls:
                    returned = answer(*args)
                got = None if refused else self._observe(args, returned)
            except NotImplementedError:
                return self._verdict(NOT_ATTEMPTED, "the stub still raises NotImplementedError: replace it with your code.")
            except UsedReference:
                pass  # reported below: calls
            except Exception as e:  # the student's code failed: say where, not how to fix it
                if calls:
                    return self._verdict(INCORRECT, _uses_reference(calls[0]))
                if refused:
                    continue  # refused, as it should
                return self._verdict(INCORRECT, f"it raised {type(e).__name__}: {e} (on {case.description}).")
            if calls:  # also when the answer caught the poison's exception and carried on
                return self._verdict(INCORRECT, _uses_reference(calls[0]))
            if refused:
                return self._verdict(INCORRECT, f"it returned a result for an input it must refuse with an error "
                                                f"({refused}) (on {case.description}).")
            if self.placeholder is not _MISSING and _is_placeholder(returned, self.placeholder):
                if n == 1:  # the stub's answer from the start: blank
                    return self._verdict(NOT_ATTEMPTED, f"it still returns the placeholder {self.placeholder!r}.")
                return self._verdict(INCORRECT, f"it returned {self.placeholder!r} (on {case.description}).")
            try:
                reason = self.compare(expected, got)
            except Exception as e:  # a result so odd that comparing it failed
                reason = f"its result could not be compared with the reference ({type(e).__name__}: {e})"
            if reason:
                return self._verdict(INCORRECT, f"{reason} (on {case.description}).")
        return self._verdict(CORRECT, f"matches the reference on all {n} test cases.")

    def forbidden_functions(self) -> list:
        """The function objects poisoned while an answer runs: the reference and ``forbidden``."""
        return [*unwrapped(self.reference), *(f for path in self.forbidden for f in resolve(path))]

    def _observe(self, args: tuple, returned: Any) -> Any:
        return self.observe(args, returned) if self.observe else returned

    def _verdict(self, status: str, reason: str) -> Verdict:
        return Verdict(self.exercise, self.label, self.name, status, reason)

    # ------------------------------------------------------------------ what the student calls
    def check(self) -> Verdict:
        """Judge the notebook's ``name``, print the verdict, record it, fall back or raise."""
        verdict = self.evaluate()
        if verdict.status != CORRECT and not self.strict and self.namespace is not None:
            self.namespace[self.name] = self.reference
            verdict = dataclasses.replace(verdict, fallback=True)
        print(verdict.message)
        _record(verdict)
        if verdict.status != CORRECT and self.strict:
            raise ExerciseNotDone(f"STRICT: {self.label} (`{self.name}`) is {verdict.status}: {verdict.reason}")
        return verdict

    def hint(self, level: int = 1) -> None:
        """``hint()``: a nudge; ``hint(2)``: a closer one. Neither is the code."""
        if level not in (1, 2):
            raise ValueError(f"there are two hints: {self.label}.hint() and {self.label}.hint(2)")
        more = f"  (closer: {self.label}.hint(2))" if level == 1 else f"  (the code: {self.label}.solution())"
        print(f"💡 Hint {level} ({self.label}, `{self.name}`): {self.hints[level - 1]}{more}")

    def solution(self) -> None:
        """Print the solution cell of this question from ``exercises/<exercise>/solution.py``."""
        print(solution_code(self.exercise, self.name))


def _uses_reference(qualname: str) -> str:
    return (f"it uses the package's own `{qualname}`, which is what this question asks you to write: "
            "the check compares your code with it, so calling it proves nothing.")


def _is_placeholder(got: Any, placeholder: Any) -> bool:
    try:
        return got is placeholder or bool(got == placeholder)
    except Exception:  # e.g. a tensor compared with None
        return False


def _record(verdict: Verdict) -> None:
    path = os.environ.get(RESULTS_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(verdict.to_json() + "\n")


def read_verdicts(path: str | Path) -> dict[str, Verdict]:
    """question label -> its last recorded verdict (a student may check several times)."""
    out: dict[str, Verdict] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines() if Path(path).is_file() else []:
        try:
            v = Verdict(**json.loads(line))
        except (ValueError, TypeError):
            continue  # a garbled line (a submission may write anything here)
        out[v.question] = v
    return out


def solution_code(exercise: str, name: str, root: Path = REPO_ROOT) -> str:
    """The solution notebook's cell that defines ``name`` (between BEGIN/END SOLUTION)."""
    from .authoring import solution_cells

    path = root / "exercises" / exercise / "solution.py"
    if not path.is_file():
        return f"The solutions are not part of this copy of the course ({path} is missing); ask your instructor."
    for cell in solution_cells(path):
        if f"def {name}(" in cell or f"{name} =" in cell:
            return cell
    return f"{path} has no solution cell that defines `{name}`."
