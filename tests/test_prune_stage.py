"""The prune stage end to end on real data (digits), through the pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import edgeflow
from edgeflow.core.errors import ConfigError
from edgeflow.methods import pruning as P

BASE = ["recipe=prune_structured", "trainer.progress_bar=false", "tracking.enabled=false",
        "stages.train.max_epochs=20"]
MAGNITUDE = ["stages.prune.method=magnitude", "stages.prune.schedule=agp", "stages.prune.unit=epoch",
             "stages.prune.scope=global"]


def _onnx_weights(path: str) -> int:
    return sum(int(np.prod(t.dims)) for t in onnx.load(path).graph.initializer)


def test_agp_to_80_percent_loses_at_most_one_point_and_masks_survive_training(workdir: Path) -> None:
    cfg = edgeflow.compose([*BASE, *MAGNITUDE, "stages.prune.target_sparsity=0.8",
                            "stages.prune.end=5", "stages.prune.max_epochs=10",
                            "+stage@stages.retrain=train", "stages.retrain.max_epochs=2"])
    r = edgeflow.run(cfg)
    m = r.metrics
    assert m["prune/sparsity"] == pytest.approx(0.8, abs=0.002)
    assert m["prune/acc_drop"] <= 1.0, m
    assert m["prune/acc_drop"] == pytest.approx(m["evaluate/test_acc"] - m["prune/test_acc"])
    # a further fit (the `retrain` stage after `export`) keeps every pruned weight at zero
    assert P.global_sparsity(r.model) == pytest.approx(m["prune/sparsity"], abs=1e-9)
    for mod in P.prunable_layers(r.model).values():
        assert (mod.weight[P.get_mask(mod) == 0] == 0).all()
    sched = (Path(r.artifacts["prune/schedule"])).read_text().splitlines()
    assert len(sched) == 1 + 6  # events at epochs 0..5
    layers = Path(r.artifacts["prune/layers"]).read_text()
    assert "csr_bytes" in layers and "best_format" in layers


def test_structured_half_channels_shrinks_params_macs_and_onnx(workdir: Path) -> None:
    from edgeflow.export import export_float
    from edgeflow.models import build_model

    r = edgeflow.run(edgeflow.compose(BASE))
    m = r.metrics
    assert m["prune/params_ratio"] <= 0.6 and m["prune/macs_ratio"] <= 0.6, m
    assert m["prune/acc_drop"] <= 2.0, m
    dense = export_float(build_model("cnn", (1, 8, 8), 10).eval(), (1, 8, 8), workdir / "dense.onnx")
    assert _onnx_weights(r.artifacts["export/onnx"]) <= 0.6 * _onnx_weights(str(dense))


def test_nm_stage_and_energy_aware_magnitude(workdir: Path) -> None:
    r = edgeflow.run(edgeflow.compose([*BASE, "stages.train.max_epochs=3", "stages.prune.method=nm",
                                       "stages.prune.max_epochs=1"]))
    assert r.metrics["prune/nm_ok"] == 1.0
    assert r.metrics["prune/sparsity"] == pytest.approx(0.5, abs=0.05)
    r = edgeflow.run(edgeflow.compose([*BASE, "stages.train.max_epochs=3", *MAGNITUDE,
                                       "stages.prune.energy_aware=true", "stages.prune.end=1",
                                       "stages.prune.max_epochs=2", "stages.prune.target_sparsity=0.5"]))
    m = r.metrics
    assert m["prune/sparsity"] == pytest.approx(0.5, abs=0.01)
    # features.2.0 costs most energy on the target: it is pruned most
    assert m["prune/sparsity/features.2.0"] > m["prune/sparsity/classifier"]


def test_step_schedule_too_long_for_the_data_fails_before_training(workdir: Path) -> None:
    cfg = edgeflow.compose([*BASE, "stages.train.max_epochs=1", *MAGNITUDE, "stages.prune.unit=step",
                            "stages.prune.begin=0", "stages.prune.end=100000",
                            "stages.prune.max_epochs=2"])
    with pytest.raises(ConfigError, match="would not reach target_sparsity"):
        edgeflow.run(cfg)


def test_iterative_cycles_with_lottery_rewinding(workdir: Path) -> None:
    r = edgeflow.run(edgeflow.compose([*BASE, "stages.train.max_epochs=5", *MAGNITUDE,
                                       "stages.prune.unit=cycle", "stages.prune.schedule=exponential",
                                       "stages.prune.end=2", "stages.prune.target_sparsity=0.7",
                                       "stages.prune.rewind=init", "stages.prune.max_epochs=3"]))
    assert r.metrics["prune/sparsity"] == pytest.approx(0.7, abs=0.002)
    rows = Path(r.artifacts["prune/schedule"]).read_text().splitlines()[1:]
    assert [round(float(x.split(",")[1]), 4) for x in rows] == [0.0, round(1 - 0.3**0.5, 4), 0.7]
