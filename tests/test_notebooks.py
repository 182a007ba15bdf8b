"""The notebook harness: every notebook and every exercise solution runs top to bottom with
papermill in the ``smoke`` profile, within its budget, with no error output.

Notebooks share one ARTIFACTS_DIR for the session (later notebooks reuse what earlier ones
trained; each also runs alone, since every stage is load-or-train). Wall time and peak memory
per notebook go to ``results/notebook_runs.csv``.
"""
import csv
import os
from pathlib import Path

import pytest

from healthgpt_lite.course.nbrun import run_notebook

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 300
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb")) + sorted((REPO / "exercises").glob("*/solution*.ipynb"))
CSV = Path(os.environ.get("HEALTHGPT_LITE_NB_CSV", REPO / "results" / "notebook_runs.csv"))
RUNS: list[dict] = []


@pytest.fixture(scope="session", autouse=True)
def write_runs_csv():
    yield
    if RUNS:
        CSV.parent.mkdir(parents=True, exist_ok=True)
        with CSV.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(RUNS[0]))
            writer.writeheader()
            writer.writerows(RUNS)


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO)))
def test_notebook_runs_in_smoke_profile(notebook, shared_artifacts, tmp_path):
    params = {"PROFILE": "smoke", "ARTIFACTS_DIR": str(shared_artifacts)}
    result = run_notebook(notebook, tmp_path / notebook.name, params, timeout_s=BUDGET_S)
    RUNS.append({**result.row(), "notebook": str(notebook.relative_to(REPO))})
    assert result.ok, f"{notebook.name}: {result.error}"
