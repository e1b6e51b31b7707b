"""A thin wrapper over ``MlflowClient`` holding one run (no global fluent-API state).

Every client goes through ``edgeflow.tracking.store`` (a local SQLite store is created once under a
file lock, in WAL mode; calls are retried while the database is locked). Every run records its owner
process and is kept alive by its heartbeat; opening an experiment closes the runs whose owner died
(``edgeflow.tracking.orphans``). An interrupted run (``edgeflow.tracking.interrupt``) ends KILLED.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

from edgeflow.core.home import home
from edgeflow.tracking.artifact_links import ArtifactLinker
from edgeflow.tracking.interrupt import Interrupted
from edgeflow.tracking.orphans import Heartbeat, close_orphans, owner_tags
from edgeflow.tracking.schema import TrackingConfig
from edgeflow.tracking.store import Retrying, prepare_store

MAX_PARAM_CHARS = 6000  # MLflow 3's limit on a param value
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)  # mlflow.store.db.utils: store.py
_HEARTBEAT = Heartbeat()  # one per process: it beats for every run the process has open


def client_for(uri: str) -> Any:
    """An ``MlflowClient`` of the store at ``uri``, made ready first (``store.prepare_store``) and
    retrying calls while the database is locked."""
    from mlflow.tracking import MlflowClient

    prepare_store(uri)
    return Retrying(MlflowClient(tracking_uri=uri))


def resolve_uri(cfg: TrackingConfig) -> str:
    """``cfg.uri``, or the default local store ``sqlite:///<home>/mlflow.db`` (``edgeflow.core.home``)."""
    return cfg.uri or f"sqlite:///{home() / 'mlflow.db'}"


def flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` → ``{"a.b": "1"}``; lists are kept whole as their string form."""
    if isinstance(tree, dict):
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: str(tree)[:MAX_PARAM_CHARS]}


def _experiment_id(client: Any, uri: str, name: str) -> str:
    """The id of experiment ``name``, created if missing (a SQLite store keeps its artifacts in
    ``mlartifacts/<name>`` beside the database)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///"):]).parent / "mlartifacts" / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except Exception:  # another job of the same sweep created it first
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


class MlflowRun:
    """One MLflow run: params, ``<stage>/<metric>`` metrics, artifacts, and its final status."""

    def __init__(self, client: Any, run_id: str, experiment_id: str, tags: dict[str, str]) -> None:
        """Hold run ``run_id`` of experiment ``experiment_id``, reached through ``client`` (an
        ``MlflowClient``); ``tags`` are those its child runs inherit. ``create``/``start`` make one."""
        self.client = client
        self.run_id = run_id
        self.experiment_id = experiment_id
        self.tags = dict(tags)
        self._links = ArtifactLinker(client, run_id)

    @classmethod
    def create(cls, client: Any, experiment_id: str, run_name: str | None, tags: dict[str, str]) -> MlflowRun:
        """A new run in experiment ``experiment_id`` through ``client``, owned by this process
        (``orphans.owner_tags``) and kept alive by its heartbeat until ``finish``."""
        tags = {**tags, **owner_tags()}
        run_id = client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
        _HEARTBEAT.add(client, run_id)
        return cls(client, run_id, experiment_id, tags)

    @classmethod
    def start(cls, uri: str, experiment: str, run_name: str | None, tags: dict[str, str]) -> MlflowRun:
        """A new top-level run in ``experiment`` (created if missing) of the store at ``uri``; first
        closes the experiment's runs whose process died (``orphans.close_orphans``)."""
        client = client_for(uri)
        experiment_id = _experiment_id(client, uri, experiment)
        close_orphans(client, experiment_id)
        return cls.create(client, experiment_id, run_name, tags)

    @classmethod
    def attach(cls, uri: str, run_id: str) -> MlflowRun:
        """The existing run ``run_id`` of the store at ``uri`` (started by another object or process)."""
        client = client_for(uri)
        run = client.get_run(run_id)
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        return cls(client, run_id, run.info.experiment_id, tags)

    def child(self, run_name: str, tags: dict[str, str] | None = None) -> MlflowRun:
        """A nested run under this one (same experiment, tag ``mlflow.parentRunId``) that inherits
        this run's tags; end it with ``finish``."""
        return MlflowRun.create(self.client, self.experiment_id, run_name,
                                {**self.tags, **(tags or {}), "mlflow.parentRunId": self.run_id})

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()
                 if v is not None and not math.isnan(float(v))]
        if items:
            self.client.log_batch(self.run_id, metrics=items)

    def log_metric_rows(self, rows: list[tuple[dict[str, float], int | None]]) -> None:
        """Log several steps' metrics (``(metrics, step)`` rows) in as few requests as MLflow allows
        (1000 metrics per batch): a fit's per-epoch series in one write instead of one per epoch."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step or 0) for metrics, step in rows for k, v in metrics.items()
                 if v is not None and not math.isnan(float(v))]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i:i + 1000])

    def reuse_artifacts_of(self, run_id: str) -> None:
        """Run ``run_id`` (a stage-cache hit's computing run) may hold files this run logs: in a local
        artifact store those with equal bytes at the same artifact path become hard links to its
        files instead of copies (``edgeflow.tracking.artifact_links``)."""
        self._links.add_source(run_id)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        if not self._links.link(Path(path), f"{folder}/{Path(path).name}" if folder else Path(path).name):
            self.client.log_artifact(self.run_id, str(path), artifact_path=folder)

    def log_artifacts(self, local_dir: Path, folder: str | None = None) -> None:
        """Log every file under ``local_dir`` (keeping its layout) under artifact folder ``folder``."""
        if not self._links.sources:
            self.client.log_artifacts(self.run_id, str(local_dir), artifact_path=folder)
            return
        for file in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
            sub = file.parent.relative_to(local_dir).as_posix()
            self.log_artifact(file, "/".join(part for part in (folder, sub) if part and part != ".") or None)

    def log_onnx_model(self, path: Path, folder: str = "model") -> None:
        """Log the ONNX file ``path`` as an MLflow ``onnx``-flavor model under ``folder``, so
        ``mlflow.onnx.load_model`` and ``mlflow.pyfunc.load_model`` read ``runs:/<run_id>/<folder>``
        (pyfunc serves it on onnxruntime's CPU provider, as ``edgeflow.export.ort`` does)."""
        import mlflow.onnx
        import onnx

        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / folder
            mlflow.onnx.save_model(onnx.load(str(path)), str(local), save_as_external_data=False,
                                   onnx_execution_providers=["CPUExecutionProvider"])
            self.log_artifacts(local, folder)

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def finish(self, error: BaseException | None = None) -> None:
        """Mark the run FINISHED; KILLED when ``error`` is an interruption (``Interrupted``,
        ``KeyboardInterrupt``); else FAILED. The error's first line goes to tag ``edgeflow.error``."""
        status = "FINISHED"
        if error is not None:
            status = "KILLED" if isinstance(error, (Interrupted, KeyboardInterrupt)) else "FAILED"
            self.set_tag("edgeflow.error", f"{type(error).__name__}: {error}".splitlines()[0][:5000])
        self.client.set_terminated(self.run_id, status)
        _HEARTBEAT.remove(self.run_id)


class NullRun:
    """Stands in for ``MlflowRun`` when ``tracking.enabled`` is false: records nothing."""

    run_id = ""

    def child(self, run_name: str, tags: dict[str, str] | None = None) -> NullRun:
        return self

    def log_params(self, params: dict[str, str]) -> None: ...
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...
    def log_metric_rows(self, rows: list[tuple[dict[str, float], int | None]]) -> None: ...
    def reuse_artifacts_of(self, run_id: str) -> None: ...
    def log_artifact(self, path: Path, folder: str | None = None) -> None: ...
    def log_artifacts(self, local_dir: Path, folder: str | None = None) -> None: ...
    def log_onnx_model(self, path: Path, folder: str = "model") -> None: ...
    def set_tag(self, key: str, value: str) -> None: ...
    def finish(self, error: BaseException | None = None) -> None: ...


def open_run(cfg: TrackingConfig, tags: dict[str, str], run_name: str | None = None) -> MlflowRun | NullRun:
    """Start the run this pipeline logs to, named ``run_name`` (or a ``NullRun`` when tracking is
    disabled). A ``mlflow.parentRunId`` in ``tags`` nests it under that run."""
    if not cfg.enabled:
        return NullRun()
    return MlflowRun.start(resolve_uri(cfg), cfg.experiment, run_name, {**cfg.tags, **tags})
