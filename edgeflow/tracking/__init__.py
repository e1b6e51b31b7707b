"""MLflow run lifecycle: one run per pipeline run, ``<stage>/<metric>`` names, artifacts, failure status.

Public API (imported lazily so ``edgeflow.tracking.schema`` stays MLflow-free): ``MlflowRun``,
``NullRun``, ``open_run``, ``flatten``, ``resolve_uri`` (``mlflow_run``: the run, its nested
runs, the final model as an MLflow ``onnx`` model); ``run_labels`` (``labels``: run names and tags
that say what varied). ``sweep.SweepParentCallback`` (a Hydra callback) gives a sweep one parent
run with the jobs nested under it (``handoff``: how jobs find it; ``sweep_summary``: what it
carries). Reliability: ``store`` (a local SQLite store created once under a file lock, WAL mode,
retries while locked, broken stores refused in one line), ``interrupt`` (SIGINT/SIGTERM raise
``Interrupted``; the run ends KILLED), ``orphans`` (owner tags and heartbeat; runs whose process died
are closed KILLED), ``artifact_links`` (a cache hit's artifacts hard-linked in a local store). The schema ``TrackingConfig`` lives in ``edgeflow.tracking.schema``.
"""

from __future__ import annotations

from edgeflow.core.lazy import lazy_exports

_EXPORTS = {**{name: "mlflow_run" for name in ("MlflowRun", "NullRun", "open_run", "flatten", "resolve_uri")},
            "run_labels": "labels"}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
