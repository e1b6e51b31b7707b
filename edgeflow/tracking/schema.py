"""Schema of the ``tracking`` config group (``conf/tracking/default.yaml``), torch- and MLflow-free."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrackingConfig"]


@dataclass
class TrackingConfig:
    """Where runs are recorded. ``uri`` null means ``sqlite:///<home>/mlflow.db`` (``edgeflow.core.home``:
    ``$EDGEFLOW_HOME`` or the project root).

    ``experiment`` defaults to ``edgeflow``; the YAML sets it to the recipe's ``${name}``. ``run_name``
    null names a run after its recipe and the overrides that vary (``quickstart hardware=gap9``).
    """

    enabled: bool = True
    uri: str | None = None
    experiment: str = "edgeflow"
    run_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
