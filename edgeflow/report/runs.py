"""Reading runs to compare from MLflow (any tracking URI): one ``RunRow`` per pipeline run.

Kept: the pipeline runs of the named experiments (sweep jobs and single runs), FINISHED by default.
Left out: sweep parent runs (tag ``edgeflow.sweep_id`` without ``edgeflow.job_num``) and the nested
runs of a stage (tag ``edgeflow.parent_stage``: NAS trials, teachers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RunRow", "load_runs", "varied_params", "label", "short", "NOISE"]

#: parameters that never make runs differ in a way worth a column
NOISE = ("tracking.", "cache.", "trainer.progress_bar", "hydra.")


@dataclass(frozen=True)
class RunRow:
    """One run: id, name, experiment, status, its params (flattened config) and final metrics."""

    run_id: str
    name: str
    experiment: str
    status: str
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def load_runs(uri: str, experiments: list[str], sweep_id: str | None = None,
              statuses: tuple[str, ...] = ("FINISHED",)) -> list[RunRow]:
    """The pipeline runs of ``experiments`` in the store at ``uri`` (only sweep ``sweep_id`` when
    given), oldest first. Raises ``LookupError`` naming an experiment that does not exist."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    ids = {}
    for name in experiments:
        found = client.get_experiment_by_name(name)
        if found is None:
            known = sorted(e.name for e in client.search_experiments())
            raise LookupError(f"no experiment {name!r} in {uri}; experiments: {', '.join(known) or 'none'}")
        ids[found.experiment_id] = name
    query = f"tags.`edgeflow.sweep_id` = '{sweep_id}'" if sweep_id else ""
    rows = []
    for run in client.search_runs(list(ids), filter_string=query, max_results=50000, order_by=["attributes.start_time ASC"]):
        tags = run.data.tags
        if "edgeflow.parent_stage" in tags or ("edgeflow.sweep_id" in tags and "edgeflow.job_num" not in tags):
            continue
        if run.info.status not in statuses:
            continue
        rows.append(RunRow(run.info.run_id, run.info.run_name or run.info.run_id[:8], ids[run.info.experiment_id],
                           run.info.status, dict(run.data.params), dict(run.data.metrics), dict(tags)))
    return rows


def varied_params(rows: list[RunRow]) -> list[str]:
    """The params whose values differ between ``rows`` (``NOISE`` aside), sorted; when a group's
    ``name`` varies (``hardware.name``), its other keys (the target's constants) are left out."""
    keys = sorted({k for row in rows for k in row.params if not k.startswith(NOISE)})
    varied = [k for k in keys if len({row.params.get(k) for row in rows}) > 1]
    named = {k.rsplit(".", 1)[0] for k in varied if k.endswith(".name") and k.count(".") == 1}
    return [k for k in varied if k.split(".", 1)[0] not in named or k.endswith(".name")]  # a target's constants follow its name


def label(row: RunRow, keys: list[str]) -> str:
    """``hardware=gap9 qat.weight_bits=4``: the values of ``keys`` (from ``varied_params``) in ``row``,
    for plot labels; the run's name when nothing varied."""
    return " ".join(f"{short(k)}={_compact(row.params.get(k, ''))}" for k in keys) or row.name


def _compact(value: str) -> str:
    """A float param with 3 significant digits (``0.00187``); anything else as it is."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() or len(value) <= 6 else f"{number:.3g}"


def short(key: str) -> str:
    """``hardware.name`` → ``hardware``, ``stages.qat.weight_bits`` → ``qat.weight_bits``."""
    if key.endswith(".name") and key.count(".") == 1:
        return key.split(".")[0]
    return key.removeprefix("stages.")
