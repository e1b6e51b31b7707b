"""The summary a sweep's parent run carries: a per-job table and the best job's metrics.

``summarize`` reads the parent's direct children (the sweep's jobs), logs ``jobs.csv`` (one row
per job: ``job_num``, ``run_name``, ``status``, ``run_id`` and every final metric), copies the
best finished job's metrics onto the parent under the same names (so the parent's row in the
MLflow UI shows them), tags it ``edgeflow.best_run_id`` / ``edgeflow.best_run_name`` /
``edgeflow.best_by``, and logs ``sweep/jobs`` and ``sweep/failed_jobs``.
"""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Ranking", "summarize"]


@dataclass(frozen=True)
class Ranking:
    """How the best job is picked: the first of ``metrics`` that some job reports, ``max`` or ``min``."""

    metrics: Sequence[str]
    direction: str = "max"


def _children(parent: Any) -> list[Any]:
    runs = parent.client.search_runs([parent.experiment_id],
                                     filter_string=f"tags.`mlflow.parentRunId` = '{parent.run_id}'",
                                     max_results=50000)
    return sorted(runs, key=lambda r: (int(r.data.tags.get("edgeflow.job_num", "0")), r.info.start_time))


def _write_table(runs: list[Any], path: Path) -> Path:
    keys = sorted({key for run in runs for key in run.data.metrics})
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["job_num", "run_name", "status", "run_id", *keys])
        for run in runs:
            writer.writerow([run.data.tags.get("edgeflow.job_num", ""), run.info.run_name, run.info.status,
                             run.info.run_id, *(run.data.metrics.get(key, "") for key in keys)])
    return path


def _best(runs: list[Any], ranking: Ranking) -> tuple[Any, str] | None:
    finished = [run for run in runs if run.info.status == "FINISHED"]
    for metric in ranking.metrics:
        scored = [run for run in finished if metric in run.data.metrics]
        if scored:
            pick = max if ranking.direction == "max" else min
            return pick(scored, key=lambda run: run.data.metrics[metric]), metric
    return None


def summarize(parent: Any, ranking: Ranking) -> list[str]:
    """Log the summary of ``parent``'s jobs on it (an ``MlflowRun``); returns the names of the jobs
    that did not finish (FAILED, KILLED or still RUNNING)."""
    runs = _children(parent)
    failed = [run.info.run_name for run in runs if run.info.status != "FINISHED"]
    with tempfile.TemporaryDirectory() as tmp:
        parent.log_artifact(_write_table(runs, Path(tmp) / "jobs.csv"))
    best = _best(runs, ranking)
    if best is not None:
        run, metric = best
        parent.log_metrics(run.data.metrics)
        parent.set_tag("edgeflow.best_run_id", run.info.run_id)
        parent.set_tag("edgeflow.best_run_name", run.info.run_name)
        parent.set_tag("edgeflow.best_by", f"{metric} ({ranking.direction})")
    parent.log_metrics({"sweep/jobs": len(runs), "sweep/failed_jobs": len(failed)})
    return failed
