"""The project home: the one folder where runs, the MLflow store and dataset files live.

``$EDGEFLOW_HOME`` when set, else the project root (the folder holding ``conf/``). Under it:
``outputs/`` (runs), ``multirun/`` (sweeps), ``mlflow.db`` + ``mlartifacts/`` (the default MLflow
store) and ``data/`` (dataset files, unless ``$EDGEFLOW_DATA`` names another folder). The CLI and
the Python API both use it, whatever folder they are started from. Configs reach it through the
OmegaConf resolver ``${edgeflow.home:}`` (registered by ``register_resolver``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["HOME_ENV", "DATA_ENV", "PROJECT_ROOT", "home", "data_root", "register_resolver"]

HOME_ENV = "EDGEFLOW_HOME"
DATA_ENV = "EDGEFLOW_DATA"
#: the folder holding ``conf/`` and ``edgeflow/``
PROJECT_ROOT = Path(__file__).resolve().parents[2]
RESOLVER = "edgeflow.home"


def home() -> Path:
    """``$EDGEFLOW_HOME`` (made absolute) when set and not empty, else ``PROJECT_ROOT``."""
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser().resolve() if value else PROJECT_ROOT


def data_root() -> str:
    """Where dataset files live by default: ``$EDGEFLOW_DATA`` when set, else ``<home>/data``."""
    return os.environ.get(DATA_ENV) or str(home() / "data")


def register_resolver() -> None:
    """Register ``${edgeflow.home:}`` (the absolute ``home()`` path) with OmegaConf, once."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, lambda: str(home()))
