"""edgeflow: declarative compression pipelines for neural networks on edge hardware.

Python API (no CLI needed)::

    import edgeflow
    cfg = edgeflow.compose(["recipe=quickstart", "stages.train.max_epochs=5"])
    result = edgeflow.run(cfg)          # RunResult(metrics, artifacts, run_dir, mlflow_run_id)

Runs, the MLflow store and dataset files live under ``edgeflow.home()``: ``$EDGEFLOW_HOME`` or the
project root (``edgeflow.core.home``). Heavy libraries (torch, Lightning, MLflow) load only when
``run`` is called.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from edgeflow.core.home import home, register_resolver

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from edgeflow.pipeline import RunResult

__version__ = "0.1.0"
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
register_resolver()  # ``${edgeflow.home:}`` in conf/ (run and sweep folders, dataset roots)


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
    """Validate ``cfg`` and run its stages; returns metrics, absolute artifact paths and the run
    directory ``<home>/outputs/<name>/<time>``.

    Raises ``edgeflow.config.ConfigError`` (one line naming the key) before any training if the
    config is wrong. The MLflow run is marked FAILED if a stage raises; SIGINT (Ctrl+C) or SIGTERM
    marks it KILLED and raises ``edgeflow.tracking.interrupt.Interrupted``. The stage lines go to the
    ``edgeflow`` logger; when neither it nor the root logger has a handler, one writing INFO lines
    to stderr is added to ``edgeflow``.
    """
    from edgeflow.pipeline import run as run_pipeline
    from edgeflow.tracking.interrupt import raising_signals

    _ensure_log_handler()
    with raising_signals():
        return run_pipeline(cfg)


def _ensure_log_handler() -> None:
    """Give the ``edgeflow`` logger a stderr handler at INFO unless logging is configured already."""
    logger = logging.getLogger("edgeflow")
    if logger.hasHandlers():
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s] %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


__all__ = ["compose", "run", "config_dir", "home", "__version__"]
