"""edgeflow: declarative compression pipelines for neural networks on edge hardware.

Python API (no CLI needed)::

    import edgeflow
    cfg = edgeflow.compose(["recipe=quickstart", "stages.train.max_epochs=5"])
    result = edgeflow.run(cfg)          # RunResult(metrics, artifacts, run_dir, mlflow_run_id)

Heavy libraries (torch, Lightning, MLflow) load only when ``run`` is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from edgeflow.pipeline import RunResult

__version__ = "0.1.0"
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def config_dir() -> Path:
    """The folder holding the Hydra config tree (``conf/``)."""
    return CONF_DIR


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Compose the config tree with command-line style ``overrides`` (``["recipe=qat_int8", ...]``)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))


def run(cfg: DictConfig) -> RunResult:
    """Validate ``cfg`` and run its stages; returns metrics, artifact paths and the run directory.

    Raises ``edgeflow.config.ConfigError`` (one line naming the key) before any training if the
    config is wrong. The MLflow run is marked FAILED if a stage raises.
    """
    from edgeflow.pipeline import run as run_pipeline

    return run_pipeline(cfg)


__all__ = ["compose", "run", "config_dir", "__version__"]
