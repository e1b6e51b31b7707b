"""The Hydra ``Sweeper`` plugin: an Optuna study whose trials are Hydra jobs.

Each round asks the study for ``n_jobs`` trials (``Study.ask`` with the search space), hands their
overrides to the configured launcher (basic, joblib, submitit...) and tells the study each job's
return value — the app's ``optimize`` objectives — or FAIL when a job failed or returned NaN. A
trial records the job's MLflow run id and run folder (user attributes ``mlflow_run_id``,
``run_dir``, read from the job's ``summary.json``) and, while its job runs, its owner and heartbeat
(``owners``). The study lives in ``storage`` (RDB), so a rerun of the same command resumes it and
several sweeps (processes, machines) may share it; trials a killed sweep left RUNNING are failed and
run again.
The objectives are checked before the first trial: a malformed one or an unknown metric name is
one line on stderr and exit status 2. At the end the best trials (the Pareto front with several
objectives) are printed and written to ``<sweep dir>/optimization_results.yaml``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.plugins import Plugins
from hydra.experimental.callback import Callback
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.edgeflow_optuna_sweeper.config import SAMPLERS

log = logging.getLogger("edgeflow")

#: metric names edgeflow's stages report (``<stage>/<name>``); ``extra_metrics`` adds a user's own
METRICS = frozenset("""test_acc val_acc best_val_acc test_loss val_loss acc_drop params macs sparsity channel_sparsity
weight_bits flash_bytes peak_ram_bytes latency_ms energy_uj fits size_ratio agreement onnx_bytes wall_s nonzero_params
params_ratio macs_ratio weight_bytes_best weight_bytes_dense weight_bytes energy_ratio latency_ratio latency_speedup
hypervolume reward epochs unique_weights clustered_acc teacher_acc student_params big_test_acc expected_latency_ms
expected_energy_uj best_latency_ms best_energy_uj search_acc pareto_size param_ratio""".split())


def _exit(message: str) -> NoReturn:
    print(f"edgeflow: config error: {message}", file=sys.stderr)
    sys.exit(2)


def objectives(config: DictConfig) -> list[tuple[str, str]]:
    """The app's ``optimize`` as (metric, direction) pairs, checked against the recipe's stages and
    the metric names stages report (``METRICS`` and ``hydra.sweeper.extra_metrics``); the last
    stage's ``test_acc`` (max) without it. A mistake exits 2 with one line."""
    value = OmegaConf.select(config, "optimize")
    stages = list(OmegaConf.select(config, "stages") or {})
    if value is None:
        last = next((s for s in reversed(stages)), "evaluate")
        return [(f"{last}/test_acc", "max")]
    entries = [value] if isinstance(value, str) else list(value)
    known = METRICS | set(OmegaConf.select(config, "hydra.sweeper.extra_metrics") or [])
    out = []
    for i, entry in enumerate(entries):
        metric, _, direction = str(entry).partition(":")
        stage, _, name = metric.partition("/")
        if not (stage and name) or (direction or "max") not in ("max", "min"):
            _exit(f"optimize.{i}: must be '<stage>/<metric>:max|min', got {entry!r}")
        if stage not in stages:
            _exit(f"optimize.{i}: names stage {stage!r}, which is not in this recipe; stages: {', '.join(stages)}")
        if name not in known:
            from edgeflow.core.suggest import did_you_mean

            _exit(f"optimize.{i}: unknown metric {name!r}{did_you_mean(name, sorted(known))}; "
                  "a metric of your own stage goes into hydra.sweeper.extra_metrics")
        out.append((metric, direction or "max"))
    return out


