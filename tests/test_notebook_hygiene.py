"""Committed notebooks: valid, without outputs, one literal-only ``parameters`` cell with the
project's names, the same anatomy everywhere, and in sync with their jupytext source."""
import ast
import json
from pathlib import Path

import pytest

from healthgpt_lite.course.nbsync import out_of_sync, paired_sources

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
ALL_IPYNB = NOTEBOOKS + sorted((REPO / "exercises").rglob("*.ipynb"))
STANDARD_PARAMETERS = {"PROFILE", "PRESET", "SEED", "ARTIFACTS_DIR", "DATA_DIR", "OVERRIDES"}
ids = lambda p: str(p.relative_to(REPO))  # noqa: E731


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


@pytest.mark.parametrize("path", ALL_IPYNB, ids=ids)
def test_no_outputs_committed(path):
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name}: strip outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_one_literal_parameters_cell(path):
    cells = [c for c in _cells(path) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    tree = ast.parse("".join(cells[0]["source"]))
    names = set()
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, "only NAME = literal lines"
        ast.literal_eval(stmt.value)  # literals only: derived values belong in the next cell
        names.add(stmt.targets[0].id)
    assert STANDARD_PARAMETERS <= names, f"{path.name} lacks {STANDARD_PARAMETERS - names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_anatomy(path):
    text = "\n".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")
    for part in ("**Learning objectives.**", "## Summary", "## Check your understanding", "exercises/"):
        assert part in text, f"{path.name} lacks {part!r}"


@pytest.mark.parametrize("source", paired_sources(REPO), ids=ids)
def test_pair_in_sync(source):
    assert out_of_sync(source) == ""


def test_every_notebook_has_a_source():
    sources = {p.with_suffix(".ipynb") for p in paired_sources(REPO)}
    assert set(ALL_IPYNB) <= sources, "every .ipynb is generated from a jupytext .py"
