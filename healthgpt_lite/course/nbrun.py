"""Run a notebook with papermill in its own process, with a time limit, measuring wall time
and peak memory, and judging it strictly. Used by the test harness and by the exercise grader.

papermill facts this is built around (docs/ARCHITECTURE.md section 6):
* an unknown ``-p`` name only warns, so parameters are checked against the notebook's
  ``parameters`` cell first (:func:`check_parameters`);
* any error output fails the run, even one in a ``raises-exception`` cell;
* the run is a child process: a notebook that loops forever is killed at ``timeout_s``
  without taking the caller down.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

from ..errors import InputError


@dataclass
class NotebookRun:
    notebook: str
    ok: bool
    wall_s: float
    peak_rss_mb: float
    error: str = ""  # why it failed: the error output's name and message, a timeout, a crash
    output: str = ""  # the executed notebook's path

    def row(self) -> dict:
        return {"notebook": self.notebook, "ok": self.ok, "wall_s": round(self.wall_s, 1),
                "peak_rss_mb": round(self.peak_rss_mb, 1), "error": self.error[:300]}


def declared_parameters(notebook: str | Path) -> dict:
    """The names declared in the notebook's ``parameters`` cell (papermill's own parser)."""
    import papermill

    return papermill.inspect_notebook(str(notebook))


def check_parameters(notebook: str | Path, parameters: dict) -> None:
    """Reject names the notebook does not declare (papermill itself would only warn)."""
    declared = declared_parameters(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise InputError(f"{notebook}: unknown parameter(s) {unknown}; it declares {sorted(declared)}")


def prepare_notebook(notebook: str | Path, output: str | Path, parameters: dict) -> Path:
    """A copy of ``notebook`` with ``parameters`` injected after its ``parameters`` cell (as
    papermill does) and nothing executed: for running it elsewhere, e.g. in JupyterLab."""
    import papermill

    check_parameters(notebook, parameters)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(notebook), str(output), parameters=parameters, prepare_only=True,
                               progress_bar=False, log_output=False)
    return Path(output)


def error_outputs(executed: dict) -> list[str]:
    """Every error output of an executed notebook (as 'Ename: evalue'), in cell order."""
    errors = []
    for i, cell in enumerate(executed.get("cells", [])):
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if out.get("output_type") == "error":
                errors.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
    return errors


def run_notebook(notebook: str | Path, output: str | Path, parameters: dict | None = None,
                 timeout_s: float = 300, cwd: str | Path | None = None, env: dict | None = None,
                 check: bool = True) -> NotebookRun:
    """Execute ``notebook`` into ``output`` in a child process; never raises for a bad notebook
    (the result says why), only for unknown parameters when ``check`` is set."""
    notebook, output = Path(notebook), Path(output)
    parameters = dict(parameters or {})
    if check:
        check_parameters(notebook, parameters)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(parameters, f)
        params_file = f.name
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(output), "-f", params_file,
           "--cwd", str(cwd or notebook.parent), "--no-progress-bar", "--log-level", "ERROR"]
    # OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning; on a small shared
    # machine spinning threads of two processes fight for the cores (8-12x slower under load)
    run_env = {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1", **(env or {})}
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=run_env,
                            start_new_session=True)
    peak = _PeakMemory(proc.pid)
    try:
        log, _ = proc.communicate(timeout=timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_tree(proc.pid)
        log, _ = proc.communicate()
        timed_out = True
    finally:
        peak.stop()
        os.unlink(params_file)
    wall = time.time() - start
    log_text = log.decode(errors="replace") if log else ""
    if timed_out:
        return NotebookRun(str(notebook), False, wall, peak.mb, f"timed out after {timeout_s:.0f} s", str(output))
    errors = []
    if output.is_file():
        try:
            errors = error_outputs(json.loads(output.read_text(encoding="utf-8")))
        except json.JSONDecodeError:
            errors = ["the executed notebook is not valid JSON"]
    if proc.returncode != 0 and not errors:
        errors = [log_text.strip().splitlines()[-1] if log_text.strip() else f"exit code {proc.returncode}"]
    return NotebookRun(str(notebook), not errors, wall, peak.mb, "; ".join(errors), str(output))


class _PeakMemory:
    """Polls the summed RSS of a process and its children (papermill + the kernel)."""

    def __init__(self, pid: int, every_s: float = 0.2):
        self.mb, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(pid, every_s), daemon=True)
        self._thread.start()

    def _poll(self, pid: int, every_s: float) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
                rss = sum(p.memory_info().rss for p in procs if p.is_running())
                self.mb = max(self.mb, rss / 2**20)
            except psutil.Error:
                pass
            self._stop.wait(every_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def _kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.Error:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=5)
