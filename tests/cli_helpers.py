"""Running the installed console scripts from a user's project folder, as a user would."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from conftest import BIN, ROOT


def project_env(project: Path) -> dict[str, str]:
    """The environment of a CLI run in ``project``: runs land there (``EDGEFLOW_HOME``); dataset
    files are the repository's (``EDGEFLOW_DATA``, as the test session has it)."""
    return {**os.environ, "EDGEFLOW_HOME": str(project),
            "EDGEFLOW_DATA": os.environ.get("EDGEFLOW_DATA", str(ROOT / "data"))}


def tiny_overrides(composed: dict) -> list[str]:
    """One epoch per training stage (two for a pruning schedule, which then ends after epoch 0 and
    must leave an epoch to reach its target), no MLflow, no progress bar."""
    out = ["tracking.enabled=false", "trainer.progress_bar=false"]
    for name, stage in composed["stages"].items():
        if "max_epochs" not in stage:
            continue
        if "begin" in stage and "end" in stage:
            out += [f"stages.{name}.max_epochs=2", f"stages.{name}.begin=0", f"stages.{name}.end=1"]
        else:
            out.append(f"stages.{name}.max_epochs=1")
    return out


def run_recipe(project: Path, *args: str) -> Path:
    """Run ``edgeflow *args`` in ``project`` through the real CLI with tiny epochs (``tiny_overrides``
    of the config it composes); the one run folder it made."""
    env = project_env(project)
    base = [str(BIN / "edgeflow"), *args]
    shown = subprocess.run([*base, "--cfg", "job"], cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    done = subprocess.run([*base, *tiny_overrides(yaml.safe_load(shown.stdout))], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((project / "outputs").glob("*/*/summary.json"))
    assert len(runs) == 1, runs
    return runs[0].parent
