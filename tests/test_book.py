"""``make book``: notebooks executed in one profile and rendered, with their outputs, to pages
that fetch nothing from the network, listed in an index; a failing notebook is rendered with
its error, marked in the index, and makes the command fail."""
import json
import re

import nbformat
import pytest

from healthgpt_lite.course.book import build_book, course_notebooks, render_page
from healthgpt_lite.cli import main
from healthgpt_lite.errors import InputError

REMOTE = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""", re.I)


def fetches_nothing(page: str) -> bool:
    return not REMOTE.search(page) and "@import url(http" not in page


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('PROFILE = "cpu"\nARTIFACTS_DIR = None')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(cells[0]), params, *map(nbformat.v4.new_code_cell, cells[1:])]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


@pytest.mark.notebook
def test_the_book_runs_each_notebook_in_the_profile_and_renders_its_outputs(tmp_path):
    root = tmp_path / "course"
    _notebook(root / "notebooks" / "00_first.ipynb", "# 00 · First chapter\n\nThe area is $\\pi r^2$.",
              "print('profile is', PROFILE, 'artifacts in', ARTIFACTS_DIR)",
              "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
    _notebook(root / "notebooks" / "01_broken.ipynb", "# 01 · A broken chapter", "1 / 0")
    _notebook(root / "notebooks" / "02_last.ipynb", "# 02 · Still built", "print('after the broken one')")
    out = tmp_path / "book"
    chapters = build_book(out, "smoke", tmp_path / "art", root=root, log=lambda *_: None)

    assert [(c.title, c.ok) for c in chapters] == [("00 · First chapter", True), ("01 · A broken chapter", False),
                                                   ("02 · Still built", True)]
    first = (out / "00_first.html").read_text()
    assert "profile is smoke artifacts in " + str(tmp_path / "art") in first  # the profile reached the notebook
    assert "data:image/png;base64," in first  # the figure is embedded
    assert fetches_nothing(first) and (out / "_static" / "mathjax" / "MathJax.js").is_file()
    assert 'src="_static/mathjax/MathJax.js' in first
    assert "ZeroDivisionError" in (out / "01_broken.html").read_text()
    index = (out / "index.html").read_text()
    assert all(f'href="{c.page}"' in index for c in chapters) and "1 notebook(s) failed" in index
    assert fetches_nothing(index)
    assert "ZeroDivisionError" in json.loads((out / "book.json").read_text())[1]["error"]


@pytest.mark.notebook
def test_make_book_on_a_real_notebook_in_smoke(tmp_path, shared_artifacts, repo):
    out = tmp_path / "book"
    assert main(["book", "--profile", "smoke", "--out", str(out), "--artifacts", str(shared_artifacts),
                 "--only", "00"]) == 0
    page = (out / "00_tour.html").read_text()
    assert fetches_nothing(page) and "data:image/png;base64," in page
    assert "<title>00" in page and 'href="00_tour.html"' in (out / "index.html").read_text()


def test_math_is_typeset_by_the_local_mathjax_copy(tmp_path, repo):
    """Rendering alone (no execution): notebook 05's formulas stay TeX for the local MathJax."""
    page = tmp_path / "05.html"
    title = render_page(repo / "notebooks" / "05_h_lora.ipynb", page)
    text = page.read_text()
    assert title.startswith("05") and "$y = W_0 x$" in text and fetches_nothing(text)


def test_only_names_no_notebook_is_a_clear_error(repo):
    with pytest.raises(InputError, match="--only 99: no notebook"):
        course_notebooks(repo, ["99"])
    assert [nb.name[:2] for nb in course_notebooks(repo, ["00", "01"])] == ["00", "01"]
