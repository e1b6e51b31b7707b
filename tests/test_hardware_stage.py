"""The analyze stage: metrics, per-layer CSV and chart."""

import csv

import pytest

from edgeflow.core.errors import ConfigError
from edgeflow.hardware import load
from edgeflow.models import build_model
from edgeflow.stages import analyze as stage
from edgeflow.state import StageContext, State
from edgeflow.tracking import NullRun


def test_config_validation():
    assert stage.Config().default_bits == 32
    with pytest.raises(ConfigError, match="default_bits"):
        stage.Config(default_bits=3)


def test_analyze_stage(tmp_path):
    state = State.of(build_model("resnet8", (3, 32, 32), 10), (3, 32, 32), 10)
    ctx = StageContext(name="analyze", out_dir=tmp_path, seed=0, tracker=NullRun(), trainer_cfg=None,
                       data_source=lambda: None, hardware_source=lambda: load("cortex_m4"))
    res = stage.run(stage.Config(default_bits=8), state, ctx)
    m = res.metrics
    assert {"macs", "params", "flash_bytes", "peak_ram_bytes", "latency_ms", "energy_uj", "fits",
            "sparsity", "weight_bits"} <= set(m)
    assert m["macs"] == 12_501_632 and m["fits"] == 1 and m["weight_bits"] == 8
    assert 165 <= m["latency_ms"] <= 300
    assert res.state is state and ctx.reads == {"hardware"}
    rows = list(csv.DictReader(res.artifacts["layers_csv"].open()))
    assert len(rows) == 14 and rows[0]["kind"] == "conv2d"
    assert sum(float(r["latency_ms"]) for r in rows) == pytest.approx(m["latency_ms"])
    png = res.artifacts["layers_png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
