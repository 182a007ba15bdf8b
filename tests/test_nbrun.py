"""The harness itself can fail: unknown parameters, error outputs (even in a
``raises-exception`` cell) and a notebook past its time budget are all caught."""
import nbformat
import pytest

from healthgpt_lite.errors import InputError
from healthgpt_lite.course.nbrun import run_notebook


def make_notebook(path, *cells, tags_first=("parameters",), tags_last=()):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.cells[0].metadata["tags"] = list(tags_first)
    nb.cells[-1].metadata["tags"] = list(tags_last) or nb.cells[-1].metadata.get("tags", [])
    nbformat.write(nb, path)
    return path


def test_good_notebook_passes_with_parameters(tmp_path):
    nb = make_notebook(tmp_path / "ok.ipynb", "PROFILE = 'cpu'", "assert PROFILE == 'smoke'")
    result = run_notebook(nb, tmp_path / "out.ipynb", {"PROFILE": "smoke"}, timeout_s=120)
    assert result.ok, result.error
    assert result.peak_rss_mb > 10 and result.wall_s > 0


def test_unknown_parameter_is_rejected(tmp_path):
    nb = make_notebook(tmp_path / "ok.ipynb", "PROFILE = 'cpu'", "pass")
    with pytest.raises(InputError, match=r"unknown parameter\(s\) \['PROFIEL'\]"):
        run_notebook(nb, tmp_path / "out.ipynb", {"PROFIEL": "smoke"})


def test_error_output_fails_even_in_raises_exception_cell(tmp_path):
    nb = make_notebook(tmp_path / "err.ipynb", "X = 1", "raise ValueError('boom')", tags_last=("raises-exception",))
    result = run_notebook(nb, tmp_path / "out.ipynb", {}, timeout_s=120)
    assert not result.ok and "ValueError: boom" in result.error


def test_time_budget(tmp_path):
    nb = make_notebook(tmp_path / "loop.ipynb", "X = 1", "while True:\n    pass")
    result = run_notebook(nb, tmp_path / "out.ipynb", {}, timeout_s=8)
    assert not result.ok and "timed out" in result.error
