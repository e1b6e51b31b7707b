"""``edgeflow``: the Hydra app that composes a recipe and runs its pipeline.

    edgeflow recipe=quickstart
    edgeflow -m recipe=quickstart stages.train.lr=0.01,0.001

    edgeflow new-recipe my_recipe --from quickstart     (write conf/recipe/my_recipe.yaml)

Exit status: 0 success; 1 a stage failed (one line, the traceback in ``error.log`` in the run
directory, the MLflow run marked FAILED); 2 a config or command-line mistake, as one line
``edgeflow: config error: <key>: <message>`` — whether edgeflow's validation or Hydra's composition
(unknown option or key, override syntax, YAML syntax) found it, or a local MLflow store that is
half-migrated — leaving no run folder behind; 130 (SIGINT) or 143 (SIGTERM) interrupted: one line
naming the stage that was running, the MLflow run (and a sweep's parent run) marked KILLED.
Run and sweep folders end in a random suffix (``tasks.run_dir``): concurrent runs never share one.
Only Hydra and the (torch-free) config schemas load before validation, so ``--help`` and config
errors answer in about a second.
"""

from __future__ import annotations

import sys
import traceback

import hydra
from omegaconf import DictConfig

from edgeflow import CONF_DIR
from edgeflow.core.errors import ConfigError
from edgeflow.tracking.interrupt import Interrupted, raising_signals
from tasks.hydra_errors import exit_config_error, run_reporting_config_errors
from tasks.run_dir import register_suffix_resolver, remove_unused_run_dir

register_suffix_resolver()  # ${edgeflow.suffix:} in hydra.run.dir / hydra.sweep.dir

#: columns of the closing table: metric -> header. A header is the metric's name (``<stage>/<name>`` in
#: summary.json and MLflow) on two lines, ``flash_bytes`` as flash / bytes; accuracies get ``%`` below
#: (sparsities are fractions in [0, 1]). Columns no stage reports are left out.
SUMMARY_COLUMNS = {"test_acc": "test_acc\n%", "acc_drop": "acc_drop\n%", "sparsity": "sparsity",
                   "channel_sparsity": "channel\nsparsity", "weight_bits": "weight\nbits", "flash_bytes": "flash\nbytes",
                   "peak_ram_bytes": "peak_ram\nbytes", "latency_ms": "latency\nms", "energy_uj": "energy\nuj"}


def main() -> None:
    """The ``edgeflow`` console script: ``new-recipe`` writes a recipe, anything else runs the Hydra app."""
    if sys.argv[1:2] == ["new-recipe"]:
        from tasks.new_recipe import main as new_recipe

        new_recipe(sys.argv[2:])
        return
    with raising_signals():
        try:
            run_reporting_config_errors(app, "edgeflow", sys.argv[1:])
        except Interrupted as err:  # outside a run (composing, loading data, between sweep jobs)
            print(f"edgeflow: {err}", file=sys.stderr)
            sys.exit(err.exit_code)


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def app(cfg: DictConfig) -> float | list[float] | None:
    """Validate, run, print the final metrics; returns what a sweeper optimizes (``optimize``).

    A config mistake — found by validation, or while loading the data and building the model, before
    any run exists, or a local MLflow store that cannot be used — exits 2 (one line) after removing
    the run folder Hydra made. SIGINT/SIGTERM during the run: one line, exit 130/143."""
    from edgeflow.config import validate
    from edgeflow.tracking import resolve_uri
    from edgeflow.tracking.store import prepare_store

    try:
        tracking = validate(cfg).tracking  # torch-free: most mistakes answer in about a second
        if tracking.enabled:  # a new SQLite store is created once, under a file lock; a broken one is refused
            prepare_store(resolve_uri(tracking))
        from edgeflow.pipeline import objective_value, prepare, run

        prepared = prepare(cfg)  # loads the data and builds the model: what only they reveal
    except ConfigError as err:
        remove_unused_run_dir()
        exit_config_error("edgeflow", err)
    except Interrupted:  # before the run exists: nothing to keep
        remove_unused_run_dir()
        raise

    try:
        with raising_signals():  # also where a launcher calls the app without main (jobs in other processes)
            result = run(cfg, prepared)
    except Interrupted as err:  # the pipeline marked the MLflow run KILLED
        from hydra.core.hydra_config import HydraConfig

        marked = "; MLflow run marked KILLED" if prepared.typed.tracking.enabled else ""
        print(f"edgeflow: {err}{marked} (files so far: {HydraConfig.get().runtime.output_dir})", file=sys.stderr)
        sys.exit(err.exit_code)
    except ConfigError as err:  # a check only possible while a stage runs; the MLflow run is marked FAILED
        exit_config_error("edgeflow", err)
    except Exception as err:  # noqa: BLE001 - reported in one line, full traceback kept on disk
        from hydra.core.hydra_config import HydraConfig

        log_path = f"{HydraConfig.get().runtime.output_dir}/error.log"
        with open(log_path, "w") as fh:
            traceback.print_exc(file=fh)
        print(f"edgeflow: run failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
              f"  (traceback: {log_path})", file=sys.stderr)
        sys.exit(1)
    _print_summary(result, cfg)
    return objective_value(result.metrics, prepared.typed.optimize)


def _print_summary(result, cfg: DictConfig) -> None:  # noqa: ANN001 - RunResult, imported lazily
    """The closing table: one row per stage with a value in ``SUMMARY_COLUMNS``, labelled with the
    precision of the stage's model (``_precisions``); then where the results are."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from edgeflow.pipeline import format_metric
    from edgeflow.tracking import resolve_uri

    stages = list(cfg.stages)
    columns = [key for key in SUMMARY_COLUMNS if any(f"{stage}/{key}" in result.metrics for stage in stages)]
    table = Table(title=f"edgeflow · {cfg.name}", caption="every metric: summary.json and MLflow (<stage>/<metric>)",
                  box=box.MINIMAL, padding=0, show_edge=False)
    table.add_column("stage")
    table.add_column("model")
    for key in columns:
        table.add_column(SUMMARY_COLUMNS[key], justify="right")
    precisions = _precisions(stages, result.metrics)
    for stage in stages:
        values = [result.metrics.get(f"{stage}/{key}") for key in columns]
        if any(v is not None for v in values):
            table.add_row(stage, precisions[stage], *("" if v is None else format_metric(v) for v in values))
    console = Console()
    console.print(table)
    console.print(f"run directory: {result.run_dir}")
    if cfg.tracking.enabled:
        from edgeflow.tracking.schema import TrackingConfig

        uri = resolve_uri(TrackingConfig(uri=cfg.tracking.uri))
        logged = result.state is not None and result.state.artifact("onnx") is not None
        model = f" (model: runs:/{result.mlflow_run_id}/model)" if logged else ""
        console.print(f"MLflow run {result.mlflow_run_id}{model}; open the results with:")
        console.print(f"  [bold].venv/bin/mlflow ui --backend-store-uri {uri}[/bold]", soft_wrap=True)


def _precisions(stages: list[str], metrics: dict[str, float]) -> dict[str, str]:
    """``float``, ``int8`` (``int4``, ...; ``mixed`` for a non-integer mean) per stage: a stage that
    measures its model's ``weight_bits`` says it (< 32 means the model carries quantizers); any
    other stage works on the model the stage before it left, so it keeps that label."""
    label, out = "float", {}
    for stage in stages:
        bits = metrics.get(f"{stage}/weight_bits")
        if bits is not None:
            label = "float" if bits >= 32 else f"int{int(bits)}" if float(bits).is_integer() else "mixed"
        out[stage] = label
    return out


if __name__ == "__main__":
    main()
