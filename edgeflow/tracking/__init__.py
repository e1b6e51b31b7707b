"""MLflow run lifecycle: one run per pipeline run, ``<stage>/<metric>`` names, artifacts, failure status."""

from edgeflow.tracking.mlflow_run import MlflowRun, NullRun, flatten, open_run, resolve_uri

__all__ = ["MlflowRun", "NullRun", "open_run", "flatten", "resolve_uri"]
