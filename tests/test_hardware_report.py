"""The charts' data: module names on the profile's bars, bounds (compute / memory / overhead) that match
the roofline's terms in both CSVs, an arena high-water line that never decreases and ends at peak RAM,
and PNG files."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import edgeflow.runtime as rt
from edgeflow.hardware import analyze, load
from edgeflow.hardware.report import (arena_series, module_name, plot_layers, plot_profile, profile_bars,
                                      totals_title, write_csv)
from edgeflow.hardware.roofline import BOUNDS, bound_of
from tests.runtime_helpers import ZOO, zoo_qdq_export, zoo_quantized

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """(analysis ModelCost, int8 Program) of the quantized zoo cnn."""
    quantized = zoo_quantized("cnn")
    return analyze(quantized, ZOO["cnn"][0]), rt.load(zoo_qdq_export("cnn", tmp_path_factory.mktemp("cnn"), quantized))


@pytest.mark.parametrize(("node", "module"), [
    ("Conv:features.0.0.out", "features.0.0"), ("Gemm:classifier.out", "classifier"),
    ("MaxPool:features.1", "features.1"), ("QuantizeLinear:input_quant_q", "input_quant"),
    ("Add:add_1", "add_1"), ("logits/dequantize", "logits/dequantize"), ("conv_0", "conv_0"),
])
def test_module_name_inverts_the_qdq_export_naming(node, module):
    assert module_name(node) == module


def test_bounds_match_the_roofline_terms_in_both_csvs(cnn, tmp_path):
    cost, program = cnn
    hw = load("cortex_m4")
    est = hw.estimate(cost)
    assert [le.bound for le in est.layers] == [
        bound_of(le.compute_cycles, le.memory_cycles, le.overhead_cycles) for le in est.layers]
    # the convs are compute-bound; the last pool and the classifier are dominated by the per-layer overhead
    assert {le.name: le.bound for le in est.layers} == {
        "features.0.0": "compute", "features.1": "compute", "features.2.0": "compute", "features.3": "overhead",
        "pool": "overhead", "classifier": "overhead"}
    rows = list(csv.DictReader(write_csv(cost, est, tmp_path / "layers.csv").open()))
    assert [r["bound"] for r in rows] == [le.bound for le in est.layers]
    assert {float(r["overhead_cycles"]) for r in rows} == {hw.cfg.layer_overhead_cycles}

    prof = program.profile(hardware=hw)
    for lp in prof.layers:
        expected = "" if lp.kind == "reshape" else bound_of(lp.compute_cycles, lp.memory_cycles, lp.overhead_cycles)
        assert lp.bound == expected and (lp.bound in BOUNDS or lp.kind == "reshape")
    rows = list(csv.DictReader(prof.write_csv(tmp_path / "profile_layers.csv").open()))
    assert [r["bound"] for r in rows] == [lp.bound for lp in prof.layers]


def test_profile_chart_data_and_pngs(cnn, tmp_path):
    cost, program = cnn
    prof = program.profile(hardware="cortex_m4")
    bars = profile_bars(prof)
    assert [module_name(lp.name) for lp in bars] == [
        "input_quant", "features.0.0", "features.1", "features.2.0", "features.3", "pool", "classifier",
        "logits/dequantize"]
    labels, live, high = arena_series(prof)
    assert len(labels) == len(live) == len(high) == len(prof.layers)
    assert labels[1] == "features.0.0 (conv)" and labels[-1] == "logits/dequantize (dequantize)"
    assert all(a <= b for a, b in zip(high, high[1:])) and high[-1] == prof.peak_ram_bytes
    assert all(v <= h for v, h in zip(live, high)) and max(live) <= prof.peak_ram_bytes
    title = totals_title(prof.hardware, prof.latency_ms, prof.energy_uj, prof.macs, prof.flash_bytes,
                         prof.peak_ram_bytes)
    assert title.startswith("cortex_m4: ") and "83,264 MACs" in title and f"flash {prof.flash_bytes:,} B" in title

    pngs = plot_profile(prof, tmp_path / "hw")
    pngs |= {f"bare_{k}": p for k, p in plot_profile(program.profile(), tmp_path / "bare").items()}
    pngs["layers_png"] = plot_layers(load("cortex_m4").estimate(cost), tmp_path / "layers.png")
    assert len(pngs) == 5
    for path in pngs.values():
        assert Path(path).read_bytes()[:8] == PNG
