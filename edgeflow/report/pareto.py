"""Objectives and the Pareto front: which runs no other run beats on every objective. torch- and MLflow-free."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Objective", "parse_objective", "pareto_front", "QUANTITIES", "STAGE_PREFERENCE", "pick_metric"]

#: what the report compares by default: accuracy against the costs of the deployed model
QUANTITIES = ("test_acc", "latency_ms", "energy_uj", "flash_bytes", "peak_ram_bytes")
#: when several stages report a quantity, the one closest to the deployed model wins
STAGE_PREFERENCE = ("profile", "analyze_int8", "qat", "ptq", "cluster", "prune", "evaluate", "analyze")


@dataclass(frozen=True)
class Objective:
    """A metric (``<stage>/<metric>``) and whether more (``max``) or less (``min``) is better."""

    metric: str
    direction: str = "max"

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a > b if self.direction == "max" else a < b


def parse_objective(text: str) -> Objective:
    """``profile/latency_ms:min`` → ``Objective``; raises ``ValueError`` (one line) if malformed."""
    metric, _, direction = text.partition(":")
    stage, _, name = metric.partition("/")
    if not (stage and name) or (direction or "max") not in ("max", "min"):
        raise ValueError(f"objective {text!r}: must be '<stage>/<metric>:max|min'")
    return Objective(metric, direction or "max")


def pick_metric(quantity: str, available: set[str]) -> str | None:
    """The ``<stage>/<quantity>`` metric to show among ``available``: by ``STAGE_PREFERENCE``, then
    the alphabetically last stage."""
    found = sorted(k for k in available if k.endswith(f"/{quantity}") and k.count("/") == 1)
    for stage in STAGE_PREFERENCE:
        if f"{stage}/{quantity}" in found:
            return f"{stage}/{quantity}"
    return found[-1] if found else None


def pareto_front(points: Sequence[Sequence[float]], objectives: Sequence[Objective]) -> list[int]:
    """Indices of the points no other point dominates (at least as good on every objective and
    strictly better on one), in input order. Points with a NaN are never on the front."""
    def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
        no_worse = all(not o.better(y, x) for o, x, y in zip(objectives, a, b))
        return no_worse and any(o.better(x, y) for o, x, y in zip(objectives, a, b))

    valid = [i for i, p in enumerate(points) if all(v == v for v in p)]
    return [i for i in valid if not any(dominates(points[j], points[i]) for j in valid if j != i)]
