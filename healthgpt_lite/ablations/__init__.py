"""The paper's ablations in miniature (notebook 10, ``reproduce --ablations``).

``settings.py`` holds the config section ``ablation``, ``runs.py`` defines the five tables as
data, ``runner.py`` trains their runs (each stage load-or-train), ``scoring.py`` scores them on
the test split and gathers the tables, ``findings.py`` states what each table shows.
"""
from importlib import import_module

_EXPORTS = {"Row": "runs", "Run": "runs", "Table": "runs", "budget": "runs", "stage_steps": "runs", "tables": "runs",
            "run_ablations": "scoring", "table_rows": "scoring"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    """Lazy re-exports: ``config.py`` imports ``ablations.settings`` before ``runs`` can import the config."""
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
