"""Runs a recipe's stages in order over one ``State`` and records everything in one MLflow run."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from edgeflow.config import Objective, RunConfig, stage_module, validate
from edgeflow.core.errors import ConfigError
from edgeflow.state import StageContext, StageResult, State, model_version
from edgeflow.tracking.interrupt import Interrupted

log = logging.getLogger("edgeflow")
KEY_METRICS = ("test_acc", "best_val_acc", "acc_drop", "sparsity", "channel_sparsity", "macs", "flash_bytes",
               "latency_ms", "energy_uj")


@dataclass
class RunResult:
    """What a pipeline run leaves: final ``<stage>/<metric>`` values, absolute artifact paths, the
    absolute run folder, the MLflow run id (``""`` without tracking) and the final ``State`` (also
    saved in ``<run_dir>/state/``; ``State.load`` reads it back)."""

    metrics: dict[str, float]
    artifacts: dict[str, str]
    run_dir: Path
    mlflow_run_id: str
    state: State | None = field(default=None, repr=False)

    @property
    def model(self) -> Any:
        """The final model (``state.model``)."""
        return self.state.model if self.state is not None else None


def _hydra_config() -> Any | None:
    """Hydra's ``HydraConfig`` of the running job, or None outside a Hydra app (the Python API)."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def _run_dir(hydra_cfg: Any | None, name: str) -> Path:
    """The Hydra job directory, or outside Hydra a new ``<home>/outputs/<name>/<time>`` (a ``_<n>``
    suffix when that folder exists); absolute either way."""
    if hydra_cfg is not None:
        return Path(hydra_cfg.runtime.output_dir).resolve()
    from edgeflow.core.home import home

    base = home() / "outputs" / name / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    path, n = base, 0
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}_{n}")


def _set_seed(seed: int, threads: int) -> None:
    import pytorch_lightning as pl
    import torch

    if threads:
        torch.set_num_threads(threads)
    pl.seed_everything(seed, workers=True, verbose=False)


@dataclass
class Prepared:
    """A run ready to start: its validated config, the set-up datamodule and the starting state."""

    typed: RunConfig
    datamodule: Any
    state: State


def prepare(cfg: DictConfig) -> Prepared:
    """Everything that can be checked before a run exists: validate ``cfg``, seed, load the data,
    build the model (and its checkpoint), and run every stage's ``check`` on it. Raises
    ``ConfigError`` (one line) for any mistake found; writes no file and opens no MLflow run."""
    typed: RunConfig = validate(cfg)
    _set_seed(typed.seed, typed.trainer.num_threads)
    from edgeflow.data import build_datamodule, data_shape
    from edgeflow.models import starting_state
    from edgeflow.tracking import resolve_uri

    datamodule = build_datamodule(typed.dataset, typed.seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    datamodule.setup("test")
    state = starting_state(typed.model, *data_shape(datamodule, typed.dataset), resolve_uri(typed.tracking))
    for name, stage_cfg in typed.stages.items():  # layer names survive quantization and thinning
        _check_stage(name, stage_cfg, state)
    return Prepared(typed, datamodule, state)


def run(cfg: DictConfig, prepared: Prepared | None = None) -> RunResult:
    """Run ``cfg``'s stages in order (``prepare`` first, unless given its result); see ``edgeflow.run``."""
    prepared = prepared or prepare(cfg)
    typed = prepared.typed
    hydra_cfg = _hydra_config()
    run_dir = _run_dir(hydra_cfg, typed.name)
    log.info("run %s in %s", typed.name, run_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))

    from edgeflow.tracking import flatten, open_run, resolve_uri, run_labels

    run_name, tags = run_labels(typed.name, typed.tracking, resolve_uri(typed.tracking), hydra_cfg)
    tracker = open_run(typed.tracking, {"edgeflow.recipe": typed.name, **tags}, run_name)
    try:
        tracker.log_params(flatten(resolved))
        tracker.log_artifact(run_dir / "config.yaml")
        result = _run_stages(prepared, run_dir, tracker)
        tracker.log_artifacts(run_dir / "state", "state")  # runs:/<id>/state: State.load, model.checkpoint
        onnx_path = result.state.artifact("onnx")  # the final model's export, when it still matches the model
        if onnx_path is not None:
            tracker.log_onnx_model(onnx_path, "model")  # runs:/<id>/model: mlflow.onnx / mlflow.pyfunc
    except BaseException as err:
        tracker.finish(err)
        raise
    tracker.finish()
    return result


