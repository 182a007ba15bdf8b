"""The paper's ablations in miniature (notebook 10, ``reproduce --ablations``).

``runs.py`` defines the five tables as data, ``runner.py`` trains their runs (each stage
load-or-train), ``scoring.py`` scores them on the test split and gathers the tables,
``report.py`` writes ``results/ablations.md`` and ``.json``.
"""
from .runs import Row, Run, Table, budget, stage_steps, tables
from .scoring import run_ablations, table_rows

__all__ = ["Row", "Run", "Table", "budget", "stage_steps", "tables", "run_ablations", "table_rows"]
