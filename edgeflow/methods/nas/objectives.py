"""Objectives, constraints, the MnasNet reward and Pareto fronts (torch- and Optuna-free).

- ``METRICS``: what a NAS can optimise: ``val_acc`` (maximised, after the proxy training) and the
  hardware model's costs at the deployment bit-width (minimised).
- ``Constraint``: a hard limit on a cost, checked before a candidate trains: ``fits`` (flash and RAM
  within the target) or ``<cost> <= <number>`` (also ``<``, ``>=``, ``>``); ``parse_constraint``
  reads one from a string.
- ``mnas_reward(acc, cost, target, w)``: MnasNet's ``acc · (cost / target)^w`` (Tan et al. 2019;
  w = -0.07 soft).
- ``pareto_front``, ``knee`` and ``hypervolume`` over points whose coordinates are all minimised.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Callable, Sequence

from edgeflow.core.errors import ConfigError

__all__ = ["COSTS", "METRICS", "Constraint", "parse_constraint", "direction", "mnas_reward", "pareto_front",
           "knee", "hypervolume"]

COSTS = ("params", "macs", "flash_bytes", "peak_ram_bytes", "latency_ms", "energy_uj")
METRICS = ("val_acc", *COSTS)
_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "<": operator.lt, ">=": operator.ge,
                                                   ">": operator.gt}
_CONSTRAINT = re.compile(r"^\s*([a-z_]+)\s*(<=|<|>=|>)\s*([-+0-9.eE]+)\s*$")


def direction(metric: str) -> str:
    """``maximize`` for ``val_acc``, ``minimize`` for a cost."""
    return "maximize" if metric == "val_acc" else "minimize"


@dataclass(frozen=True)
class Constraint:
    """``metric op limit``; ``fits`` is ``fits >= 1`` (the candidate fits the target's flash and RAM)."""

    metric: str
    op: str
    limit: float

    def holds(self, metrics: dict[str, float]) -> bool:
        return _OPS[self.op](float(metrics[self.metric]), self.limit)

    def __str__(self) -> str:
        return "fits" if self.metric == "fits" else f"{self.metric} {self.op} {self.limit:g}"


def parse_constraint(text: str, key: str) -> Constraint:
    """The constraint ``text`` (``fits`` or ``<cost> <=|<|>=|> <number>``); ``ConfigError(key, ...)`` if not."""
    allowed = f"'fits' or '<cost> <= <number>' with a cost among {', '.join(COSTS)}"
    if text == "fits":
        return Constraint("fits", ">=", 1.0)
    m = _CONSTRAINT.match(text) if isinstance(text, str) else None
    if m is None:
        raise ConfigError(key, f"must be {allowed}, got {text!r}")
    metric, op, number = m.groups()
    if metric not in COSTS:
        hint = " (accuracy is known only after training; make it an objective)" if metric == "val_acc" else ""
        raise ConfigError(key, f"constrains {metric!r}, which is not a hardware cost{hint}; allowed: {allowed}")
    try:
        limit = float(number)
    except ValueError:
        raise ConfigError(key, f"must be {allowed}, got {text!r}") from None
    if not math.isfinite(limit):
        raise ConfigError(key, f"must have a finite limit, got {text!r}")
    return Constraint(metric, op, limit)


def mnas_reward(acc: float, cost: float, target: float, w: float) -> float:
    """MnasNet's reward ``acc · (cost / target)^w`` (``cost`` > 0; a cost of 0 counts as tiny)."""
    return acc * (max(cost, 1e-12) / target) ** w


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated points (every coordinate minimised), in input order; of equal
    points the first is kept."""
    front = []
    for i, p in enumerate(points):
        dominated = False
        for j, q in enumerate(points):
            if j == i:
                continue
            no_worse = all(a <= b for a, b in zip(q, p))
            if no_worse and (any(a < b for a, b in zip(q, p)) or j < i):
                dominated = True
                break
        if not dominated:
            front.append(i)
    return front


def knee(points: Sequence[Sequence[float]]) -> int:
    """Index of the knee of a front (minimised coordinates): the point nearest the ideal point after
    scaling every coordinate to [0, 1] over the front."""
    dims = range(len(points[0]))
    lo = [min(p[d] for p in points) for d in dims]
    hi = [max(p[d] for p in points) for d in dims]
    def distance(p: Sequence[float]) -> float:
        return math.hypot(*((p[d] - lo[d]) / (hi[d] - lo[d]) if hi[d] > lo[d] else 0.0 for d in dims))
    return min(range(len(points)), key=lambda i: distance(points[i]))


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume dominated by ``points`` (minimised) and bounded by ``reference`` (exact, by
    slicing the first coordinate; points not better than the reference in every coordinate add nothing)."""
    pts = [tuple(p) for p in points if all(a < r for a, r in zip(p, reference))]
    if not pts:
        return 0.0
    if len(reference) == 1:
        return reference[0] - min(p[0] for p in pts)
    pts.sort()
    volume = 0.0
    for i, p in enumerate(pts):
        upper = pts[i + 1][0] if i + 1 < len(pts) else reference[0]
        if upper > p[0]:
            volume += (upper - p[0]) * hypervolume([q[1:] for q in pts[:i + 1]], reference[1:])
    return volume
