"""Shared fixtures: an isolated working directory with its own MLflow store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread, as the pipeline's default: tiny models gain nothing from more, and
    oversubscribed cores (parallel jobs) slow multi-threaded torch down by an order of magnitude."""
    import torch

    torch.set_num_threads(1)


BIN = ROOT / ".venv" / "bin"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary cwd (run dirs and ``mlflow.db`` land here) with EDGEFLOW_DATA kept as set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGEFLOW_DATA", os.environ.get("EDGEFLOW_DATA", str(ROOT / "data")))
    return tmp_path


def tracking_uri(path: Path) -> str:
    return f"sqlite:///{path / 'mlflow.db'}"
