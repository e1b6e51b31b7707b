"""Energy / latency-aware per-layer sparsity targets (after Yang et al. 2017, energy-aware pruning).

Rule (exact): given each layer's cost ``c_l`` on the target (energy in uJ or latency in ms from
the hardware model's per-layer estimate) and its weight count ``n_l``, layer ``l`` gets

    s_l = min(s_max, lambda * (c_l / max_k c_k) ** power)

with ``lambda >= 0`` found by bisection so that the weight-weighted mean sparsity equals the
global target: ``sum_l n_l s_l = target * sum_l n_l``. The costliest layer is pruned most; a layer
that costs nothing is not pruned; no layer exceeds ``s_max`` (the remaining budget flows to the
other layers, water-filling). ``power`` sharpens (> 1) or flattens (< 1) the preference;
``power = 0`` gives uniform sparsity. If the target cannot be met under ``s_max`` it raises.
The same rule gives per-group channel ratios for structured pruning (``n_l`` = the weights of the
group's producers, ``c_l`` = the summed cost of its producers and depthwise convs).

Costs come from a hardware model (:func:`layer_costs`: ``hardware.estimate(analyze(model))``);
:func:`group_costs` sums them per channel group; :func:`energy_aware_layer_sparsities` and
:func:`energy_aware_group_ratios` apply the rule to a model's layers or channel groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from edgeflow.graph.groups import ChannelGroup
    from edgeflow.hardware.model import HardwareModel

COST_ATTRS = {"energy": "energy_uj", "latency": "latency_ms"}


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


def layer_costs(
    model: nn.Module, input_shape: Iterable[int], hardware: HardwareModel, metric: str = "energy"
) -> dict[str, float]:
    """Per-layer cost of ``model`` on ``hardware`` by layer name: ``energy_uj`` (``metric="energy"``)
    or ``latency_ms`` (``"latency"``) of each layer of ``hardware.estimate(analyze(model))``
    (BatchNorm and activations are fused into their conv, so only conv/linear layers appear)."""
    from edgeflow.hardware import analyze

    if metric not in COST_ATTRS:
        raise ValueError(f"metric must be one of {tuple(COST_ATTRS)}, got {metric!r}")
    est = hardware.estimate(analyze(model, tuple(input_shape)), warn=False)
    return {le.name: float(getattr(le, COST_ATTRS[metric])) for le in est.layers}


def group_costs(
    model: nn.Module, groups: Iterable[ChannelGroup], costs: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, int]]:
    """``(cost, size)`` of every prunable channel group, by group name: ``cost`` = the sum of
    ``costs`` over the group's producers and depthwise convs (a layer without a cost counts 0),
    ``size`` = the weight count of its producers. Blocked groups are left out."""
    modules = dict(model.named_modules())
    cost: dict[str, float] = {}
    size: dict[str, int] = {}
    for g in groups:
        if g.prunable:
            cost[g.name] = sum(costs.get(n, 0.0) for n in g.producers + g.depthwise)
            size[g.name] = sum(modules[n].weight.numel() for n in g.producers)
    return cost, size


def energy_aware_layer_sparsities(
    model: nn.Module,
    costs: Mapping[str, float],
    target: float,
    *,
    exclude: Iterable[str] = (),
    max_layer: float = 0.95,
    power: float = 1.0,
) -> dict[str, float]:
    """:func:`energy_aware_sparsities` over the prunable layers of ``model`` (minus ``exclude``):
    sizes are their weight counts, ``costs`` e.g. from :func:`layer_costs`."""
    from .masks import prunable_layers

    sizes = {n: m.weight.numel() for n, m in prunable_layers(model, exclude).items()}
    return energy_aware_sparsities(costs, sizes, target, max_layer=max_layer, power=power)


def energy_aware_group_ratios(
    model: nn.Module,
    ratio: float,
    *,
    input_shape: Iterable[int],
    hardware: HardwareModel,
    exclude: Iterable[str] = (),
    metric: str = "energy",
    max_layer: float = 0.95,
    power: float = 1.0,
) -> dict[str, float]:
    """Per-group channel ratios (mean ``ratio`` weighted by producer weights) for
    ``structured_prune(group_ratio=...)``: :func:`energy_aware_sparsities` over the
    :func:`group_costs` of ``model``'s channel groups, priced on ``hardware`` now (the model as it is,
    e.g. already thinned)."""
    from .structured import channel_groups

    shape = tuple(input_shape)
    groups = channel_groups(model, shape, exclude)
    cost, size = group_costs(model, groups, layer_costs(model, shape, hardware, metric))
    return energy_aware_sparsities(cost, size, ratio, max_layer=max_layer, power=power)
