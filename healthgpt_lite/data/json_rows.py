"""Reading a JSON list or a JSON-lines file, with errors that name the file and the fix.

The one reader behind the records loader (``records.py``) and the data-set converter
(``convert.py``). A UTF-8 byte-order mark, which Windows tools write, is accepted.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError


def read_json_rows(path: str | Path, what: str, not_utf8_hint: str = "") -> list:
    """The rows of ``path``: a JSON list (first non-blank character ``[``) or one JSON value per
    line. ``what`` names the file in errors ("records file", "source file")."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path} does not exist or is not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} {path} is not a UTF-8 JSON file{not_utf8_hint}") from None
    try:
        rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(l) for l in text.splitlines() if l.strip()]
    except json.JSONDecodeError as e:
        raise InputError(f"{what} {path} is not valid JSON / JSON lines: {e}") from None
    if not isinstance(rows, list):
        raise InputError(f"{what} {path}: expected a list of objects, got {type(rows).__name__}")
    return rows
