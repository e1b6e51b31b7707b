"""MLflow a user can read, and one project home: run names, sweep parents, the logged model, the
Python API's run folder and log lines. Real MLflow SQLite stores in temporary folders."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import mlflow
import mlflow.onnx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from conftest import BIN, tracking_uri
from edgeflow.tracking.handoff import SweepParent
from edgeflow.tracking.labels import MAX_NAME, parent_name, run_labels, run_name
from edgeflow.tracking.schema import TrackingConfig
from tasks.edgeflow_app import _precisions, _print_summary

#: quickstart in seconds: every stage runs, one epoch each
TINY = ["recipe=quickstart", "stages.train.max_epochs=1", "stages.prune.max_epochs=1", "stages.prune.end=0",
        "stages.qat.max_epochs=1", "stages.qat.freeze_observers_epoch=0", "trainer.progress_bar=false"]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "EDGEFLOW_HOME": str(home)}


# ----------------------------------------------------------------------------------- run names
def test_run_name_keeps_what_varied_and_drops_what_does_not() -> None:
    overrides = ["recipe=quickstart", "hardware=gap9", "stages.train.lr=0.01", "tracking.uri=sqlite:///x.db",
                 "trainer.progress_bar=false", "+stages.train.extra=1"]
    assert run_name("quickstart", overrides) == "quickstart hardware=gap9 stages.train.lr=0.01 +stages.train.extra=1"
    assert run_name("quickstart", overrides, keys={"hardware"}) == "quickstart hardware=gap9"
    assert run_name("quickstart", []) == "quickstart"
    long = run_name("quickstart", [f"stages.train.lr={'1' * 200}"])
    assert len(long) == MAX_NAME and long.endswith("…")
    assert parent_name("quickstart", ["hardware", "stages.train.lr"]) == "quickstart sweep: hardware, stages.train.lr"


def _hydra(mode: str, overrides: list[str], sweep_dir: Path | None = None, num: int = 0) -> SimpleNamespace:
    return SimpleNamespace(mode=mode, overrides=SimpleNamespace(task=overrides), sweep=SimpleNamespace(dir=sweep_dir),
                           job=SimpleNamespace(num=num))


def test_run_labels_of_api_single_run_and_sweep_job(tmp_path: Path) -> None:
    uri = tracking_uri(tmp_path)
    assert run_labels("quickstart", TrackingConfig(), uri, None) == ("quickstart", {})
    single = _hydra("RunMode.RUN", ["recipe=quickstart", "seed=3"])
    assert run_labels("quickstart", TrackingConfig(), uri, single) == ("quickstart seed=3", {})
    assert run_labels("quickstart", TrackingConfig(run_name="mine"), uri, single)[0] == "mine"

    job = _hydra("RunMode.MULTIRUN", ["recipe=quickstart", "seed=3", "hardware=gap9"], tmp_path / "sweep", num=1)
    name, tags = run_labels("quickstart", TrackingConfig(), uri, job)  # no parent: every override shows
    assert name == "quickstart seed=3 hardware=gap9" and "mlflow.parentRunId" not in tags
    assert tags["edgeflow.sweep_id"] == "sweep" and tags["edgeflow.job_num"] == "1"
    SweepParent("abc", uri, "1", ["hardware"]).write(tmp_path / "sweep")
    assert run_labels("quickstart", TrackingConfig(), uri, job) == (
        "quickstart hardware=gap9", {**tags, "mlflow.parentRunId": "abc"})
    other_store = run_labels("quickstart", TrackingConfig(), "sqlite:////elsewhere.db", job)[1]
    assert "mlflow.parentRunId" not in other_store  # a parent in another store is not this run's parent
    SweepParent.clear(tmp_path / "sweep")
    assert SweepParent.read(tmp_path / "sweep") is None


def test_precision_labels_follow_weight_bits() -> None:
    stages = ["train", "analyze", "prune", "qat", "export", "profile"]
    metrics = {"analyze/weight_bits": 32.0, "qat/weight_bits": 8.0}
    assert _precisions(stages, metrics) == {"train": "float", "analyze": "float", "prune": "float", "qat": "int8",
                                            "export": "int8", "profile": "int8"}
    assert _precisions(["qat"], {"qat/weight_bits": 4.6})["qat"] == "mixed"


def test_closing_table_shows_the_columns_the_stages_report(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = OmegaConf.create({"name": "prune_structured", "stages": {"train": {}, "prune": {}, "ptq": {}},
                            "tracking": {"enabled": False}})
    metrics = {"train/best_val_acc": 97.0, "prune/test_acc": 96.5, "prune/channel_sparsity": 0.5,
               "prune/sparsity": 0.0, "ptq/weight_bits": 8.0, "ptq/test_acc": 96.0}
    _print_summary(SimpleNamespace(metrics=metrics, run_dir=Path("/run"), mlflow_run_id="", state=None), cfg)
    lines = capsys.readouterr().out.splitlines()
    header = " ".join(lines[1:3])
    assert "channel" in header and "sparsity" in header and "test_acc" in header
    assert "flash" not in header and "latency" not in header  # no stage reported them
    (prune,) = [line for line in lines if line.startswith("prune")]
    (ptq,) = [line for line in lines if line.startswith("ptq")]
    assert "float" in prune and "0.50" in prune and "int8" in ptq
    assert not any(line.startswith("train") for line in lines)  # nothing of train is in the table


# ------------------------------------------------------------------------------- Python API
API_SCRIPT = """
import json, sys, edgeflow
result = edgeflow.run(edgeflow.compose(sys.argv[1:]))
print(json.dumps({"run_dir": str(result.run_dir), "artifacts": result.artifacts, "run_id": result.mlflow_run_id}))
"""


def test_api_run_lands_in_home_logs_stage_lines_and_logs_the_model(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-c", API_SCRIPT, *TINY], capture_output=True, text=True,
                          cwd=elsewhere, env=_env(home), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    run_dir = Path(out["run_dir"])
    assert run_dir.is_absolute() and run_dir.parent == home / "outputs" / "quickstart"
    assert all(Path(p).is_absolute() and Path(p).is_relative_to(run_dir) for p in out["artifacts"].values())
    for stage in ("train", "evaluate", "analyze", "prune", "qat", "export", "profile"):
        assert f"stage {stage} " in proc.stderr, stage  # the stage lines reach the user without logging set up
    assert (home / "mlflow.db").exists() and (home / "mlartifacts").is_dir()
    assert list(elsewhere.iterdir()) == []  # nothing lands in the folder the script ran from

    uri = tracking_uri(home)
    client = MlflowClient(uri)
    run = client.get_run(out["run_id"])
    assert run.info.run_name == "quickstart" and run.info.status == "FINISHED"
    assert {"state/state.json", "state/model.pt"} <= {a.path for a in client.list_artifacts(out["run_id"], "state")}

    onnx_file = out["artifacts"]["export/onnx"]
    mlflow.set_tracking_uri(uri)
    model_uri = f"runs:/{out['run_id']}/model"
    assert mlflow.onnx.load_model(model_uri).SerializeToString() == onnx.load(onnx_file).SerializeToString()
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    expected = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    got = mlflow.pyfunc.load_model(model_uri).predict(x)
    np.testing.assert_array_equal(np.asarray(next(iter(got.values())) if isinstance(got, dict) else got), expected)


# ---------------------------------------------------------------------------------- sweeps
def _runs(uri: str, experiment: str) -> list:
    client = MlflowClient(uri)
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


def test_sweep_jobs_nest_under_a_parent_that_carries_the_summary(tmp_path: Path) -> None:
    uri = tracking_uri(tmp_path)
    proc = subprocess.run([str(BIN / "edgeflow"), "-m", *TINY, "hardware=cortex_m4,gap9", f"tracking.uri={uri}",
                           "optimize=[profile/latency_ms:min]"],
                          capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "multirun" / "quickstart").iterdir()  # the sweep folder is in EDGEFLOW_HOME
    assert SweepParent.read(sweep_dir) is not None

    runs = _runs(uri, "quickstart")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert len(runs) == 3 and len(children) == 2
    assert parent.info.run_name == "quickstart sweep: hardware" and parent.info.status == "FINISHED"
    assert {r.info.run_name for r in children} == {"quickstart hardware=cortex_m4", "quickstart hardware=gap9"}
    assert {r.info.status for r in children} == {"FINISHED"}
    assert {r.data.tags["edgeflow.sweep_id"] for r in runs} == {sweep_dir.name}
    assert {r.data.params["hardware.name"] for r in children} == {"cortex_m4", "gap9"}
    assert len(list(sweep_dir.glob("*/summary.json"))) == 2

    (best,) = [r for r in children if r.info.run_name == "quickstart hardware=gap9"]  # the faster target
    assert parent.data.tags["edgeflow.best_run_id"] == best.info.run_id
    assert parent.data.tags["edgeflow.best_by"] == "profile/latency_ms (min)"
    assert parent.data.metrics["profile/latency_ms"] == best.data.metrics["profile/latency_ms"]
    assert parent.data.metrics["sweep/jobs"] == 2 and parent.data.metrics["sweep/failed_jobs"] == 0
    table = MlflowClient(uri).download_artifacts(parent.info.run_id, "jobs.csv", str(tmp_path))
    rows = list(csv.DictReader(open(table)))
    assert [r["run_name"] for r in rows] == ["quickstart hardware=cortex_m4", "quickstart hardware=gap9"]
    latencies = {r["run_name"]: float(r["profile/latency_ms"]) for r in rows}
    assert latencies["quickstart hardware=gap9"] < latencies["quickstart hardware=cortex_m4"]


def test_a_failing_sweep_marks_its_parent_failed(tmp_path: Path) -> None:
    uri = tracking_uri(tmp_path)
    proc = subprocess.run([str(BIN / "edgeflow"), "-m", *TINY, "model=mlp", "~model.name", "~model.hidden",
                           "+model._target_=failing_nets.FailsInEvaluation",
                           "seed=0,1", f"tracking.uri={uri}"], capture_output=True, text=True, cwd=tmp_path,
                          env={**_env(tmp_path), "PYTHONPATH": str(Path(__file__).parent)}, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]  # the first job's train stage fails: the sweep stops
    runs = _runs(uri, "quickstart")
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    (job,) = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.run_name == "quickstart sweep: seed" and parent.info.status == "FAILED"
    assert "stopped before its end" in parent.data.tags["edgeflow.error"]
    assert job.info.run_name == "quickstart seed=0" and job.info.status == "FAILED"
    assert parent.data.metrics["sweep/failed_jobs"] == 1


def test_no_parent_run_without_tracking(tmp_path: Path) -> None:
    proc = subprocess.run([str(BIN / "edgeflow"), "-m", *TINY, "seed=0", "tracking.enabled=false"],
                          capture_output=True, text=True, cwd=tmp_path, env=_env(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "multirun" / "quickstart").iterdir()
    assert (sweep_dir / "0" / "summary.json").exists()
    assert SweepParent.read(sweep_dir) is None and not (tmp_path / "mlflow.db").exists()


def test_an_optuna_sweeps_parent_run_is_owned_and_closed_once_its_process_died(_session_home: Path) -> None:
    """The sweep's parent run (``SweepParentCallback``, whatever the sweeper) carries its owner and
    heartbeat like any run: alive it stays RUNNING; its process gone, the next run of the experiment
    marks it KILLED."""
    import atexit
    import socket

    import edgeflow
    from edgeflow.tracking.mlflow_run import MlflowRun
    from edgeflow.tracking.sweep import SweepParentCallback

    uri = tracking_uri(_session_home)  # the session's store: migrated once for every test that shares it
    config = edgeflow.compose(["recipe=quickstart", f"tracking.uri={uri}", "tracking.experiment=owned_sweep"])
    sweep_dir = _session_home / "multirun" / "owned_sweep"
    OmegaConf.set_struct(config, False)
    config.hydra = {"sweep": {"dir": str(sweep_dir)}, "overrides": {"task": ["stages.train.lr=interval(0.001,0.1)"]},
                    "sweeper": {"_target_": "hydra_plugins.edgeflow_optuna_sweeper.sweeper.OptunaSweeper"}}
    callback = SweepParentCallback()
    callback.on_multirun_start(config)
    atexit.unregister(callback._close)  # this test plays the sweep's death
    parent_id = SweepParent.read(sweep_dir).run_id
    client = MlflowClient(uri)
    tags = client.get_run(parent_id).data.tags
    assert (tags["edgeflow.host"], tags["edgeflow.pid"]) == (socket.gethostname(), str(os.getpid()))
    MlflowRun.start(uri, "owned_sweep", "next", {}).finish()
    assert client.get_run(parent_id).info.status == "RUNNING"  # its process (this one) is alive

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # as if the sweep had been SIGKILLed: its owner pid names no process any more
    client.set_tag(parent_id, "edgeflow.pid", str(dead.pid))
    client.set_tag(parent_id, "edgeflow.pid_start", "")
    MlflowRun.start(uri, "owned_sweep", "next", {}).finish()
    closed = client.get_run(parent_id)
    assert closed.info.status == "KILLED"
    assert closed.data.tags["edgeflow.error"].startswith(f"orphaned: its process {dead.pid} on ")
    MlflowRun.attach(uri, parent_id).finish(KeyboardInterrupt())  # stops its heartbeat; stays KILLED
