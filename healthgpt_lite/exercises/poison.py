"""Make the package's own implementation unusable while a student's answer runs.

An answer that only calls (or wraps) the project's reference is not an answer. Looking for
``import`` lines in the source cannot tell: the reference can be reached through an alias, a
default argument, a closure, ``q1.reference``, another package function that calls it, or
``getattr`` on a string. So :func:`reference_unavailable` goes to the function *objects*
themselves: for as long as the answer runs, the code of every forbidden function is swapped
for code that records the call and raises :class:`UsedReference`. Every route to the same
function object then runs the poison, and a student's ``try/except`` that swallows it does not
hide it either (the call is recorded before it raises). :func:`refers_to` adds a static check
for a reference that the test cases never happened to call (a dead branch).

A forbidden entry is a dotted path to a function, a class (all functions defined on it) or a
module (all functions and class methods defined in it): ``"healthgpt_lite.model.multimodal
.splice_visual_tokens"``, ``"healthgpt_lite.lora.hlora.HLoRAPlugin"``,
``"torchmetrics.functional.image.psnr"``. C functions (``torch.*``) cannot be swapped and are
never forbidden: students build on torch.
"""
from __future__ import annotations

import importlib
import inspect
import types
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator


class UsedReference(BaseException):
    """Raised inside a poisoned reference. A BaseException, so ``except Exception`` in a
    student's code does not catch it (and the call is recorded anyway)."""


_CALLS: list[str] = []  # qualified names of poisoned functions called since the last reset


def called(code: types.CodeType) -> None:
    """What a poisoned function runs (it reaches this module through ``__import__``)."""
    _CALLS.append(code.co_qualname)
    raise UsedReference(f"the package's own `{code.co_qualname}` was called")


def resolve(path: str) -> list[types.FunctionType]:
    """The Python functions a dotted path names (see the module docstring)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        break
    else:
        raise ModuleNotFoundError(f"cannot import any prefix of {path!r}")
    if inspect.ismodule(obj):
        members = [m for _, m in inspect.getmembers(obj) if getattr(m, "__module__", None) == obj.__name__]
        return [f for m in members for f in (_class_functions(m) if inspect.isclass(m) else unwrapped(m))]
    if inspect.isclass(obj):
        return _class_functions(obj)
    return unwrapped(obj)


def _class_functions(cls: type) -> list[types.FunctionType]:
    out = []
    for value in vars(cls).values():
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        elif isinstance(value, property):
            out += [f for acc in (value.fget, value.fset) if acc for f in unwrapped(acc)]
            continue
        out += unwrapped(value)
    return out


def unwrapped(obj) -> list[types.FunctionType]:
    """``obj`` and every function it wraps (``functools.wraps`` chains, e.g. ``torch.no_grad``)."""
    out = []
    while obj is not None and obj not in out:
        if isinstance(obj, types.FunctionType):
            out.append(obj)
        elif not callable(obj):
            break
        obj = getattr(obj, "__wrapped__", None)
    return out


def _poison_code(original: types.CodeType) -> types.CodeType:
    """Code that calls :func:`called`, with as many free variables as ``original`` has
    (Python only lets a function's code be replaced by code with the same number)."""
    n = len(original.co_freevars)
    cells = "".join(f"    v{i} = None\n" for i in range(n))
    touch = f"        ({', '.join(f'v{i}' for i in range(n))},)\n" if n else ""
    source = (f"def factory():\n{cells}    def poison(*args, **kwargs):\n{touch}"
              f"        __import__({__name__!r}, fromlist=['called']).called(__import__('sys')._getframe(0).f_code)\n"
              "    return poison\n")
    scope: dict = {}
    exec(compile(source, "<poisoned reference>", "exec"), scope)
    code = scope["factory"]().__code__
    return code.replace(co_name=original.co_name, co_qualname=original.co_qualname)


@contextmanager
def reference_unavailable(functions: Iterable[types.FunctionType]) -> Iterator[list[str]]:
    """While inside, every function in ``functions`` raises :class:`UsedReference` when called;
    the yielded list collects the qualified names of those that were called."""
    saved = {}
    for f in functions:
        if id(f) not in saved:
            saved[id(f)] = (f, f.__code__)
    _CALLS.clear()
    calls: list[str] = []
    try:
        for f, code in saved.values():
            f.__code__ = _poison_code(code)
        yield calls
    finally:
        for f, code in saved.values():
            f.__code__ = code
        calls += _CALLS
        _CALLS.clear()


def refers_to(answer: Callable, functions: Iterable[types.FunctionType], depth: int = 3) -> str | None:
    """The qualified name of a forbidden function that ``answer`` names (a global it reads, a
    closure cell, a default argument), looking through helper functions it names up to
    ``depth`` levels; None if it names none."""
    forbidden = {id(f): f for f in functions}
    seen: set[int] = set()

    def values_named_by(fn) -> Iterator:
        code = getattr(fn, "__code__", None)
        if code is None:
            return
        names = set()
        stack = [code]
        while stack:  # nested functions and comprehensions have their own code objects
            c = stack.pop()
            names.update(c.co_names)
            stack += [k for k in c.co_consts if isinstance(k, types.CodeType)]
        glob = getattr(fn, "__globals__", {})
        yield from (glob[n] for n in names if n in glob)
        yield from (cell.cell_contents for cell in (fn.__closure__ or ()) if _filled(cell))
        yield from (fn.__defaults__ or ())
        yield from (fn.__kwdefaults__ or {}).values()

    def visit(fn, level: int) -> str | None:
        for value in values_named_by(fn):
            for f in unwrapped(getattr(value, "__func__", value)):
                if id(f) in forbidden:
                    return f.__qualname__
            if isinstance(value, types.FunctionType) and level < depth and id(value) not in seen:
                seen.add(id(value))
                if (hit := visit(value, level + 1)):
                    return hit
        return None

    seen.add(id(answer))
    return visit(answer, 0)


def _filled(cell) -> bool:
    try:
        cell.cell_contents
        return True
    except ValueError:  # an empty cell (a name assigned later)
        return False
