"""Notebook 09's widgets in a real browser: JupyterLab in headless Chromium, driven by Playwright.

    python -m healthgpt_lite browser-check [--screenshot docs/figures/widget_demo_09.png] [--artifacts DIR]
                                           [--profile smoke]

papermill runs notebook 09 without a browser, so it cannot tell whether its ``ipywidgets``
controls render as controls or fall back to their text form ("interactive(children=...)"),
nor whether moving one re-runs its function. This does what a student does: it trains (or
loads) the three stages in the profile (``smoke`` by default: minutes; ``cpu`` after ``make
reproduce`` for a screenshot of a model that has learnt something), injects the parameters into a copy of the
notebook (``nbrun.prepare_notebook``), starts JupyterLab on it in a private folder, opens it
in Debian's Chromium (``/usr/bin/chromium``; Playwright's own browser download is not used),
runs all cells, and checks that

* no cell ended in an error, and the widget extension rendered every ``interact`` as
  controls (a ``.widget-interact`` box with a drop-down), with no text fallback anywhere;
* choosing another value in one drop-down re-runs its function: that widget's output changes.

It saves a screenshot of the widget it changed, and reports how long each step took. The test
``tests/test_widgets_in_browser.py`` runs it; ``make browser-deps`` installs Chromium.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..artifacts import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = REPO_ROOT / "notebooks" / "09_evaluate_and_demo.ipynb"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
# Read the notebook's state through the JupyterLab app (exposed with --LabApp.expose_app_in_browser).
NOTEBOOK_STATE_JS = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model || !panel.sessionContext.session) return null;
  const cells = panel.content.model.cells, out = {code: 0, done: 0, errors: []};
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    out.code += 1;
    if (cell.executionCount !== null && cell.executionCount !== undefined) out.done += 1;
    for (let j = 0; j < cell.outputs.length; j++) {
      const o = cell.outputs.get(j);
      if (o.type === 'error') out.errors.push(`cell ${i}: ${o.toJSON().ename}: ${o.toJSON().evalue}`);
    }
  }
  const kernel = panel.sessionContext.session.kernel;
  out.kernel = kernel ? kernel.status : 'none';
  out.busy = panel.content.widgets.some(w => w.model.type === 'code' && w.promptNode &&
                                             w.promptNode.textContent.includes('*'));
  return out;
}"""


@dataclass
class BrowserCheck:
    widgets: int  # interact boxes rendered as controls
    changed: str  # which control was changed, and to what
    screenshot: Path | None
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time

    def summary(self) -> str:
        steps = ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
        return f"{self.widgets} widgets rendered as controls; {self.changed}; {steps}"


