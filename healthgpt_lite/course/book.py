"""``make book``: the executed course as a static site that opens offline.

    python -m healthgpt_lite book [--profile cpu] [--out build/book] [--artifacts DIR] [--only 01 05]

Every notebook of ``notebooks/`` runs top to bottom with papermill (``nbrun.run_notebook``) in
one profile, with the project's ``ARTIFACTS_DIR`` (what ``make reproduce`` left there is
reused: every stage is load-or-train, so only what is missing trains), and is rendered with its
outputs (figures, tables, printed answers) to ``OUT/NN_name.html``; ``OUT/index.html`` lists
the chapters with their titles, run times and status. A notebook that fails is still rendered
(its error is on the page) and marked in the index, and the command exits non-zero.

Why nbconvert's HTML exporter (and not Jupyter Book or mkdocs-jupyter): it is the Jupyter
project's own renderer, already installed with JupyterLab, and each page is one standalone
file with its figures embedded, so the folder opens from disk, zips and mails. Jupyter Book 2
builds with a Node toolchain and mkdocs-jupyter adds a theme stack, and both need extra
plugins to work without a network. Offline here means: the page fetches nothing (require.js,
the widget manager and Mermaid are left out, ``book_templates/offline.html.j2``) and math is
typeset by the MathJax copy that ``jupyter-server-mathjax`` ships, copied next to the pages.
Widgets (notebook 09) show the output of their first call only: an executed notebook holds no
live kernel; ``make lab`` runs them.
"""
from __future__ import annotations

import datetime
import html
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..artifacts import REPO_ROOT

TEMPLATES = Path(__file__).parent / "book_templates"
MATHJAX_DIR = "_static/mathjax"
MATHJAX_CONFIG = "MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


@dataclass
class Chapter:
    notebook: Path
    title: str
    page: str  # file name of the rendered page inside the book folder
    ok: bool
    wall_s: float
    error: str = ""


def course_notebooks(root: Path = REPO_ROOT, only: list[str] | None = None) -> list[Path]:
    """``notebooks/NN_*.ipynb`` in order; ``only``: the ones whose names start with these prefixes."""
    found = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [nb for nb in found if any(nb.name.startswith(p) for p in only)]
        if not found:
            raise InputError(f"--only {' '.join(only)}: no notebook in {root / 'notebooks'} starts with that")
    return found


def notebook_title(nb: dict, fallback: str) -> str:
    """The first ``# `` heading of the notebook's markdown (papermill puts a banner above the
    title of a notebook that failed, so not simply the first cell's first line)."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def render_page(executed: Path, page: Path) -> str:
    """Executed notebook -> one standalone HTML page (figures embedded); returns its title."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(executed, as_version=4)
    title = notebook_title(nb, executed.stem)
    nb.metadata["title"] = title
    nb.metadata.pop("widgets", None)  # no widget state: the offline template has no widget manager
    exporter = HTMLExporter(template_name="lab", template_file="offline.html.j2",
                            extra_template_paths=[str(TEMPLATES)])
    exporter.mathjax_url = f"{MATHJAX_DIR}/{MATHJAX_CONFIG}"
    body, _ = exporter.from_notebook_node(nb)
    page.write_text(body, encoding="utf-8")
    return title


def copy_mathjax(out: Path) -> None:
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    target = out / MATHJAX_DIR
    if not (target / "MathJax.js").is_file():
        shutil.copytree(source, target, dirs_exist_ok=True)


def build_book(out: str | Path = "build/book", profile: str = "cpu", artifacts_dir: str | Path | None = None,
               only: list[str] | None = None, timeout_s: float = 4 * 3600, root: Path = REPO_ROOT,
               log=print) -> list[Chapter]:
    """Execute and render every course notebook into ``out``; returns one Chapter per notebook."""
    from ..artifacts import default_artifacts_dir
    from .nbrun import declared_parameters, run_notebook

    out = Path(out)
    executed_dir = out / "_executed"
    executed_dir.mkdir(parents=True, exist_ok=True)
    artifacts = Path(artifacts_dir) if artifacts_dir else default_artifacts_dir()
    copy_mathjax(out)
    chapters = []
    for nb in course_notebooks(root, only):
        wanted = {"PROFILE": profile, "ARTIFACTS_DIR": str(artifacts)}
        params = {k: v for k, v in wanted.items() if k in declared_parameters(nb)}
        log(f"{nb.name}: running ({profile}) ...")
        run = run_notebook(nb, executed_dir / nb.name, params, timeout_s=timeout_s)
        page = nb.with_suffix(".html").name
        title = nb.stem
        if (executed_dir / nb.name).is_file():
            title = render_page(executed_dir / nb.name, out / page)
        else:  # papermill wrote nothing (it could not start): a page that says so
            (out / page).write_text(f"<!DOCTYPE html><title>{html.escape(nb.stem)}</title><h1>{html.escape(nb.stem)}"
                                    f"</h1><p>Not executed: {html.escape(run.error)}</p>", encoding="utf-8")
        chapters.append(Chapter(nb, title, page, run.ok, run.wall_s, run.error))
        log(f"{nb.name}: {'ok' if run.ok else 'FAILED'} in {run.wall_s:.0f} s")
    write_index(out, chapters, profile, artifacts)
    (out / "book.json").write_text(json.dumps([{"notebook": c.notebook.name, "title": c.title, "ok": c.ok,
                                                "wall_s": round(c.wall_s, 1), "error": c.error} for c in chapters],
                                              indent=1), encoding="utf-8")
    return chapters


def _commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_index(out: Path, chapters: list[Chapter], profile: str, artifacts: Path, root: Path = REPO_ROOT) -> Path:
    total = sum(c.wall_s for c in chapters)
    rows = "\n".join(
        f'<tr><td><a href="{html.escape(c.page)}">{html.escape(c.title)}</a></td><td>{html.escape(c.notebook.name)}</td>'
        f'<td class="num">{c.wall_s:.0f} s</td><td class="{"ok" if c.ok else "failed"}">'
        f'{"ran" if c.ok else "failed: " + html.escape(c.error[:200])}</td></tr>' for c in chapters)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    failed = sum(not c.ok for c in chapters)
    status = "every notebook ran" if not failed else f"{failed} notebook(s) failed: their pages show the error"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>healthgpt_lite: the executed course ({html.escape(profile)})</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; }}
.num {{ text-align: right; white-space: nowrap; }} .ok {{ color: #1a7f37; }} .failed {{ color: #cf222e; }}
</style></head><body>
<h1>healthgpt_lite: the executed course</h1>
<p>Every notebook of <code>notebooks/</code>, run top to bottom in the <strong>{html.escape(profile)}</strong> profile
and rendered with its outputs: figures, tables and the model's answers as they came out of this run.
Built {stamp} from commit <code>{html.escape(_commit(root))}</code> with artifacts from
<code>{html.escape(str(artifacts))}</code>; {len(chapters)} notebooks in {total / 60:.1f} min; {status}.</p>
<p>The pages open without a network. The widgets of notebook 09 show the output of their first call only:
to use them, and to change any parameter, run the notebooks yourself (<code>make lab</code>).</p>
<table><tr><th>chapter</th><th>notebook</th><th class="num">run time</th><th>status</th></tr>
{rows}
</table></body></html>
"""
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
