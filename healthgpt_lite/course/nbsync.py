"""Notebooks are written as text (jupytext percent ``.py`` files, easy to diff and review) and
paired with the ``.ipynb`` that students open and papermill runs. ``sync`` rebuilds each
``.ipynb`` from its ``.py`` without outputs; a test fails when a pair has drifted apart.

    python -m healthgpt_lite notebooks sync      # after editing a notebooks/*.py file
"""
from __future__ import annotations

from pathlib import Path

from ..artifacts import REPO_ROOT

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def paired_sources(root: Path = REPO_ROOT) -> list[Path]:
    """Every jupytext source: notebooks/*.py and exercises/**/*.py with a percent header."""
    candidates = sorted((root / "notebooks").glob("*.py")) + sorted((root / "exercises").rglob("*.py"))
    return [p for p in candidates if p.read_text(encoding="utf-8").startswith("# ---\n# jupyter:")]


def build_notebook(py: Path):
    import jupytext

    nb = jupytext.read(py)
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata.setdefault("jupytext", {})["formats"] = "ipynb,py:percent"
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"  # stable ids: re-syncing an unchanged notebook changes nothing
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def sync(py: Path) -> Path:
    import jupytext

    out = py.with_suffix(".ipynb")
    jupytext.write(build_notebook(py), out, fmt="ipynb")
    return out


def _cells(nb) -> list[tuple]:
    return [(c.cell_type, c.source.strip(), tuple(c.get("metadata", {}).get("tags", []))) for c in nb.cells]


def out_of_sync(py: Path) -> str:
    """'' when ``py`` and its ``.ipynb`` hold the same cells, else what differs."""
    import nbformat

    ipynb = py.with_suffix(".ipynb")
    if not ipynb.is_file():
        return f"{ipynb} is missing (run: python -m healthgpt_lite notebooks sync)"
    want, have = _cells(build_notebook(py)), _cells(nbformat.read(ipynb, as_version=4))
    if want == have:
        return ""
    for i, (w, h) in enumerate(zip(want, have)):
        if w != h:
            return f"{ipynb} differs from {py.name} at cell {i} (run: python -m healthgpt_lite notebooks sync)"
    return f"{ipynb} has {len(have)} cells, {py.name} has {len(want)} (run: python -m healthgpt_lite notebooks sync)"
