"""One MLflow parent run per sweep, with the sweep's jobs nested under it (a Hydra callback).

``conf/config.yaml`` lists ``SweepParentCallback`` under ``hydra.callbacks``. For ``edgeflow -m``
with tracking on, ``on_multirun_start`` starts the parent run, named after the recipe and the
swept keys (``quickstart sweep: hardware, stages.train.lr``), and writes its id to the sweep
folder (``edgeflow.tracking.handoff``), where every job, in any process, finds it and sets
``mlflow.parentRunId``. ``on_multirun_end`` logs the summary (``edgeflow.tracking.sweep_summary``)
and finishes the parent: FAILED when a job did not finish. Hydra skips ``on_multirun_end`` when a
job stops the sweep (a failing job exits the process); an ``atexit`` hook then logs the summary of
the jobs so far and marks the parent FAILED, or KILLED when the process was interrupted (SIGINT,
SIGTERM: ``edgeflow.tracking.interrupt``). The callback holds only plain data, so launchers may
pickle it. Nothing heavy is imported before ``on_multirun_start``.
"""

from __future__ import annotations

import atexit
import copy
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from edgeflow.tracking.handoff import SweepParent
from edgeflow.tracking.interrupt import Interrupted, received
from edgeflow.tracking.labels import override_key, parent_name
from edgeflow.tracking.sweep_summary import Ranking

__all__ = ["SweepParentCallback", "swept_keys"]


def swept_keys(config: DictConfig) -> list[str]:
    """The keys a multirun varies: sweep overrides on the command line (``hardware=a,b``) and the
    keys of ``hydra.sweeper.params``, in that order, without repeats."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    keys = [o.key_or_group for o in parser.parse_overrides(list(config.hydra.overrides.task))
            if o.is_sweep_override()]
    params = OmegaConf.select(config, "hydra.sweeper.params") or {}
    keys += [override_key(str(key)) for key in params]
    return list(dict.fromkeys(keys))


def _job_config(config: DictConfig) -> DictConfig:
    """``config`` without its ``hydra`` node: what a job's task function receives."""
    job = copy.deepcopy(config)
    with open_dict(job):
        del job["hydra"]
    return job


def _ranking(typed: Any) -> Ranking:
    """The sweep's ``optimize`` (its first objective), or else the last stage's ``test_acc``."""
    if typed.optimize:
        return Ranking([typed.optimize[0].metric], typed.optimize[0].direction)
    return Ranking([f"{stage}/test_acc" for stage in reversed(list(typed.stages))], "max")


class SweepParentCallback(Callback):
    """Starts and finishes a sweep's MLflow parent run (see the module docstring)."""

    def __init__(self) -> None:
        self._parent: SweepParent | None = None
        self._ranking = Ranking([])

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Start the parent run and hand its id to the jobs (nothing when tracking is off or the
        config is invalid: each job then reports the error itself)."""
        from edgeflow.config import validate
        from edgeflow.core.errors import ConfigError

        sweep_dir = Path(str(config.hydra.sweep.dir))
        SweepParent.clear(sweep_dir)
        try:
            typed = validate(_job_config(config))
        except ConfigError:
            return
        if not typed.tracking.enabled:
            return
        from edgeflow.tracking.mlflow_run import MlflowRun, resolve_uri

        swept = swept_keys(config)
        uri = resolve_uri(typed.tracking)
        tags = {**typed.tracking.tags, "edgeflow.recipe": typed.name, "edgeflow.sweep_id": sweep_dir.name,
                "edgeflow.overrides": " ".join(config.hydra.overrides.task)[:5000]}
        run = MlflowRun.start(uri, typed.tracking.experiment, parent_name(typed.name, swept), tags)
        self._parent = SweepParent(run.run_id, uri, run.experiment_id, swept)
        self._ranking = _ranking(typed)
        self._parent.write(sweep_dir)
        atexit.register(self._close, stopped=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Log the summary and finish the parent run."""
        self._close(stopped=False)

    def _close(self, stopped: bool) -> None:
        if self._parent is None:
            return
        parent, self._parent = self._parent, None
        atexit.unregister(self._close)
        from edgeflow.tracking.mlflow_run import MlflowRun
        from edgeflow.tracking.sweep_summary import summarize

        run = MlflowRun.attach(parent.uri, parent.run_id)
        error = None
        try:
            failed = summarize(run, self._ranking)
        except Exception as err:  # noqa: BLE001 - a summary that fails must not leave the parent RUNNING
            error = RuntimeError(f"sweep summary failed: {type(err).__name__}: {err}")
        else:
            if stopped and received() is not None:
                error = Interrupted(received())
            elif stopped:
                error = RuntimeError("the sweep stopped before its end (a job failed or it was interrupted)")
            elif failed:
                error = RuntimeError(f"{len(failed)} job(s) did not finish: {', '.join(failed)}")
        run.finish(error)
