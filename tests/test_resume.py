"""Resume: a run killed (SIGKILL) during ``qat`` and rerun with the same command continues from the
last finished stage (cache hits) and ends with the metrics of an uninterrupted run; its MLflow run
is a new one, tagged with the run it resumes."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import edgeflow
from cli_helpers import project_env
from conftest import BIN, tracking_uri
from test_cache import TINY, cached_stages, final, tiny_reference


def _kill_during(stage: str, home: Path) -> Path:
    """Start ``edgeflow TINY`` in ``home`` and SIGKILL it once stage ``stage`` has begun; its run folder."""
    proc = subprocess.Popen([str(BIN / "edgeflow"), *TINY], cwd=home, env=project_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            started = list((home / "outputs").glob(f"quickstart/*/{stage}"))
            if started:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return started[0].parent
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
    raise AssertionError(f"the run ended (status {proc.returncode}) before stage {stage} began")


def test_run_killed_during_qat_resumes_to_the_same_metrics(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    killed_dir = _kill_during("qat", workdir)
    assert not (killed_dir / "summary.json").exists()
    stored = {json.loads(p.read_text())["stage"] for p in (workdir / "cache" / "entries").glob("*/meta.json")}
    assert stored == {"train", "evaluate", "analyze", "prune"}  # qat was running: nothing of it stored

    caplog.set_level(logging.INFO, "edgeflow")
    resumed = edgeflow.run(edgeflow.compose(TINY))
    assert cached_stages(caplog) == ["train", "evaluate", "analyze", "prune"]
    summary = json.loads((resumed.run_dir / "summary.json").read_text())["metrics"]
    assert final(summary) == tiny_reference()  # an uninterrupted run's

    client = MlflowClient(tracking_uri(workdir))
    killed = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id],
                                filter_string=f"attributes.run_id != '{resumed.mlflow_run_id}'")
    assert len(killed) == 1
    assert client.get_run(resumed.mlflow_run_id).data.tags["edgeflow.resumed_from"] == killed[0].info.run_id
    assert client.get_run(resumed.mlflow_run_id).data.tags["edgeflow.cached.prune"] == killed[0].info.run_id