class ObjectiveCheck(Callback):
    """Checks an Optuna multirun's objectives first, before other callbacks start anything (the
    sweep's MLflow parent run): ``conf/config.yaml`` lists it first under ``hydra.callbacks``."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if str(OmegaConf.select(config, "hydra.sweeper._target_") or "").startswith(__name__):
            objectives(config)


class OptunaSweeper(Sweeper):
    """See the module doc; options in ``config.OptunaSweeperConf``."""

    def __init__(self, n_trials: int, n_jobs: int, sampler: str, seed: int | None, storage: str | None,
                 study_name: str | None, params: dict[str, str] | None, extra_metrics: list[str] | None) -> None:
        """Options as in ``config.OptunaSweeperConf`` (``extra_metrics`` is read from the config by ``objectives``)."""
        self.n_trials, self.n_jobs, self.sampler_name, self.seed = n_trials, n_jobs, sampler, seed
        self.storage, self.study_name = storage, study_name
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.job_idx = 0

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def _study(self, objectives: list[tuple[str, str]], space: dict[str, Any], fixed: list[str]) -> Any:
        import optuna

        from edgeflow.cache.keys import digest
        from edgeflow.core.home import home

        if self.sampler_name not in SAMPLERS:
            _exit(f"hydra.sweeper.sampler: must be one of {', '.join(SAMPLERS)}, got {self.sampler_name!r}")
        if not (isinstance(self.n_trials, int) and self.n_trials >= 1 and isinstance(self.n_jobs, int) and self.n_jobs >= 1):
            _exit(f"hydra.sweeper.n_trials / n_jobs: must be integers >= 1, got {self.n_trials!r} / {self.n_jobs!r}")
        samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
                    "nsga2": optuna.samplers.NSGAIISampler}
        name = self.study_name or f"{OmegaConf.select(self.config, 'name')}-" + digest(
            sorted(fixed), {k: repr(v) for k, v in sorted(space.items())}, objectives)[:10]
        storage = self.storage or f"sqlite:///{home() / 'optuna.db'}"
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(study_name=name, storage=storage,
                                    directions=["maximize" if d == "max" else "minimize" for _, d in objectives],
                                    load_if_exists=True)
        # a resumed study continues its random stream instead of repeating the first trials' points
        seed = None if self.seed is None else self.seed + len(study.trials)
        study.sampler = samplers[self.sampler_name](seed=seed)
        return study

    # ------------------------------------------------------------------ the sweep
    def sweep(self, arguments: list[str]) -> Any:
        """Run trials until the study holds ``n_trials`` finished ones; returns the best trials."""
        from optuna.trial import TrialState

        from hydra_plugins.edgeflow_optuna_sweeper.owners import close_orphaned, is_orphaned, own, release
        from hydra_plugins.edgeflow_optuna_sweeper.space import SpaceError, search_space

        assert self.config is not None
        goals = objectives(self.config)
        try:
            space, fixed = search_space(arguments, self.params)
        except SpaceError as err:
            _exit(str(err))
        if not space:
            _exit("hydra.sweeper.params: the search space is empty; give e.g. 'stages.train.lr=interval(1e-4,1e-1)'")
        study = self._study(goals, space, fixed)
        retried = close_orphaned(study)
        if retried:
            log.warning("optuna study %s: trial(s) %s of a sweep that died marked FAIL and queued again",
                        study.study_name, ", ".join(map(str, retried)))
        finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
                    and not is_orphaned(t)]
        self.job_idx = len(study.trials)
        log.info("optuna study %s (%s): %d of %d trials done", study.study_name, study._storage.__class__.__name__,
                 len(finished), self.n_trials)
        remaining = self.n_trials - len(finished)
        while remaining > 0:
            batch = [study.ask(space) for _ in range(min(self.n_jobs, remaining))]
            for trial in batch:
                own(trial)
            overrides = [[*fixed, *(f"{k}={_fmt(v)}" for k, v in trial.params.items())] for trial in batch]
            returns = self.launcher.launch(overrides, initial_job_idx=self.job_idx)
            self.job_idx += len(batch)
            for trial, ret in zip(batch, returns):
                self._tell(study, trial, ret, len(goals))
                release(trial)
            remaining -= len(batch)
        return self._report(study, goals)

    @staticmethod
    def _tell(study: Any, trial: Any, ret: Any, n_objectives: int) -> None:
        from optuna.trial import TrialState

        run_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg is not None else None
        summary = Path(str(run_dir or ret.working_dir or "")) / "summary.json"
        try:
            trial.set_user_attr("run_dir", str(summary.parent))
            trial.set_user_attr("mlflow_run_id", json.loads(summary.read_text()).get("mlflow_run_id", ""))
        except (OSError, ValueError):
            pass
        try:
            value = ret.return_value
        except Exception as err:  # noqa: BLE001 - a failed job is a failed trial, the sweep goes on
            log.warning("trial %d failed: %s", trial.number, str(err).splitlines()[0] if str(err) else type(err).__name__)
            study.tell(trial, state=TrialState.FAIL)
            return
        values = value if isinstance(value, (list, tuple)) else [value]
        if len(values) != n_objectives or any(v is None or math.isnan(float(v)) for v in values):
            study.tell(trial, state=TrialState.FAIL)
            return
        study.tell(trial, [float(v) for v in values] if n_objectives > 1 else float(values[0]))

    def _report(self, study: Any, objectives: list[tuple[str, str]]) -> list[dict[str, Any]]:
        best = [{"number": t.number, "params": t.params, "values": dict(zip((m for m, _ in objectives), t.values)),
                 "mlflow_run_id": t.user_attrs.get("mlflow_run_id", "")} for t in study.best_trials]
        sweep_dir = Path(str(OmegaConf.select(self.config, "hydra.sweep.dir")))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create({"study_name": study.study_name, "objectives": [f"{m}:{d}" for m, d in objectives],
                                         "best_trials": best}), sweep_dir / "optimization_results.yaml")
        print(f"optuna study {study.study_name}: {len(study.trials)} trials; best:", flush=True)
        for entry in best:
            print(f"  trial {entry['number']}: {entry['params']} -> {entry['values']}", flush=True)
        return best


def _fmt(value: Any) -> str:
    """An override value Hydra parses back to ``value`` (floats in full precision)."""
    return repr(value) if isinstance(value, float) else str(value)
