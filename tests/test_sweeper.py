"""edgeflow's Optuna sweeper for Hydra (``hydra/sweeper=optuna``) through the real CLI: two
objectives over lr × weight_bits, 4 trials as 4 joblib jobs on 2 workers against the default SQLite
MLflow store, then a rerun that resumes the study up to 6; the study's best trials carry the MLflow
runs' metrics; ``edgeflow-report`` on that experiment writes PNGs and a self-contained HTML page;
an unknown objective metric stops the sweep before its first trial; trials a killed sweep left RUNNING
are failed and run again."""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import socket
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from optuna.distributions import FloatDistribution

from cli_helpers import project_env
from conftest import BIN, tracking_uri
from hydra_plugins.edgeflow_optuna_sweeper.sweeper import OptunaSweeper
from test_cache import TINY
from tasks.report_app import main as report_main

PNG = b"\x89PNG\r\n\x1a\n"
OBJECTIVES = "optimize=[evaluate/test_acc:max,profile/latency_ms:min]"
SWEEP = ["-m", "hydra/sweeper=optuna", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=4",
         "hydra.sweeper.study_name=lr_bits", *TINY, "stages.train.lr=tag(log, interval(1e-3, 1e-1))",
         "stages.qat.weight_bits=choice(2,4,8)", OBJECTIVES]
#: every final metric a TINY quickstart run reports (a sample per stage)
EVERY_STAGE = ("train/best_val_acc", "evaluate/test_acc", "analyze/latency_ms", "prune/sparsity", "qat/weight_bits",
               "export/onnx_bytes", "profile/latency_ms", "profile/test_acc")


def _edgeflow(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "edgeflow"), *args], cwd=home, env=project_env(home), capture_output=True,
                          text=True, timeout=900)


def _jobs(home: Path) -> list:
    client = MlflowClient(tracking_uri(home))
    runs = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id], max_results=1000)
    return [r for r in runs if "edgeflow.job_num" in r.data.tags]


def test_joblib_trials_resume_best_trials_are_the_runs_metrics_and_the_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """One test, so that parallel test workers never run the sweep twice."""
    for n in (4, 6):  # 4 trials, then a rerun that resumes the study up to 6 (one batch of 2 jobs)
        done = _edgeflow(tmp_path, *SWEEP, f"hydra.sweeper.n_trials={n}")
        assert done.returncode == 0, done.stderr[-3000:]
    _check_trials(tmp_path)
    _check_report(tmp_path, capsys, monkeypatch)


def _check_trials(swept: Path) -> None:
    study = optuna.load_study(study_name="lr_bits", storage=f"sqlite:///{swept / 'optuna.db'}")
    trials = study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6  # 4, then 2 more on the rerun
    assert len({(t.params["stages.train.lr"], t.params["stages.qat.weight_bits"]) for t in trials}) == 6
    jobs = _jobs(swept)
    assert len(jobs) == 6 and {r.info.status for r in jobs} == {"FINISHED"}
    assert all(set(EVERY_STAGE) <= set(r.data.metrics) for r in jobs)  # no metric lost to parallel jobs
    by_id = {r.info.run_id: r for r in jobs}
    assert study.best_trials
    for trial in study.best_trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert trial.values == [run.data.metrics["evaluate/test_acc"], run.data.metrics["profile/latency_ms"]]
        assert float(run.data.params["stages.train.lr"]) == trial.params["stages.train.lr"]
        assert int(run.data.params["stages.qat.weight_bits"]) == trial.params["stages.qat.weight_bits"]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[bytes] = []
        self.rows = 0
        self.front = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "img":
            src = attrs["src"]
            assert src.startswith("data:image/png;base64,")  # self-contained
            self.images.append(base64.b64decode(src.split(",", 1)[1]))
        if tag == "tr" and attrs.get("class") == "front":
            self.front += 1
        if tag == "tr":
            self.rows += 1


