"""analyze and profile agree: equal MACs and ops on every zoo model (also per layer, by module name),
and every other difference is a named term — requantization parameters (flash, and the energy of
reading them) and the quantize / dequantize nodes at the graph boundary (latency, energy)."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgeflow.runtime as rt
from edgeflow.hardware import analyze, load
from edgeflow.hardware.report import module_name
from edgeflow.models import ZOO as MODEL_ZOO
from edgeflow.runtime import costs
from tests.runtime_helpers import ZOO, zoo_qdq_export, zoo_quantized

BOUNDARY = ("quantize", "dequantize")


def test_every_zoo_model_is_covered():
    assert set(ZOO) == set(MODEL_ZOO)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_analyze_and_profile_agree_on_every_zoo_model(tmp_path: Path, name: str) -> None:
    hw = load("cortex_m4")
    quantized = zoo_quantized(name)
    cost = analyze(quantized, ZOO[name][0])
    est = hw.estimate(cost)
    program = rt.load(zoo_qdq_export(name, tmp_path, quantized))
    prof = program.profile(hardware=hw)

    assert prof.macs == cost.macs and prof.ops == cost.ops
    assert prof.macs == est.macs and prof.ops == est.ops
    # per layer, by module name (functional adds are named by fx in both): the same work
    work = {module_name(lp.name): (lp.macs, lp.ops) for lp in prof.layers if lp.macs or lp.ops}
    assert work == {lc.name: (lc.macs, lc.ops) for lc in cost.layers if lc.macs or lc.ops}

    # flash: the profile adds the requantization parameters (int32 multiplier + shift per channel, ...)
    requant = sum(costs.requant_bytes(node) for node in program.ir.nodes)
    assert prof.flash_bytes - est.flash_bytes == requant > 0
    # energy: + reading those bytes from weight memory + the boundary quantize / dequantize nodes
    boundary = [lp for lp in prof.layers if lp.kind in BOUNDARY]
    e_byte = hw.cfg.energy_per_byte_pj[hw.cfg.weight_memory]
    assert prof.energy_uj == pytest.approx(
        est.energy_uj + requant * e_byte * 1e-6 + sum(lp.energy_uj for lp in boundary), rel=1e-12)
    # latency: per layer equal unless memory-bound (then the requantization bytes add memory cycles)
    by_name = {le.name: le for le in est.layers}
    for lp in prof.layers:
        le = by_name.get(module_name(lp.name))
        if le is not None and lp.bound != "memory":
            assert lp.latency_ms == pytest.approx(le.latency_ms, rel=1e-12) and lp.bound == le.bound, lp.name
    assert {module_name(lp.name) for lp in prof.layers if lp.kind not in BOUNDARY + ("reshape",)} == set(by_name)