def chromium_missing() -> str:
    """Why the check cannot run here ('' when it can)."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} is absent (install it: make browser-deps, i.e. apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_lab(folder: Path, port: int, token: str) -> subprocess.Popen:
    home = folder / "home"
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "IPYTHONDIR": str(home / "ipython"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline", "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder / 'work'}", "--allow-root",
           "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.workspaces_dir={home / 'workspaces'}", f"--LabApp.user_settings_dir={home / 'settings'}",
           "--ServerApp.log_level=WARN"]
    log = open(folder / "jupyterlab.log", "wb")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_server(proc: subprocess.Popen, port: int, token: str, folder: Path, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({proc.returncode}): {(folder / 'jupyterlab.log').read_text()[-2000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer on port {port} within {timeout_s:.0f} s")


def _stop(proc: subprocess.Popen) -> None:
    import psutil

    try:
        procs = [*psutil.Process(proc.pid).children(recursive=True), psutil.Process(proc.pid)]
    except psutil.Error:
        return
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for p in alive:
        p.kill()


def run_browser_check(artifacts_dir: str | Path, screenshot: str | Path | None = None, timeout_s: float = 900,
                      profile: str = "smoke", notebook: Path = NOTEBOOK, log=print) -> BrowserCheck:
    """Run notebook 09 in JupyterLab in headless Chromium and check its widgets (see the module
    docstring); raises AssertionError with what was wrong."""
    if (why := chromium_missing()):
        raise InputError(why)
    from playwright.sync_api import sync_playwright

    from ..config import build_config
    from .nbrun import prepare_notebook
    from ..training.pipeline import ensure_stages
    from ..training.stages import ORDER

    seconds: dict[str, float] = {}
    start = time.time()
    artifacts_dir = Path(artifacts_dir)
    ensure_stages(build_config("tiny", profile), ORDER, artifacts_dir)  # load-or-train: the browser run only loads
    seconds["stages"] = time.time() - start
    folder = Path(tempfile.mkdtemp(prefix="hgl-browser-"))
    try:
        (folder / "work").mkdir()
        name = notebook.name
        prepare_notebook(notebook, folder / "work" / name, {"PROFILE": profile, "ARTIFACTS_DIR": str(artifacts_dir)})
        port, token = _free_port(), secrets.token_hex(16)
        t = time.time()
        lab = _start_lab(folder, port, token)
        try:
            _wait_for_server(lab, port, token, folder, 120)
            seconds["JupyterLab start"] = time.time() - t
            with sync_playwright() as pw:
                browser = pw.chromium.launch_persistent_context(
                    str(folder / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
                    args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 1000})
                try:
                    result = _drive(browser.new_page(), port, token, name, screenshot, timeout_s, seconds, log)
                finally:
                    browser.close()
        finally:
            _stop(lab)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds["total"] = time.time() - start
    return result


def _drive(page, port: int, token: str, name: str, screenshot, timeout_s: float, seconds: dict, log) -> BrowserCheck:
    t = time.time()
    page.goto(f"http://127.0.0.1:{port}/lab/tree/{name}?token={token}", wait_until="domcontentloaded")
    page.wait_for_function("() => { const s = (" + NOTEBOOK_STATE_JS + ")(); return s && s.kernel === 'idle'; }",
                           timeout=120_000)
    seconds["open + kernel"] = time.time() - t
    t = time.time()
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    log("running notebook 09 in JupyterLab ...")
    deadline = time.time() + timeout_s
    state = None
    while time.time() < deadline:
        state = page.evaluate(NOTEBOOK_STATE_JS)
        if state and (state["errors"] or (state["done"] == state["code"] and state["kernel"] == "idle"
                                           and not state["busy"])):
            break
        page.wait_for_timeout(1000)
    else:
        raise AssertionError(f"notebook 09 did not finish within {timeout_s:.0f} s in the browser: {state}")
    assert not state["errors"], f"notebook 09 failed in JupyterLab: {state['errors']}"
    seconds["run all cells"] = time.time() - t

    boxes = page.locator(".widget-interact")
    page.wait_for_function("() => document.querySelectorAll('.widget-interact select').length > 0", timeout=30_000)
    fallback = page.get_by_text("interactive(children=", exact=False)
    assert fallback.count() == 0, "a widget is shown as text (its repr): the widget extension did not render it"
    n = boxes.count()
    assert n >= 1, "no ipywidgets.interact box was rendered as controls"
    t = time.time()
    changed = _change_one(page, boxes, n)
    seconds["widget update"] = time.time() - t
    shot = None
    if screenshot:
        shot = Path(screenshot)
        shot.parent.mkdir(parents=True, exist_ok=True)
        box = boxes.nth(changed[0])
        box.scroll_into_view_if_needed()
        box.screenshot(path=str(shot))
    return BrowserCheck(n, changed[1], shot, seconds)


SIGNATURE_JS = """el => Array.from(el.querySelectorAll('img')).map(i => i.src.slice(-200)).join('|')
                     + '#' + el.innerText.trim()"""


def _change_one(page, boxes, n: int) -> tuple[int, str]:
    """Choose another value in the first drop-down of an interact box, boxes showing a figure
    first, until one box's output settles on something new and not empty (a figure or text);
    returns (its index, what was changed)."""
    outputs = [boxes.nth(i).locator(".widget-output").first for i in range(n)]
    with_figure = [i for i in range(n) if outputs[i].count() and outputs[i].locator("img").count()]
    tried = []
    for i in with_figure + [i for i in range(n) if i not in with_figure]:
        select = boxes.nth(i).locator("select").first
        if select.count() == 0 or outputs[i].count() == 0:
            continue
        options = select.locator("option").evaluate_all("os => os.map(o => [o.value, o.textContent.trim()])")
        current = select.input_value()
        other = next(((v, label) for v, label in options if v != current), None)
        if other is None:
            continue
        before = outputs[i].evaluate(SIGNATURE_JS)
        select.scroll_into_view_if_needed()
        select.select_option(value=other[0])
        if _settles_on_new(page, outputs[i], before):
            return i, f"interact box {i}: choosing {other[1]!r} in its first drop-down re-ran it and changed its output"
        tried.append(f"box {i} -> {other[1]!r}: output unchanged")
    raise AssertionError("changing a drop-down updated no widget's output: " + "; ".join(tried))


def _settles_on_new(page, output, before: str, timeout_s: float = 120) -> bool:
    """True once the output differs from ``before``, is not empty, and stays the same for 1 s
    (an Output widget is cleared before it is redrawn: the empty state in between is no answer)."""
    deadline, last = time.time() + timeout_s, None
    while time.time() < deadline:
        now = output.evaluate(SIGNATURE_JS)
        if now != before and now.strip("#|") and now == last:
            return True
        last = now
        page.wait_for_timeout(1000)
    return False
