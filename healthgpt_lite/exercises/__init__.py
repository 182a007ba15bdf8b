"""Exercises: students rebuild one key piece of HealthGPT per notebook and check themselves.

Every exercise notebook ``exercises/NN_name/`` has one checker module here,
``healthgpt_lite/exercises/exNN_name.py``, that defines ``QUESTIONS = (q1, q2, ...)``
(:class:`~healthgpt_lite.exercises.checking.Question` objects). A notebook gets them with

    from healthgpt_lite.exercises import load_questions
    q1, q2 = load_questions("05_constrained_decoding", globals(), strict=STRICT)

and then calls ``q1.check()``, ``q1.hint()``, ``q1.solution()``. See ``exercises/README.md``
for how to add an exercise, build the student copies and grade submissions.
"""
from __future__ import annotations

import importlib

from ..errors import InputError
from .checking import CORRECT, INCORRECT, NOT_ATTEMPTED, ExerciseNotDone, Question, Verdict

__all__ = ["CORRECT", "INCORRECT", "NOT_ATTEMPTED", "ExerciseNotDone", "Question", "Verdict",
           "checker_module", "load_questions", "questions_of"]


def checker_module(exercise: str):
    """``"05_constrained_decoding"`` -> the module ``healthgpt_lite.exercises.ex05_constrained_decoding``."""
    try:
        return importlib.import_module(f"{__name__}.ex{exercise}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.ex{exercise}":
            raise
        raise InputError(f"no checker for exercise {exercise!r}: expected healthgpt_lite/exercises/ex{exercise}.py") from None


def questions_of(exercise: str) -> tuple[Question, ...]:
    return tuple(checker_module(exercise).QUESTIONS)


def load_questions(exercise: str, namespace: dict, strict: bool = False) -> tuple[Question, ...]:
    """The exercise's questions, reading answers from ``namespace`` (pass ``globals()``)."""
    return tuple(q.bind(namespace, strict) for q in questions_of(exercise))
