"""A Hydra callback that ends a multirun with the sweep's comparison table (``conf/config.yaml``
lists it under ``hydra.callbacks`` after the sweep's MLflow parent run callback).

It reads the sweep's finished jobs from MLflow (tag ``edgeflow.sweep_id`` = the sweep folder's
name) and prints the Markdown table of ``edgeflow.report`` (varied params, key metrics, ``*`` on
the Pareto front of the ``optimize`` objectives, else accuracy against latency). Nothing when
tracking is off; a table that cannot be made is one warning, never a failed sweep.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

__all__ = ["SweepTableCallback"]

log = logging.getLogger("edgeflow")


class SweepTableCallback(Callback):
    """Prints the sweep's comparison table when the multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from omegaconf import OmegaConf

        from edgeflow.config import validate
        from edgeflow.core.errors import ConfigError

        job = OmegaConf.to_container(config, resolve=False)
        job.pop("hydra", None)
        try:
            typed = validate(OmegaConf.create(job))
        except ConfigError:
            return
        if not typed.tracking.enabled:
            return
        from edgeflow.report.build import build_report, to_markdown
        from edgeflow.report.pareto import Objective
        from edgeflow.report.runs import load_runs
        from edgeflow.tracking.mlflow_run import resolve_uri

        sweep_id = Path(str(config.hydra.sweep.dir)).name
        try:
            rows = load_runs(resolve_uri(typed.tracking), [typed.tracking.experiment], sweep_id)
            if not rows:
                return
            objectives = [Objective(o.metric, o.direction) for o in typed.optimize] if typed.optimize else None
            report = build_report(rows, objectives)
        except Exception as err:  # noqa: BLE001 - the table is a convenience; the sweep's result stands
            log.warning("sweep table: %s", str(err).splitlines()[0] if str(err) else type(err).__name__)
            return
        print(f"\nsweep {sweep_id}: {len(rows)} finished jobs\n{to_markdown(report)}"
              f"edgeflow-report {typed.tracking.experiment} --sweep {sweep_id}   (plots and an HTML page)", flush=True)
