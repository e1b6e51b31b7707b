"""Run names and tags that say what varied: ``quickstart hardware=gap9``, ``quickstart sweep: hardware``.

A run is named after its recipe plus the command-line overrides that change its result (tracking
settings, the progress bar and ``recipe=<its own name>`` are left out); a sweep job keeps only the
overrides of the swept keys when the sweep's parent run is known (``edgeflow.tracking.handoff``).
``tracking.run_name`` wins when set. Names are cut to ``MAX_NAME`` characters. MLflow-free.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from edgeflow.tracking.handoff import SweepParent
from edgeflow.tracking.schema import TrackingConfig

__all__ = ["MAX_NAME", "override_key", "run_name", "parent_name", "run_labels"]

MAX_NAME = 100
#: prefixes of the override keys that do not change a run's result
SILENT = ("tracking.", "trainer.progress_bar", "cache.")


def override_key(override: str) -> str:
    """The config key of a command-line override: ``+a.b=1`` → ``a.b``, ``~a`` → ``a``."""
    return override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_NAME else text[:MAX_NAME - 1].rstrip() + "…"


def run_name(name: str, overrides: Iterable[str], keys: Collection[str] | None = None) -> str:
    """``name`` plus the ``overrides`` that change the result (only those of ``keys`` when given)."""
    shown = []
    for override in overrides:
        key = override_key(override)
        if keys is not None and key not in keys:
            continue
        if key.startswith(SILENT) or override == f"recipe={name}":
            continue
        shown.append(override)
    return _shorten(" ".join([name, *shown]))


def parent_name(name: str, keys: Iterable[str]) -> str:
    """A sweep's parent run: ``quickstart sweep: hardware, stages.train.lr``."""
    keys = list(keys)
    return _shorten(f"{name} sweep: {', '.join(keys)}" if keys else f"{name} sweep")


def run_labels(name: str, tracking: TrackingConfig, uri: str, hydra_cfg: Any | None) -> tuple[str, dict[str, str]]:
    """The run name and tags of a pipeline run.

    ``hydra_cfg`` is Hydra's ``HydraConfig`` (None outside Hydra: the Python API). A sweep job gets
    the tags ``edgeflow.sweep_id`` (the sweep folder's name), ``edgeflow.job_num``,
    ``edgeflow.overrides`` and, when its sweep left a parent run in the store at ``uri``,
    ``mlflow.parentRunId``.
    """
    if hydra_cfg is None:
        return tracking.run_name or name, {}
    overrides = list(hydra_cfg.overrides.task)
    if str(hydra_cfg.mode) != "RunMode.MULTIRUN":
        return tracking.run_name or run_name(name, overrides), {}
    sweep_dir = Path(str(hydra_cfg.sweep.dir))
    tags = {"edgeflow.sweep_id": sweep_dir.name, "edgeflow.job_num": str(hydra_cfg.job.num),
            "edgeflow.overrides": " ".join(overrides)[:5000]}
    parent = SweepParent.read(sweep_dir)
    keys = None
    if parent is not None and parent.uri == uri:
        tags["mlflow.parentRunId"] = parent.run_id
        keys = set(parent.swept)
    return tracking.run_name or run_name(name, overrides, keys), tags
