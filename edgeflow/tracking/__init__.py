"""MLflow run lifecycle: one run per pipeline run, ``<stage>/<metric>`` names, artifacts, failure status.

Public API (imported lazily so ``edgeflow.tracking.schema`` stays MLflow-free): ``MlflowRun``,
``NullRun``, ``open_run``, ``flatten``, ``resolve_uri`` (``edgeflow.tracking.mlflow_run``); the
schema ``TrackingConfig`` lives in ``edgeflow.tracking.schema``.
"""

from __future__ import annotations

from edgeflow.core.lazy import lazy_exports

_EXPORTS = {name: "mlflow_run" for name in ("MlflowRun", "NullRun", "open_run", "flatten", "resolve_uri")}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
