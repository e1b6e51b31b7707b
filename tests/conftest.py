"""Shared fixtures: a temporary project home (``EDGEFLOW_HOME``) per session and per test, with its own MLflow store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread, as the pipeline's default: tiny models gain nothing from more, and
    oversubscribed cores (parallel jobs) slow multi-threaded torch down by an order of magnitude."""
    import torch

    torch.set_num_threads(1)


BIN = ROOT / ".venv" / "bin"


@pytest.fixture(autouse=True, scope="session")
def _session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test writes runs or an MLflow store into the repository: ``EDGEFLOW_HOME`` is a temporary
    folder for the whole session (subprocesses inherit it). Dataset files stay shared in
    ``EDGEFLOW_DATA`` (default: the repository's git-ignored ``data/``, so caches are reused)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("EDGEFLOW_HOME", str(tmp_path_factory.mktemp("edgeflow_home")))
    patch.setenv("EDGEFLOW_DATA", os.environ.get("EDGEFLOW_DATA", str(ROOT / "data")))
    yield Path(os.environ["EDGEFLOW_HOME"])
    patch.undo()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary project home and cwd: run folders, ``mlflow.db`` and ``mlartifacts/`` land here."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGEFLOW_HOME", str(tmp_path))
    return tmp_path


def tracking_uri(path: Path) -> str:
    return f"sqlite:///{path / 'mlflow.db'}"
