"""The operating curve of an adaptive system and the pick of an operating point (plain numpy).

Inputs are per-path arrays over samples — confidences ``conf [P, N]``, predictions ``pred [P, N]``
— the labels ``y [N]``, and per-path costs: ``path_costs[k]`` is what path ``k`` adds (big/little:
part ``k``; early exit: segment ``k`` and its head), ``reference`` the biggest path run alone.

With one threshold θ for every decision, a sample is served by the first path whose confidence is
above θ (the last path serves the rest). For shares ``s_k`` of samples served by path ``k``::

    expected cost = Σ_k s_k · Σ_{j ≤ k} path_costs[j]      (a sample served by k ran paths 0..k)
    ratio         = expected cost / reference

Rules (``choose``): ``{"min_cost_at_drop": d}`` — the cheapest point (by ``objective``) whose
accuracy is within ``d`` points of the reference accuracy (the biggest path alone); ``{"max_acc_under":
{"energy_uj": X}}`` (or ``latency_ms``) — the most accurate point whose expected cost is ≤ X.
Ties go to the cheaper point, then to the more accurate one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

COSTS = ("energy_uj", "latency_ms")


@dataclass(frozen=True)
class Point:
    """One operating point: threshold, accuracy (%), share served per path, expected costs and ratios."""

    theta: float
    acc: float
    shares: tuple[float, ...]
    expected: Mapping[str, float] = field(default_factory=dict)   # energy_uj, latency_ms
    ratio: Mapping[str, float] = field(default_factory=dict)      # energy_uj, latency_ms

    def row(self, names: Sequence[str], prefix: str = "") -> dict[str, float]:
        """A flat CSV row: ``theta``, ``acc``, ``share_<name>``, ``expected_<cost>``, ``<cost>_ratio``."""
        out = {"theta": self.theta, f"{prefix}acc": self.acc}
        out.update({f"{prefix}share_{n}": s for n, s in zip(names, self.shares)})
        out.update({f"{prefix}expected_{k}": v for k, v in self.expected.items()})
        out.update({f"{prefix}{k.split('_')[0]}_ratio": v for k, v in self.ratio.items()})
        return out


def served_path(conf: np.ndarray, theta: float) -> np.ndarray:
    """The index of the path serving each sample at threshold ``theta`` (``conf [P, N]``)."""
    stop = conf[:-1] > theta
    stop = np.vstack([stop, np.ones((1, conf.shape[1]), dtype=bool)])
    return stop.argmax(axis=0)


def expected_cost(shares: Sequence[float], path_costs: Sequence[float]) -> float:
    """Σ_k shares[k] · Σ_{j ≤ k} path_costs[j]."""
    return float(sum(s * c for s, c in zip(shares, np.cumsum(path_costs))))


def evaluate_point(theta: float, conf: np.ndarray, pred: np.ndarray, y: np.ndarray,
                   path_costs: Mapping[str, Sequence[float]], reference: Mapping[str, float]) -> Point:
    """The operating point at ``theta``: accuracy, shares and expected costs on these samples."""
    served = served_path(conf, theta)
    n = len(y)
    final = pred[served, np.arange(n)]
    shares = tuple(float(np.count_nonzero(served == k)) / n for k in range(conf.shape[0]))
    acc = 100.0 * float(np.count_nonzero(final == y)) / n
    expected = {k: expected_cost(shares, c) for k, c in path_costs.items()}
    ratio = {k: expected[k] / reference[k] for k in expected}
    return Point(float(theta), acc, shares, expected, ratio)


def thresholds(conf: np.ndarray, steps: int = 100) -> np.ndarray:
    """Candidate thresholds: ``steps + 1`` evenly spaced in [0, 1] plus the percentiles 0, 1, ..., 100
    of the first path's confidences (so the curve is dense where the samples are)."""
    grid = np.linspace(0.0, 1.0, steps + 1)
    quantiles = np.quantile(conf[0], np.linspace(0, 1, 101))
    return np.unique(np.clip(np.concatenate([grid, quantiles]), 0.0, 1.0))


def sweep(conf: np.ndarray, pred: np.ndarray, y: np.ndarray, path_costs: Mapping[str, Sequence[float]],
          reference: Mapping[str, float], candidates: Sequence[float]) -> list[Point]:
    """The operating curve: one ``Point`` per candidate threshold, in increasing θ."""
    return [evaluate_point(t, conf, pred, y, path_costs, reference) for t in sorted(candidates)]


@dataclass(frozen=True)
class Choice:
    """The chosen point, whether the rule was met, and a one-line account."""

    point: Point
    met: bool
    message: str


def choose(points: Sequence[Point], rule: Mapping[str, Any], reference_acc: float,
           objective: str = "energy_uj") -> Choice:
    """The operating point ``rule`` picks among ``points`` (see the module docstring). An
    unsatisfiable rule picks the best point it can reach — the most accurate one for
    ``min_cost_at_drop``, the cheapest for ``max_acc_under`` — with ``met = False``."""
    (name, value), = rule.items()
    if name == "min_cost_at_drop":
        floor = reference_acc - float(value)
        ok = [p for p in points if p.acc >= floor - 1e-9]
        if ok:
            best = min(ok, key=lambda p: (p.expected[objective], -p.acc))
            return Choice(best, True, f"min_cost_at_drop {value}: {objective} ratio {best.ratio[objective]:.3f} at "
                                      f"{best.acc:.2f} % (reference {reference_acc:.2f} %)")
        best = max(points, key=lambda p: (p.acc, -p.expected[objective]))
        return Choice(best, False, f"min_cost_at_drop {value}: no threshold keeps accuracy >= {floor:.2f} %; the best "
                                   f"reachable is {best.acc:.2f} % at θ={best.theta:.4f}")
    (cost, limit), = value.items()
    ok = [p for p in points if p.expected[cost] <= float(limit)]
    if ok:
        best = max(ok, key=lambda p: (p.acc, -p.expected[cost]))
        return Choice(best, True, f"max_acc_under {cost} <= {limit}: {best.acc:.2f} % at {best.expected[cost]:.4g}")
    best = min(points, key=lambda p: (p.expected[cost], -p.acc))
    return Choice(best, False, f"max_acc_under {cost} <= {limit}: unreachable; the cheapest point costs "
                               f"{best.expected[cost]:.4g} ({best.acc:.2f} % at θ={best.theta:.4f})")