def _run_stages(prepared: Prepared, run_dir: Path, tracker: Any) -> RunResult:
    typed, datamodule, state = prepared.typed, prepared.datamodule, prepared.state
    metrics: dict[str, float] = {}
    artifacts: dict[str, str] = {}

    @cache
    def hardware() -> Any:  # built once, by the first stage that needs the target's model
        from edgeflow.hardware import load

        return load(typed.hardware)

    @cache
    def target(target_name: str) -> Any:  # a bundled target a stage names (stages.<name>.hardware), built once
        from edgeflow.hardware import load

        return load(target_name)

    from edgeflow.cache import StageCache

    stage_cache = StageCache.open(typed.cache, run_dir, {"dataset": typed.dataset, "hardware": typed.hardware,
                                                         "trainer": typed.trainer}, typed.seed, tracker)
    stage_cache.begin(typed)
    for name, stage_cfg in typed.stages.items():
        out_dir = run_dir / name
        out_dir.mkdir(parents=True, exist_ok=True)
        ctx = StageContext(name=name, out_dir=out_dir, seed=typed.seed, tracker=tracker, trainer_cfg=typed.trainer,
                           data_source=lambda: datamodule, hardware_source=hardware, target_source=target)
        versions = {key: model_version(model) for key, model in state.models.items()}
        started = time.perf_counter()
        try:
            result, computed_by = stage_cache.run(name, stage_cfg, state, ctx,
                                                  lambda: _compute(stage_cfg, state, ctx, typed))
        except ConfigError as err:  # a check only possible at run time (e.g. steps per epoch)
            raise err.under(f"stages.{name}") from None
        except Interrupted as err:  # SIGINT/SIGTERM (edgeflow.tracking.interrupt): the run ends KILLED
            raise err.during(name) from None
        _check_result(name, stage_cfg.kind, result, state, versions)
        seconds = time.perf_counter() - started
        stage_metrics = {**result.metrics, "wall_s": seconds}
        ctx.log_metrics(stage_metrics)
        for key, path in result.artifacts.items():
            ctx.log_artifact(Path(path))
            artifacts[f"{name}/{key}"] = str(path)
        metrics.update({f"{name}/{k}": float(v) for k, v in stage_metrics.items()})
        shown = "  ".join(f"{k}={format_metric(v)}" for k, v in result.metrics.items() if k in KEY_METRICS)
        if computed_by is not None:  # reused from the stage cache (edgeflow.cache)
            shown = f"cached (computed by run {computed_by or '-'})  {shown}"
        log.info("stage %-10s %-9s %6.1fs  %s", name, f"({stage_cfg.kind})", seconds, shown)
        state = result.state.with_history(name)

    state.save(run_dir / "state")
    summary = {"metrics": metrics, "artifacts": artifacts, "mlflow_run_id": tracker.run_id}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    tracker.log_artifact(run_dir / "summary.json")
    stage_cache.finish()
    return RunResult(metrics=metrics, artifacts=artifacts, run_dir=run_dir, mlflow_run_id=tracker.run_id, state=state)


def _compute(stage_cfg: Any, state: State, ctx: StageContext, typed: RunConfig) -> StageResult:
    """Run a stage on ``state``, seeded with the run's seed: every stage starts from the same random
    state, so a stage computed after cached ones gives what it gives in an uninterrupted run."""
    _set_seed(typed.seed, typed.trainer.num_threads)
    return stage_module(stage_cfg.kind).run(stage_cfg, state, ctx)


def _check_stage(name: str, stage_cfg: Any, state: State) -> None:
    """Run the early check of stage ``name`` on ``state``: ``check(cfg, state)`` in its module, if it
    has one (config mistakes only a built model reveals, e.g. a layer pattern that matches nothing);
    its ``ConfigError`` (bare key) is reported under ``stages.<name>``."""
    check = getattr(stage_module(stage_cfg.kind), "check", None)
    if check is None:
        return
    try:
        check(stage_cfg, state)
    except ConfigError as err:
        raise err.under(f"stages.{name}") from None


def _check_result(name: str, kind: str, result: Any, given: State, versions: dict[str, str]) -> None:
    """A stage returns a ``StageResult`` holding a ``State`` and leaves the state it was given as it was."""
    if not isinstance(result, StageResult) or not isinstance(result.state, State):
        raise TypeError(f"stage {name!r} (kind {kind}) must return a StageResult holding a State, "
                        f"got {type(result).__name__}")
    changed = [key for key, model in given.models.items() if model_version(model) != versions[key]]
    if changed:
        raise RuntimeError(f"stage {name!r} (kind {kind}) changed the models it was given ({', '.join(changed)}); "
                           "a stage must change a copy (state.copy_model()) and return it in a new state")


def objective_value(metrics: dict[str, float], objectives: list[Objective] | None) -> float | list[float] | None:
    """What a Hydra sweeper optimizes: the value of each objective's metric (one float for one
    objective, a list for several; NaN, with a warning, for a metric the run did not produce).
    Without objectives: the last stage's ``test_acc`` (None if no stage reported one)."""
    if objectives is None:
        accs = [v for k, v in metrics.items() if k.endswith("/test_acc")]
        return accs[-1] if accs else None
    values = []
    for objective in objectives:
        if objective.metric not in metrics:
            log.warning("optimize: the run produced no metric %r", objective.metric)
        values.append(float(metrics.get(objective.metric, float("nan"))))
    return values[0] if len(values) == 1 else values


def format_metric(value: float) -> str:
    """``12,345`` for whole numbers, ``3.14`` otherwise (log lines and the closing table)."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}"
