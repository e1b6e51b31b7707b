"""Interrupted runs say so (issue 10 §3): SIGINT/SIGTERM end the MLflow run KILLED with one line naming
the stage and exit 130/143 (a sweep's parent run KILLED too); a run left RUNNING by SIGKILL is closed
KILLED by the next run of its experiment. Real CLI subprocesses, real signals, a real MLflow SQLite
store. SIGTERM goes through the CLI too, while Lightning's fit runs (Lightning's own SIGTERM handler
composed with edgeflow's: without edgeflow's, Lightning stops "gracefully" and the CLI exits 0)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from cli_helpers import project_env
from conftest import BIN, tracking_uri
from edgeflow.tracking.interrupt import Interrupted, raising_signals, received
from edgeflow.tracking.mlflow_run import MlflowRun

#: train long enough to be interrupted in the middle, then evaluate; no export
LONG = ["recipe=train_float", "~stages.export", "stages.train.max_epochs=500", "trainer.progress_bar=false",
        "trainer.num_threads=1"]

ORPHAN = """
import sys, time
from edgeflow.tracking.interrupt import Interrupted, raising_signals, received
from edgeflow.tracking.mlflow_run import MlflowRun
run = MlflowRun.start(sys.argv[1], "train_float", "orphan", {})
print(run.run_id, flush=True)
time.sleep(600)
"""


def _wait_for(pattern: str, root: Path, proc: subprocess.Popen, timeout: float = 300) -> Path:
    """The first path matching ``pattern`` under ``root`` once it exists (the process still running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{pattern} did not appear")


def _edgeflow_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("edgeflow:")]


