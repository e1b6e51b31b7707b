"""Parallel sweep jobs on real engines: Hydra's submitit launcher in local mode (jobs as separate
processes, SLURM's code path) and its joblib launcher, against the default SQLite MLflow store and
against an ``mlflow server`` on loopback backed by PostgreSQL; Optuna's RDB storage on the same
PostgreSQL shared by two worker processes. Every job's run FINISHED with every metric."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from cli_helpers import project_env
from conftest import BIN, tracking_uri
from pg_helpers import Postgres, mlflow_server, postgres
from test_cache import TINY
from test_sweeper import EVERY_STAGE

TARGETS = "hardware=cortex_m4,cortex_m7,gap9,rpi4"


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with postgres() as server:
        yield server


@pytest.fixture(scope="module")
def mlflow_on_pg(pg: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    artifacts = tmp_path_factory.mktemp("mlflow_server") / "artifacts"
    artifacts.mkdir()
    with mlflow_server(pg.create_database("mlflow"), artifacts) as url:
        yield url


def _sweep(home: Path, launcher: list[str], uri: str | None) -> None:
    tracking = [f"tracking.uri={uri}"] if uri else []
    done = subprocess.run([str(BIN / "edgeflow"), "-m", *launcher, *TINY, TARGETS, *tracking], cwd=home,
                          env=project_env(home), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def _assert_four_finished_jobs(uri: str) -> None:
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id], max_results=100)
    jobs = [r for r in runs if "edgeflow.job_num" in r.data.tags]
    parents = [r for r in runs if "edgeflow.job_num" not in r.data.tags]
    assert sorted(r.data.tags["edgeflow.job_num"] for r in jobs) == ["0", "1", "2", "3"]
    assert {r.info.status for r in jobs} == {"FINISHED"}
    assert all(set(EVERY_STAGE) <= set(r.data.metrics) for r in jobs)
    assert {r.data.params["hardware.name"] for r in jobs} == {"cortex_m4", "cortex_m7", "gap9", "rpi4"}
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["sweep/jobs"] == 4 and parents[0].data.metrics["sweep/failed_jobs"] == 0


SUBMITIT = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=15"]
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]


def test_submitit_local_jobs_on_sqlite(tmp_path: Path) -> None:
    _sweep(tmp_path, SUBMITIT, None)
    _assert_four_finished_jobs(tracking_uri(tmp_path))


@pytest.mark.parametrize("launcher", [SUBMITIT, JOBLIB], ids=["submitit_local", "joblib"])
def test_jobs_on_an_mlflow_server_backed_by_postgresql(launcher: list[str], mlflow_on_pg: str, tmp_path: Path) -> None:
    experiment = f"quickstart_{launcher[0].split('=')[1]}"
    _sweep(tmp_path, [*launcher, f"tracking.experiment={experiment}"], mlflow_on_pg)
    client = MlflowClient(mlflow_on_pg)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=100)
    jobs = [r for r in runs if "edgeflow.job_num" in r.data.tags]
    assert sorted(r.data.tags["edgeflow.job_num"] for r in jobs) == ["0", "1", "2", "3"]
    assert {r.info.status for r in jobs} == {"FINISHED"}
    assert all(set(EVERY_STAGE) <= set(r.data.metrics) for r in jobs)
    assert not (tmp_path / "mlflow.db").exists()  # everything went to the server
    parent = [r for r in runs if "edgeflow.job_num" not in r.data.tags]
    assert len(parent) == 1 and parent[0].info.status == "FINISHED"
    model = client.list_artifacts(jobs[0].info.run_id, "model")
    assert any(a.path == "model/model.onnx" for a in model)  # artifacts served by the server


WORKER = """
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="shared", storage=sys.argv[1])
study.optimize(lambda t: (t.suggest_float("x", -10, 10) - 2) ** 2, n_trials=int(sys.argv[2]))
"""


def test_two_optuna_workers_share_a_study_on_postgresql(pg: Postgres) -> None:
    storage = pg.create_database("optuna")
    optuna.create_study(study_name="shared", storage=storage)
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, storage, "6"], env=os.environ.copy()) for _ in range(2)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0]
    trials = optuna.load_study(study_name="shared", storage=storage).trials
    assert len(trials) == 12 and {t.state.name for t in trials} == {"COMPLETE"}
    assert sorted(t.number for t in trials) == list(range(12))  # no trial counted twice
    assert len({t._trial_id for t in trials}) == 12
