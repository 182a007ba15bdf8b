"""Several seeds, one answer: the mean of every number and its spread.

A score of one training run is one draw: with another seed (initialisation of the plugins and
adapters, order of the batches, dropout) it moves. ``make reproduce --seeds N`` trains N times
and reports, for every number, the mean over seeds and the sample standard deviation (the
spread), so "beats the baseline" can be read against how much a seed moves it.

    >>> mean_and_spread([{"a": 1.0, "b": {"c": 2.0}}, {"a": 3.0, "b": {"c": 2.0}}])
    ({'a': 2.0, 'b': {'c': 2.0}}, {'a': 1.4142135623730951, 'b': {'c': 0.0}})
"""
from __future__ import annotations

import math
from typing import Any


def _numbers(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def mean_and_spread(runs: list[dict]) -> tuple[dict, dict]:
    """Nested dicts of the same shape -> (mean, sample std) of every numeric leaf.

    A leaf that is not a number in every run (text, a missing key) is kept from the first run
    in the mean and left out of the spread; the spread of a single run is 0."""
    mean, spread = {}, {}
    for key, first in runs[0].items():
        values = [r.get(key) for r in runs]
        if isinstance(first, dict) and all(isinstance(v, dict) for v in values):
            mean[key], spread[key] = mean_and_spread(values)
        elif _numbers(values):
            m = sum(values) / len(values)
            var = sum((v - m) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
            mean[key], spread[key] = m, math.sqrt(var)
        else:
            mean[key] = first
    return mean, spread


def pm(mean: Any, spread: Any, n_seeds: int, fmt: str = ".3f") -> str:
    """``0.812 ± 0.013`` (over seeds), or the plain value for one seed."""
    if not isinstance(mean, (int, float)):
        return str(mean)
    return format(mean, fmt) if n_seeds < 2 or spread is None else f"{mean:{fmt}} ± {spread:{fmt}}"
