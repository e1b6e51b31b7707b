"""Concurrent runs never share a folder or a record, and a fresh SQLite store survives parallel first
use (issue 10 §1, §2). Real CLI subprocesses started together on a real MLflow SQLite store; the full
acceptance (3 x 3 rounds, sequential twins, 4 concurrent sweeps) is ``benchmarks/concurrent_runs.py``."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from mlflow.store.db.utils import _get_latest_schema_revision
from mlflow.tracking import MlflowClient

from cli_helpers import project_env
from conftest import BIN, tracking_uri
from edgeflow import CONF_DIR
from edgeflow.tracking.store import Retrying, StoreError, prepare_store
from tasks.run_dir import register_suffix_resolver

#: a one-stage-and-evaluate recipe, one epoch: what a concurrency test needs and no more
TINY = ["recipe=train_float", "~stages.export", "stages.train.max_epochs=1", "trainer.progress_bar=false",
        "trainer.num_threads=1"]


def _hydra_dirs() -> tuple[str, str]:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["recipe=quickstart"], return_hydra_config=True)
    return str(cfg.hydra.run.dir), str(cfg.hydra.sweep.dir)


def test_run_and_sweep_folders_end_in_a_suffix_fixed_once_per_config() -> None:
    register_suffix_resolver()
    first, second = _hydra_dirs(), _hydra_dirs()
    for run_dir, sweep_dir in (first, second):
        assert run_dir.rsplit("_", 1)[1] == sweep_dir.rsplit("_", 1)[1]  # one suffix per config, cached
        assert len(run_dir.rsplit("_", 1)[1]) == 6
    assert first[0] != second[0] and first[1] != second[1]  # two configs composed in one second differ


def test_concurrent_runs_in_a_fresh_store_never_mix(tmp_path: Path) -> None:
    env = project_env(tmp_path)
    seeds = [0, 1, 0]  # the two seed-0 runs are each other's twin: crossed files would tell them apart
    procs = [subprocess.Popen([str(BIN / "edgeflow"), *TINY, "cache.enabled=false", f"seed={seed}"], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for seed in seeds]
    errors = [proc.communicate(timeout=600)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [e[-2000:] for e in errors]

    folders = sorted((tmp_path / "outputs" / "train_float").iterdir())
    assert len(folders) == 3  # one folder each, although they started in the same second
    client = MlflowClient(tracking_uri(tmp_path))
    runs = client.search_runs([client.get_experiment_by_name("train_float").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3
    by_id = {r.info.run_id: r for r in runs}
    acc = {}
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        run = by_id.pop(summary["mlflow_run_id"])  # each folder names its own run, no run twice
        seed = yaml.safe_load((folder / "config.yaml").read_text())["seed"]
        assert run.data.params["seed"] == str(seed)
        for key in ("evaluate/test_acc", "train/best_val_acc"):
            assert run.data.metrics[key] == pytest.approx(summary["metrics"][key])
        assert all(Path(p).is_relative_to(folder) for p in summary["artifacts"].values())
        acc.setdefault(seed, []).append(summary["metrics"]["evaluate/test_acc"])
    assert acc[0][0] == acc[0][1]  # twins agree: what a sequential run gives
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT version_num FROM alembic_version").fetchone()[0] == _get_latest_schema_revision()
    con.close()


def test_half_migrated_and_outdated_stores_are_one_line_with_the_fix(tmp_path: Path) -> None:
    half = tmp_path / "half.db"
    with sqlite3.connect(half) as con:  # what a creation race leaves: tables, no schema version
        con.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)")
    con.close()
    with pytest.raises(StoreError) as info:
        prepare_store(tracking_uri(tmp_path).replace("mlflow.db", "half.db"))
    message = str(info.value)
    assert message.startswith(f"tracking.uri: the MLflow store {half} is half-migrated") and "\n" not in message
    assert f"mv {half} {half}.broken" in message

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as con:
        con.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)")
        con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        con.execute("INSERT INTO alembic_version VALUES ('451aebb31d03')")
    con.close()
    with pytest.raises(StoreError, match=r"schema version 451aebb31d03.*mlflow db upgrade sqlite:///"):
        prepare_store(f"sqlite:///{old}")


def test_a_broken_store_stops_the_cli_in_one_line_before_any_run(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        con.execute("CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY)")
    con.close()
    proc = subprocess.run([str(BIN / "edgeflow"), *TINY], cwd=tmp_path, env=project_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("edgeflow: config error: tracking.uri: the MLflow store") and "half-migrated" in line
    assert not list((tmp_path / "outputs").rglob("*"))  # refused: no run folder left behind


class _Flaky:
    """A client whose ``log`` meets a locked database ``fails`` times before it succeeds."""

    def __init__(self, fails: int, error: str = "database is locked") -> None:
        self.fails, self.calls, self.error, self.name = fails, 0, error, "flaky"

    def log(self, value: int) -> int:
        self.calls += 1
        if self.calls <= self.fails:
            raise sqlite3.OperationalError(self.error)
        return value


def test_locked_database_calls_are_retried_and_other_errors_are_not() -> None:
    flaky = _Flaky(3)
    assert Retrying(flaky).log(7) == 7 and flaky.calls == 4
    assert Retrying(flaky).name == "flaky"
    other = _Flaky(1, "no such table: runs")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        Retrying(other).log(1)
    assert other.calls == 1
