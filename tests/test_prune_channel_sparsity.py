"""Structured pruning reports the fraction of channels it removed (``channel_sparsity``): in the stage's
metrics, ``summary.json`` and the one-line-per-stage log (thinning leaves no zero weights, so
``sparsity`` alone would read 0)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import edgeflow


def test_structured_prune_reports_channel_sparsity(workdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = edgeflow.compose(["recipe=prune_structured", "trainer.progress_bar=false", "tracking.enabled=false",
                            "stages.train.max_epochs=1", "stages.prune.max_epochs=1"])
    with caplog.at_level(logging.INFO, logger="edgeflow"):
        r = edgeflow.run(cfg)
    m = r.metrics
    # cnn: conv groups of 16 and 32 channels (the classifier's outputs are the classes), half of each removed
    assert m["prune/channel_sparsity"] == 0.5 and m["prune/sparsity"] == 0.0
    assert json.loads((Path(r.run_dir) / "summary.json").read_text())["metrics"]["prune/channel_sparsity"] == 0.5
    line = next(rec.getMessage() for rec in caplog.records if rec.getMessage().startswith("stage prune"))
    assert "channel_sparsity=0.50" in line