def _check_report(swept: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """``edgeflow-report`` on the sweep's experiment: CSV table, one PNG per cost, a self-contained page."""
    monkeypatch.setenv("EDGEFLOW_HOME", str(swept))
    out = swept / "report"
    report_main(["quickstart", "--out", str(out), "--format", "csv", "--objective", "evaluate/test_acc:max",
                 "--objective", "profile/latency_ms:min"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 6 and {"qat.weight_bits", "train.lr", "profile/latency_ms", "pareto"} <= set(rows[0])
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == sorted(f"profile_test_acc_vs_profile_{c}.png" for c in ("latency_ms", "energy_uj", "flash_bytes",
                                                                          "peak_ram_bytes"))
    page = _Page()
    page.feed((out / "report.html").read_text())
    assert len(page.images) == 4 and all(img.startswith(PNG) for img in page.images)
    assert page.rows == 1 + 6 and page.front == sum(r["pareto"] == "*" for r in rows) >= 1
    assert (out / "runs.csv").read_text().splitlines()[0].startswith("run,run_id,")

    with pytest.raises(SystemExit) as code:
        report_main(["quickstart", "--out", str(out), "--objective", "profile/latancy_ms:min"])
    assert code.value.code == 2
    assert re.fullmatch(r"edgeflow-report: objective 'profile/latancy_ms': no run reports it "
                        r"\(did you mean 'profile/latency_ms'\?\)\n", capsys.readouterr().err)


def test_unknown_objective_metric_stops_before_the_first_trial(tmp_path: Path) -> None:
    done = _edgeflow(tmp_path, *SWEEP[:-1], "optimize=[evaluate/test_acc:max,profile/latancy_ms:min]",
                     "hydra.sweeper.n_trials=2")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "edgeflow: config error: optimize.1: unknown metric 'latancy_ms' (did you mean 'latency_ms'?); "
        "a metric of your own stage goes into hydra.sweeper.extra_metrics"]
    assert not (tmp_path / "optuna.db").exists() and not list(tmp_path.glob("multirun/*/*/*"))


class _RecordingLauncher:
    """Runs no job: records each job's overrides and the study's RUNNING trials at launch; every job returns 90."""

    def __init__(self, study_name: str, storage: str) -> None:
        self.study_name, self.storage = study_name, storage
        self.launched: list[list[str]] = []
        self.running: list[dict] = []

    def launch(self, overrides: list[list[str]], initial_job_idx: int) -> list[JobReturn]:
        study = optuna.load_study(study_name=self.study_name, storage=self.storage)
        self.running += [t.user_attrs for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))]
        self.launched += overrides
        return [JobReturn(overrides=o, status=JobStatus.COMPLETED, _return_value=90.0) for o in overrides]


def test_trials_a_killed_sweep_left_running_are_failed_and_run_again(tmp_path: Path) -> None:
    """A trial whose owner process is gone (hand-written owner attributes, as a SIGKILLed sweep leaves
    them) is marked FAIL and its parameters are the next trial's; another tool's trial is left alone;
    the sweeper owns the trials it runs."""
    storage, lr = f"sqlite:///{tmp_path / 'optuna.db'}", FloatDistribution(1e-3, 1e-1, log=True)
    study = optuna.create_study(study_name="killed", storage=storage, direction="maximize")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid names no process any more
    orphan = study.ask({"stages.train.lr": lr})
    for key, value in {"edgeflow.host": socket.gethostname(), "edgeflow.pid": str(dead.pid),
                       "edgeflow.pid_start": ""}.items():
        orphan.set_user_attr(key, value)
    study.ask({"stages.train.lr": lr})  # no owner attributes: another tool's trial
    sweeper = OptunaSweeper(n_trials=1, n_jobs=1, sampler="random", seed=0, storage=storage, study_name="killed",
                            params=None, extra_metrics=None)
    sweeper.config = OmegaConf.create({"name": "quickstart", "stages": {"evaluate": {}},
                                       "hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    sweeper.launcher = launcher = _RecordingLauncher("killed", storage)
    sweeper.sweep(["stages.train.lr=tag(log, interval(1e-3, 1e-1))"])

    lr_value = orphan.params["stages.train.lr"]
    assert launcher.launched == [[f"stages.train.lr={lr_value!r}"]]  # the orphan's point, once: n_trials=1 reached
    trials = optuna.load_study(study_name="killed", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "RUNNING", "COMPLETE"]
    assert trials[0].user_attrs["edgeflow.error"].startswith(f"orphaned: its process {dead.pid} on ")
    assert trials[2].params == {"stages.train.lr": lr_value} and trials[2].user_attrs["edgeflow.retry_of"] == 0
    assert trials[2].values == [90.0] and trials[2].user_attrs["edgeflow.pid"] == str(os.getpid())
    assert [attrs.get("edgeflow.pid") for attrs in launcher.running] == [None, str(os.getpid())]  # while it ran
