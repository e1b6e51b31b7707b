"""Energy / latency-aware per-layer sparsity targets (after Yang et al. 2017, energy-aware pruning).

Rule (exact): given each layer's cost ``c_l`` on the target (energy in uJ or latency in ms from
the hardware model's per-layer estimate) and its weight count ``n_l``, layer ``l`` gets

    s_l = min(s_max, lambda * (c_l / max_k c_k) ** power)

with ``lambda >= 0`` found by bisection so that the weight-weighted mean sparsity equals the
global target: ``sum_l n_l s_l = target * sum_l n_l``. The costliest layer is pruned most; a layer
that costs nothing is not pruned; no layer exceeds ``s_max`` (the remaining budget flows to the
other layers, water-filling). ``power`` sharpens (> 1) or flattens (< 1) the preference;
``power = 0`` gives uniform sparsity. If the target cannot be met under ``s_max`` it raises.
The same rule gives per-group channel ratios for structured pruning (``n_l`` = the group's
parameters, ``c_l`` = the summed cost of its producers).
"""

from __future__ import annotations

from collections.abc import Mapping


def energy_aware_sparsities(
    costs: Mapping[str, float],
    sizes: Mapping[str, int],
    target: float,
    *,
    max_layer: float = 0.95,
    power: float = 1.0,
) -> dict[str, float]:
    names = [n for n in sizes if n in costs]
    if not names:
        raise ValueError("no layer has both a cost and a size")
    cmax = max(float(costs[n]) for n in names)
    if cmax <= 0:
        return {n: target for n in names}
    rel = {n: (max(float(costs[n]), 0.0) / cmax) ** power for n in names}
    total = float(sum(sizes[n] for n in names))
    need = target * total

    def achieved(lam: float) -> float:
        return sum(sizes[n] * min(max_layer, lam * rel[n]) for n in names)

    if achieved(1e12) < need - 1e-9:
        raise ValueError(
            f"energy-aware target {target} unreachable with max_layer_sparsity={max_layer} "
            "(too few costly weights); raise max_layer_sparsity or lower the target"
        )
    lo, hi = 0.0, 1.0
    while achieved(hi) < need:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        if achieved(mid) < need:
            lo = mid
        else:
            hi = mid
    return {n: min(max_layer, hi * rel[n]) for n in names}
