"""Partition (Neurosurgeon): the per-split table equals hand-computed values for a small model on two
made-up targets; the stage runs on digits and rejects a bad link or an unknown server in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

import edgeflow
from edgeflow.core.errors import ConfigError
from edgeflow.hardware import analyze, load
from edgeflow.methods.adaptive.partition import Link, best_split, partition_table
from edgeflow.models import build_model

from conftest import ROOT

QUIET = ["trainer.progress_bar=false", "tracking.enabled=false"]


def _target(name: str, clock_hz: float) -> object:
    """cortex_m4 with round numbers: 1 MAC/cycle, flash 2 B/cycle, SRAM 4 B/cycle, 100 cycles per
    layer, 10 pJ/MAC, 1 pJ per flash byte, 0.5 pJ per SRAM byte."""
    cfg = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "hardware" / "cortex_m4.yaml"))
    cfg.update(name=name, clock_hz=clock_hz, layer_overhead_cycles=100,
               mac_per_cycle={k: 1.0 for k in cfg["mac_per_cycle"]},
               bytes_per_cycle={"flash": 2.0, "sram": 4.0},
               energy_per_mac_pj={k: 10.0 for k in cfg["energy_per_mac_pj"]},
               energy_per_byte_pj={"flash": 1.0, "sram": 0.5})
    return load(cfg)


def test_split_table_equals_hand_computed_values() -> None:
    # mlp 16 -> 8 -> 4 at int8. Layer 1: 128 MACs, 128 + 32 B weights/bias, 16 + 8 B activations:
    #   compute 128 cycles > memory 160/2 + 24/4 = 86 -> 128 + 100 = 228 cycles; 1280 + 160 + 12 = 1452 pJ
    # Layer 2: 32 MACs, 32 + 16 B, 8 + 4 B: compute 32 > memory 48/2 + 12/4 = 27 -> 132 cycles; 320 + 48 + 6 = 374 pJ
    cost = analyze(build_model("mlp", (16,), 4, hidden=[8]), (16,), default_bits=8)
    device, server = _target("dev", 1e6), _target("srv", 1e7)        # 1 MHz and 10 MHz
    link = Link(bandwidth_kbps=8.0, rtt_ms=5.0, energy_per_byte_nj=1000.0)  # 1 ms and 1 µJ per byte
    rows = partition_table(cost, device, server, link)
    want = [  # split, sent bytes, device ms, transfer ms, server ms, device energy µJ
        (0, 16, 0.0, 5 + 16, 0.0228 + 0.0132, 16.0),
        (1, 8, 0.228, 5 + 8, 0.0132, 0.001452 + 8.0),
        (2, 0, 0.228 + 0.132, 0.0, 0.0, 0.001452 + 0.000374),
    ]
    assert [r["after"] for r in rows] == ["input", "net.1", "net.3"]
    for row, (split, sent, dev_ms, tx_ms, srv_ms, energy) in zip(rows, want, strict=True):
        assert row["split"] == split and row["sent_bytes"] == sent
        assert row["device_ms"] == pytest.approx(dev_ms, rel=1e-12, abs=1e-15)
        assert row["transfer_ms"] == pytest.approx(tx_ms, rel=1e-12)
        assert row["server_ms"] == pytest.approx(srv_ms, rel=1e-12, abs=1e-15)
        assert row["latency_ms"] == pytest.approx(dev_ms + tx_ms + srv_ms, rel=1e-12)
        assert row["energy_uj"] == pytest.approx(energy, rel=1e-12)
    assert best_split(rows, "latency_ms")["split"] == 2 and best_split(rows, "energy_uj")["split"] == 2
    fast = partition_table(cost, device, server, Link(8000.0, 0.0, 1.0))   # a fast, free link: offload all
    assert best_split(fast, "latency_ms")["split"] == 0
    assert fast[0]["latency_ms"] == pytest.approx(16 * 8 / 8000 + 0.036, rel=1e-12)


def test_partition_stage_on_digits(workdir: Path) -> None:
    r = edgeflow.run(edgeflow.compose(["recipe=partition", *QUIET, "stages.train.max_epochs=1"]))
    m = r.metrics
    rows = Path(r.artifacts["partition/partition_csv"]).read_text().splitlines()
    assert rows[0].startswith("split,after,device_ms,sent_bytes") and len(rows) == 1 + m["partition/splits"]
    local = load("cortex_m4").estimate(analyze(r.model, (1, 8, 8), default_bits=8))   # all on the device
    assert m["partition/device_only_latency_ms"] == pytest.approx(local.latency_ms, rel=1e-12)
    assert m["partition/device_only_energy_uj"] == pytest.approx(local.energy_uj, rel=1e-12)
    assert m["partition/best_latency_ms"] <= min(m["partition/device_only_latency_ms"], m["partition/server_only_latency_ms"])
    assert 0 <= m["partition/energy_saving"] < 1 and Path(r.artifacts["partition/partition_png"]).stat().st_size > 0


@pytest.mark.parametrize("override, message", [
    ("stages.partition.bandwidth_kbps=0", "stages.partition.bandwidth_kbps: must be a finite float > 0, got 0"),
    ("stages.partition.server=rpi5", "stages.partition.server: unknown target 'rpi5'"),
    ("stages.partition.rtt_ms=-1", "stages.partition.rtt_ms: must be a finite float >= 0"),
])
def test_bad_partition_options_are_one_line_errors(override: str, message: str) -> None:
    from edgeflow.config import validate

    with pytest.raises(ConfigError) as err:
        validate(edgeflow.compose(["recipe=partition", override]))
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
