"""MLflow run lifecycle: one run per pipeline run, ``<stage>/<metric>`` names, artifacts, failure status.

Public API (imported lazily so ``edgeflow.tracking.schema`` stays MLflow-free): ``MlflowRun``,
``NullRun``, ``open_run``, ``flatten``, ``resolve_uri`` (``edgeflow.tracking.mlflow_run``); the
schema ``TrackingConfig`` lives in ``edgeflow.tracking.schema``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {name: "mlflow_run" for name in ("MlflowRun", "NullRun", "open_run", "flatten", "resolve_uri")}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"edgeflow.tracking.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'edgeflow.tracking' has no attribute {name!r}")