def test_sigint_during_training_kills_the_job_and_its_sweep_and_the_run_closes_a_sigkilled_orphan(
        tmp_path: Path) -> None:
    uri = tracking_uri(tmp_path)
    env = project_env(tmp_path)
    orphan = subprocess.Popen([sys.executable, "-c", ORPHAN, uri], env=env, stdout=subprocess.PIPE, text=True)
    orphan_id = orphan.stdout.readline().strip()
    os.kill(orphan.pid, signal.SIGKILL)
    orphan.wait(timeout=60)
    client = MlflowClient(uri)
    assert client.get_run(orphan_id).info.status == "RUNNING"  # what SIGKILL leaves behind

    # a one-job sweep: the job is a run like any other, and the sweep's parent run must end KILLED too
    proc = subprocess.Popen([str(BIN / "edgeflow"), "-m", *LONG, "seed=0"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    train = _wait_for("multirun/train_float/*/0/train", tmp_path, proc)  # the stage folder: training starts
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130, stderr[-3000:]
    (line,) = _edgeflow_lines(stderr)
    assert line.startswith("edgeflow: interrupted by SIGINT during stage 'train'; MLflow run marked KILLED")
    assert "Traceback" not in stderr

    runs = client.search_runs([client.get_experiment_by_name("train_float").experiment_id])
    (parent,) = [r for r in runs if r.info.run_id != orphan_id and "mlflow.parentRunId" not in r.data.tags]
    (job,) = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert (job.info.status, parent.info.status) == ("KILLED", "KILLED")
    assert job.data.tags["edgeflow.error"] == "Interrupted: interrupted by SIGINT during stage 'train'"
    assert parent.data.tags["edgeflow.error"] == "Interrupted: interrupted by SIGINT"
    assert job.data.tags["edgeflow.sweep_id"] == train.parent.parent.name
    closed = client.get_run(orphan_id)
    assert closed.info.status == "KILLED"  # closed when the sweep opened the experiment
    assert closed.data.tags["edgeflow.error"].startswith(f"orphaned: its process {orphan.pid} on ")


def test_sigterm_raises_interrupted_and_the_run_ends_killed(_session_home: Path) -> None:
    run = MlflowRun.start(tracking_uri(_session_home), "signals", "terminated", {})
    before = signal.getsignal(signal.SIGTERM)
    try:
        with raising_signals():
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, delivered to this process
            time.sleep(5)
        raise AssertionError("SIGTERM did not interrupt")
    except Interrupted as err:
        run.finish(err.during("train"))
        assert (err.signum, err.exit_code, received()) == (signal.SIGTERM, 143, signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is before  # the previous handler is back
    finished = MlflowClient(tracking_uri(_session_home)).get_run(run.run_id)
    assert finished.info.status == "KILLED"
    assert finished.data.tags["edgeflow.error"] == "Interrupted: interrupted by SIGTERM during stage 'train'"


def test_owners_alive_or_gone_by_pid_start_time_and_heartbeat(_session_home: Path) -> None:
    uri = tracking_uri(_session_home)  # the session's store: migrated once for every test that shares it
    live = MlflowRun.start(uri, "owners", "live", {})
    client = MlflowClient(uri)
    exp = live.experiment_id
    me, now = socket.gethostname(), time.time()
    made = {name: client.create_run(exp, run_name=name, tags={"edgeflow.host": host, "edgeflow.pid": pid,
                                                              "edgeflow.pid_start": start, **beat}).info.run_id
            for name, host, pid, start, beat in [
                ("reused pid", me, str(os.getpid()), "1", {}),  # this pid, but started at another time
                ("stale elsewhere", "elsewhere", "7", "", {"edgeflow.heartbeat": f"{now - 3600:.0f}"}),
                ("beating elsewhere", "elsewhere", "7", "", {"edgeflow.heartbeat": f"{now:.0f}"})]}
    foreign = client.create_run(exp, run_name="no owner").info.run_id  # another tool's run
    other = MlflowRun.start(uri, "owners", "other", {})  # opening the experiment closes the orphans
    status = {name: client.get_run(run_id).info.status for name, run_id in made.items()}
    assert status == {"reused pid": "KILLED", "stale elsewhere": "KILLED", "beating elsewhere": "RUNNING"}
    assert client.get_run(made["stale elsewhere"]).data.tags["edgeflow.error"].startswith(
        "orphaned: no heartbeat from process 7 on elsewhere for 36")  # 3600 s and the seconds since
    assert client.get_run(foreign).info.status == "RUNNING"
    assert client.get_run(live.run_id).info.status == "RUNNING"  # its process (this one) is alive
    live.finish()
    other.finish()
    assert client.get_run(live.run_id).info.status == "FINISHED"


def test_sigterm_through_the_cli_during_training_exits_143_and_the_run_ends_killed(
        tmp_path: Path, _session_home: Path) -> None:
    """A scheduler's SIGTERM reaches the CLI while Lightning's fit runs (Lightning's own SIGTERM handler
    composed with edgeflow's): exit 143, one line naming the stage, the run KILLED, the files so far kept."""
    uri = tracking_uri(_session_home)  # the session's store: already migrated when other tests made it
    proc = subprocess.Popen([str(BIN / "edgeflow"), *LONG, f"tracking.uri={uri}", "tracking.experiment=sigterm_cli"],
                            cwd=tmp_path, env=project_env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    # Lightning's per-epoch checkpoint, the first file fit writes: Lightning is inside fit, an epoch done
    epoch = _wait_for("outputs/train_float/*/train/checkpoints/epoch=*.ckpt", tmp_path, proc, timeout=120)
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, stderr[-3000:]
    run_dir = epoch.parents[2]
    (line,) = _edgeflow_lines(stderr)
    assert line == (f"edgeflow: interrupted by SIGTERM during stage 'train'; MLflow run marked KILLED "
                    f"(files so far: {run_dir})")
    assert "Traceback" not in stderr

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("sigterm_cli").experiment_id])
    assert run.info.status == "KILLED"
    assert run.data.tags["edgeflow.error"] == "Interrupted: interrupted by SIGTERM during stage 'train'"
    assert (run_dir / "config.yaml").is_file() and epoch.is_file()  # what the run wrote so far stays
    assert not (run_dir / "summary.json").exists() and not (run_dir / "evaluate").exists()
