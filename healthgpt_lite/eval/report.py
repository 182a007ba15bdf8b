"""``results/REPORT.md`` + ``results/metrics.json``: what a run measured, written as it goes.

Sections, tables and figures are appended by each pipeline step; :meth:`Report.write` is
called after every step, so an interrupted run still leaves a readable partial report.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from ..artifacts import atomic_write_bytes, atomic_write_json


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None, floatfmt: str = ".3f") -> str:
    if not rows:
        return "_(no rows)_\n"
    columns = list(columns or rows[0].keys())
    fmt = lambda v: format(v, floatfmt) if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


class Report:
    """``markdown`` / ``metrics``: the file names in ``out_dir`` (e.g. ``qilin.md`` / ``qilin.json``)."""

    def __init__(self, out_dir: str | Path, title: str = "healthgpt_lite: reproduction report",
                 markdown: str = "REPORT.md", metrics: str = "metrics.json"):
        self.out = Path(out_dir)
        self.markdown_name, self.metrics_name = markdown, metrics
        (self.out / "figures").mkdir(parents=True, exist_ok=True)
        self.title = title
        self.parts: list[str] = []
        self.metrics: dict[str, Any] = {}
        self.started = time.time()

    def section(self, title: str, text: str = "") -> None:
        self.parts.append(f"## {title}\n\n{text.strip()}\n" if text else f"## {title}\n")

    def text(self, text: str) -> None:
        self.parts.append(text.strip() + "\n")

    def table(self, rows: Sequence[dict], columns: Sequence[str] | None = None, floatfmt: str = ".3f") -> None:
        self.parts.append(markdown_table(rows, columns, floatfmt))

    def figure(self, name: str, fig, caption: str) -> Path:
        path = self.out / "figures" / f"{name}.png"
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        atomic_write_bytes(path, buf.getvalue())
        self.parts.append(f"![{caption}](figures/{name}.png)\n\n*{caption}*\n")
        return path

    def write(self) -> Path:
        self.metrics["wall_time_s"] = round(time.time() - self.started, 1)
        body = f"# {self.title}\n\n" + "\n".join(self.parts)
        atomic_write_bytes(self.out / self.markdown_name, body.encode())
        atomic_write_json(self.out / self.metrics_name, self.metrics)
        return self.out / self.markdown_name
