"""``edgeflow``: the Hydra app that composes a recipe and runs its pipeline.

    edgeflow recipe=quickstart
    edgeflow -m recipe=quickstart stages.train.lr=0.01,0.001

Only Hydra and the (torch-free) config schemas load before validation, so ``--help`` and config
errors answer in about a second. A config error prints one line and exits with status 2; a stage
that fails prints one line (the traceback goes to ``error.log`` in the run directory), marks the
MLflow run FAILED and exits with status 1.
"""

from __future__ import annotations

import sys
import traceback

import hydra
from omegaconf import DictConfig

from edgeflow import CONF_DIR
from edgeflow.config import register_schemas, validate
from edgeflow.core.errors import ConfigError

register_schemas()

#: columns of the closing table: metric name -> header (every metric is in summary.json and MLflow)
SUMMARY_COLUMNS = {"test_acc": "acc %", "acc_drop": "drop", "sparsity": "sparse", "weight_bits": "bits",
                   "flash_bytes": "flash B", "peak_ram_bytes": "RAM B", "latency_ms": "ms", "energy_uj": "µJ"}


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | list[float] | None:
    """Validate, run, print the final metrics; returns what a sweeper optimizes (``optimize``)."""
    try:
        typed = validate(cfg)
    except ConfigError as err:
        print(f"edgeflow: config error: {err}", file=sys.stderr)
        sys.exit(2)

    from edgeflow.pipeline import objective_value, run

    try:
        result = run(cfg)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - reported in one line, full traceback kept on disk
        from hydra.core.hydra_config import HydraConfig

        log_path = f"{HydraConfig.get().runtime.output_dir}/error.log"
        with open(log_path, "w") as fh:
            traceback.print_exc(file=fh)
        print(f"edgeflow: run failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
              f"  (traceback: {log_path})", file=sys.stderr)
        sys.exit(1)
    _print_summary(result, cfg)
    return objective_value(result.metrics, typed.optimize)


def _print_summary(result, cfg: DictConfig) -> None:  # noqa: ANN001 - RunResult, imported lazily
    from rich.console import Console
    from rich.table import Table

    from edgeflow.pipeline import format_metric
    from edgeflow.tracking import resolve_uri

    table = Table(title=f"edgeflow · {cfg.name}", caption="all metrics: summary.json and MLflow")
    table.add_column("stage")
    for header in SUMMARY_COLUMNS.values():
        table.add_column(header, justify="right")
    for stage in cfg.stages:
        values = [result.metrics.get(f"{stage}/{key}") for key in SUMMARY_COLUMNS]
        if any(v is not None for v in values):
            table.add_row(stage, *("" if v is None else format_metric(v) for v in values))
    console = Console()
    console.print(table)
    console.print(f"run directory: {result.run_dir}")
    if cfg.tracking.enabled:
        from edgeflow.tracking.schema import TrackingConfig

        uri = resolve_uri(TrackingConfig(uri=cfg.tracking.uri))
        console.print(f"MLflow run {result.mlflow_run_id}; open the results with:")
        console.print(f"  [bold].venv/bin/mlflow ui --backend-store-uri {uri}[/bold]", soft_wrap=True)


if __name__ == "__main__":
    main()
