"""Per-path costs of an adaptive system on a target's analytical model (``edgeflow.hardware``)."""

from __future__ import annotations

from typing import Any

from torch import nn

from edgeflow.methods.adaptive.calibrate import COSTS


def _cost(units: list[tuple[nn.Module, tuple[int, ...]]], hardware: Any, default_bits: int) -> dict[str, float]:
    from edgeflow.hardware import analyze

    total = dict.fromkeys(COSTS, 0.0)
    for module, shape in units:
        est = hardware.estimate(analyze(module, shape, default_bits=default_bits), warn=False)
        total["energy_uj"] += est.energy_uj
        total["latency_ms"] += est.latency_ms
    return total


def path_costs(system: nn.Module, input_shape: tuple[int, ...], hardware: Any,
               default_bits: int = 8) -> tuple[dict[str, list[float]], dict[str, float]]:
    """``({cost: [what path k adds]}, {cost: the biggest path run alone})`` for ``energy_uj`` and
    ``latency_ms`` on ``hardware`` (a ``HardwareModel``); layers without quantizers are costed at
    ``default_bits`` (8: as deployed in int8). The confidence check itself (a softmax and a top-2 over
    the classes) is not costed."""
    per_path, alone = system.cost_units(tuple(input_shape))
    costs = [_cost(units, hardware, default_bits) for units in per_path]
    return {k: [c[k] for c in costs] for k in COSTS}, _cost(alone, hardware, default_bits)
