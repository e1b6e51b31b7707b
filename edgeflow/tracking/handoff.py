"""How a sweep's jobs find their parent MLflow run: a small JSON file in the sweep folder.

The sweep callback (``edgeflow.tracking.sweep``) writes ``<sweep dir>/mlflow_parent.json`` before
the launcher starts any job, and removes a stale one first; every job (in this process or
another: joblib, SLURM) reads it from the sweep folder Hydra gives it. A file, not an environment
variable, so it reaches jobs on other machines that share the folder. MLflow-free.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["FILENAME", "SweepParent"]

FILENAME = "mlflow_parent.json"


@dataclass(frozen=True)
class SweepParent:
    """The parent run of a sweep: its id, the store it lives in and the keys the sweep varies."""

    run_id: str
    uri: str
    experiment_id: str
    swept: list[str] = field(default_factory=list)

    def write(self, sweep_dir: Path) -> Path:
        """Write the file atomically (a job never reads half of it); returns its path."""
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path = sweep_dir / FILENAME
        tmp = path.with_name(f".{FILENAME}.{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, sweep_dir: Path) -> SweepParent | None:
        """The parent recorded in ``sweep_dir``, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads((sweep_dir / FILENAME).read_text())
            return cls(run_id=str(data["run_id"]), uri=str(data["uri"]), experiment_id=str(data["experiment_id"]),
                       swept=[str(k) for k in data.get("swept", [])])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def clear(sweep_dir: Path) -> None:
        """Remove a parent file an earlier sweep left in ``sweep_dir``."""
        (sweep_dir / FILENAME).unlink(missing_ok=True)
