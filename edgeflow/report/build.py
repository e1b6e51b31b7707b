"""A comparison of runs: the table (varied params + key metrics), the Pareto front, PNG plots and a
self-contained HTML page. Reads nothing itself: give it ``RunRow``s (``edgeflow.report.runs``)."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path

from edgeflow.core.suggest import did_you_mean
from edgeflow.report.pareto import QUANTITIES, Objective, pareto_front, pick_metric
from edgeflow.report.runs import RunRow, label, short, varied_params

__all__ = ["Report", "build_report", "to_csv", "to_markdown", "write_plots", "write_html"]


@dataclass
class Report:
    """Runs, the params that vary between them, the metric columns, the objectives and the indices
    (into ``rows``) of the runs on the Pareto front."""

    rows: list[RunRow]
    params: list[str]
    columns: list[str]
    objectives: list[Objective]
    front: list[int]

    def value(self, i: int, metric: str) -> float:
        return float(self.rows[i].metrics.get(metric, math.nan))


def build_report(rows: list[RunRow], objectives: list[Objective] | None = None) -> Report:
    """The report of ``rows``. Without ``objectives``: the shown accuracy (max) against the shown
    latency (min), or the accuracy alone. Raises ``ValueError`` (one line) for an objective metric
    no run reports."""
    available = {k for row in rows for k in row.metrics}
    columns = [m for m in (pick_metric(q, available) for q in QUANTITIES) if m]
    if objectives is None:
        acc, lat = pick_metric("test_acc", available), pick_metric("latency_ms", available)
        objectives = [Objective(acc, "max")] if acc else []
        if lat:
            objectives.append(Objective(lat, "min"))
    for objective in objectives:
        if objective.metric not in available:
            raise ValueError(f"objective {objective.metric!r}: no run reports it"
                             f"{did_you_mean(objective.metric, sorted(available))}")
        if objective.metric not in columns:
            columns.append(objective.metric)
    points = [[float(row.metrics.get(o.metric, math.nan)) for o in objectives] for row in rows]
    front = pareto_front(points, objectives) if objectives else []
    return Report(rows, varied_params(rows), columns, list(objectives), front)


def _fmt(value: float) -> str:
    if math.isnan(value):
        return ""
    return f"{int(value)}" if float(value).is_integer() else f"{value:.4g}"


def table(report: Report) -> tuple[list[str], list[list[str]]]:
    """Header and rows: run name, run id, the varied params, the metric columns, ``*`` on the front."""
    header = ["run", "run_id", *(short(k) for k in report.params), *report.columns, "pareto"]
    body = []
    for i, row in enumerate(report.rows):
        body.append([row.name, row.run_id, *(row.params.get(k, "") for k in report.params),
                     *(_fmt(report.value(i, c)) for c in report.columns), "*" if i in report.front else ""])
    return header, body


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header, body = table(report)
    writer.writerow(header)
    writer.writerows(body)
    return out.getvalue()


def to_markdown(report: Report) -> str:
    header, body = table(report)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def write_plots(report: Report, out_dir: Path) -> list[Path]:
    """One PNG per cost column (latency, energy, flash, RAM): accuracy against it, one point per run
    labelled by what varied, the Pareto front (of accuracy and that cost) drawn and highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = next((c for c in report.columns if c.endswith("/test_acc")), None)
    if acc is None:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for cost in (c for c in report.columns if not c.endswith("/test_acc")):
        idx = [i for i in range(len(report.rows)) if not math.isnan(report.value(i, acc) + report.value(i, cost))]
        if not idx:
            continue
        objectives = [Objective(acc, "max"), Objective(cost, "min")]
        front = [idx[j] for j in pareto_front([[report.value(i, acc), report.value(i, cost)] for i in idx], objectives)]
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
        ax.scatter([report.value(i, cost) for i in idx], [report.value(i, acc) for i in idx], color="#8aa", s=36,
                   label="runs", zorder=2)
        line = sorted(front, key=lambda i: report.value(i, cost))
        ax.plot([report.value(i, cost) for i in line], [report.value(i, acc) for i in line], "-o", color="#d33",
                ms=8, label="Pareto front", zorder=3)
        for i in idx:
            ax.annotate(label(report.rows[i], report.params), (report.value(i, cost), report.value(i, acc)),
                        textcoords="offset points", xytext=(5, 5), fontsize=7)
        ax.set_xlabel(cost)
        ax.set_ylabel(f"{acc} (%)")
        ax.set_title(f"{acc} against {cost}")
        ax.grid(alpha=0.3)
        ax.margins(x=0.3, y=0.1)  # room for the labels
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{acc.replace('/', '_')}_vs_{cost.replace('/', '_')}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def write_html(report: Report, plots: list[Path], path: Path, title: str) -> Path:
    """One self-contained page: the runs table (front rows highlighted), the objectives and the
    plots embedded as base64 PNGs (no other file needed)."""
    header, body = table(report)
    front = ' class="front"'
    rows = "\n".join(
        f"<tr{front if i in report.front else ''}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for i, row in enumerate(body))
    images = "\n".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}">'
        f"<figcaption>{html.escape(p.stem)}</figcaption></figure>" for p in plots)
    objectives = ", ".join(f"{o.metric} ({o.direction})" for o in report.objectives) or "none"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, td:nth-child(2) {{ text-align: left; }}
tr.front td {{ background: #fde8e8; font-weight: 600; }}
figure {{ display: inline-block; margin: 1em 1em 0 0; }} img {{ max-width: 700px; border: 1px solid #ddd; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{len(report.rows)} runs; Pareto front over {html.escape(objectives)}: {len(report.front)} runs (highlighted).</p>
<div style="overflow-x: auto"><table><thead><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in header)}</tr></thead>
<tbody>
{rows}
</tbody></table></div>
<h2>Accuracy against cost</h2>
{images}
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
