"""A NAS study outlives its processes: a search interrupted mid-way (and one whose worker was killed)
reruns only the missing trials; two worker processes on one SQLite storage run N trials in all, each
once, each in its own nested MLflow run."""

from __future__ import annotations

import multiprocessing
import subprocess
from pathlib import Path

import optuna
import pytest

import edgeflow
from edgeflow.methods.nas.search import WORKER, _HOST

from conftest import tracking_uri

QUIET = ["recipe=nas_cnn_digits", "~stages.train", "~stages.evaluate", "~stages.analyze", "trainer.progress_bar=false",
         "cache.enabled=false", "stages.nas.strategy=random", "stages.nas.trial_epochs=1", "stages.nas.subset=0.2",
         "stages.nas.pruner=none", "stages.nas.plots=false", "stages.nas.study_name=shared", "stages.nas.constraints=[fits]"]


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_an_interrupted_search_reruns_only_the_missing_trials(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import edgeflow.training as training

    real_fit = training.fit
    fits: list[str] = []

    def fit_interrupted_at_the_third(model, ctx, cfg, **kw):  # noqa: ANN001, ANN202
        fits.append(ctx.out_dir.name)
        if len(fits) == 3:
            raise KeyboardInterrupt  # Ctrl+C in the middle of trial 2
        return real_fit(model, ctx, cfg, **kw)

    cfg = edgeflow.compose([*QUIET, "tracking.enabled=false", "stages.nas.n_trials=4"])
    monkeypatch.setattr(training, "fit", fit_interrupted_at_the_third)
    with pytest.raises(BaseException) as err:
        edgeflow.run(cfg)
    assert isinstance(err.value, KeyboardInterrupt) or "Interrupt" in type(err.value).__name__
    storage = f"sqlite:///{workdir / 'optuna.db'}"
    study = optuna.load_study(study_name="shared", storage=storage)
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "COMPLETE", "FAIL"]
    killed = study.ask()  # a worker killed with SIGKILL leaves its trial RUNNING
    killed.set_user_attr(WORKER, f"{_HOST}:{_dead_pid()}")

    fits.clear()
    monkeypatch.setattr(training, "fit", lambda model, ctx, cfg, **kw: (fits.append(ctx.out_dir.name),
                                                                        real_fit(model, ctx, cfg, **kw))[1])
    r = edgeflow.run(cfg)
    assert fits == ["trial_4", "trial_5"]  # trials 0, 1 kept; 2 (interrupted) and 3 (killed) redone
    assert (r.metrics["nas/trials"], r.metrics["nas/complete"], r.metrics["nas/ran"]) == (4, 4, 2)
    states = [t.state.name for t in optuna.load_study(study_name="shared", storage=storage).get_trials()]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    again = edgeflow.run(cfg)  # a finished study: nothing runs, the same choice
    assert again.metrics["nas/ran"] == 0 and again.metrics["nas/chosen_trial"] == r.metrics["nas/chosen_trial"]


def _worker(overrides: list[str], home: str, queue: multiprocessing.Queue) -> None:
    import os

    os.environ["EDGEFLOW_HOME"] = home
    r = edgeflow.run(edgeflow.compose(overrides))
    queue.put((r.mlflow_run_id, r.metrics["nas/ran"]))


def test_two_workers_share_one_study(workdir: Path) -> None:
    from mlflow.tracking import MlflowClient

    overrides = [*QUIET, "stages.nas.n_trials=4", "tracking.experiment=nas_workers"]
    ctx = multiprocessing.get_context("fork")  # the test process's imports are reused: no 15 s start-up
    queue = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(overrides, str(workdir), queue)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    assert [w.exitcode for w in workers] == [0, 0]
    results = [queue.get(timeout=5) for _ in workers]
    assert sum(ran for _, ran in results) == 4
    study = optuna.load_study(study_name="shared", storage=f"sqlite:///{workdir / 'optuna.db'}")
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(4)) and all(t.state.name == "COMPLETE" for t in trials)
    assert {t.user_attrs[WORKER].rpartition(":")[2] for t in trials} <= {str(w.pid) for w in workers}
    client = MlflowClient(tracking_uri(workdir))
    experiment = client.get_experiment_by_name("nas_workers")
    children = client.search_runs([experiment.experiment_id], "tags.`nas.trial` != ''")
    assert sorted(int(run.data.tags["nas.trial"]) for run in children) == list(range(4))
    assert {run.data.tags["mlflow.parentRunId"] for run in children} <= {run_id for run_id, _ in results}
    for run in children:
        assert run.info.status == "FINISHED" and run.data.tags["nas.outcome"] == "complete"
        assert "nas/val_acc" in run.data.metrics and "choice.blocks.depth" in run.data.params
