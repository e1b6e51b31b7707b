"""Choosing the architecture from a finished search (torch- and Optuna-free).

Works on complete trials: any objects with ``number`` and ``user_attrs`` holding the trial's
metrics (``val_acc`` and the costs) and its scalar ``reward`` (Optuna's ``FrozenTrial`` has both).
"""

from __future__ import annotations

from typing import Any, Sequence

from edgeflow.methods.nas.objectives import direction, hypervolume, knee, pareto_front

__all__ = ["minimised", "front_of", "choose", "normalized_hypervolume"]


def minimised(trial: Any, objectives: Sequence[str]) -> list[float]:
    """The trial's objectives, each as a value to minimise (accuracy negated)."""
    return [-trial.user_attrs[m] if direction(m) == "maximize" else trial.user_attrs[m] for m in objectives]


def front_of(trials: Sequence[Any], objectives: Sequence[str]) -> list[Any]:
    """The non-dominated trials over ``objectives``."""
    return [trials[i] for i in pareto_front([minimised(t, objectives) for t in trials])]


def choose(trials: Sequence[Any], objectives: Sequence[str], select: Any, scalarized: bool) -> Any:
    """The chosen trial: ``{"max_acc_under": {cost: limit}}`` = the most accurate within every
    limit (``ValueError`` when none is); with one objective (or ``scalarized``) the highest reward;
    else ``best`` = the front's best in the first objective, ``knee`` = the front's knee."""
    if isinstance(select, dict):
        limits = select["max_acc_under"]
        within = [t for t in trials if all(t.user_attrs[c] <= limit for c, limit in limits.items())]
        if not within:
            shown = ", ".join(f"{c} <= {limit:g}" for c, limit in limits.items())
            raise ValueError(f"select: no complete candidate has {shown}")
        return max(within, key=lambda t: t.user_attrs["val_acc"])
    if scalarized or len(objectives) == 1:
        return max(trials, key=lambda t: t.user_attrs["reward"])
    front = front_of(trials, objectives)
    points = [minimised(t, objectives) for t in front]
    if select == "best":
        return front[min(range(len(front)), key=lambda i: points[i][0])]
    return front[knee(points)]


def normalized_hypervolume(trials: Sequence[Any], objectives: Sequence[str],
                           scale: dict[str, float] | None = None) -> float:
    """Hypervolume of the trials' front: ``val_acc`` as the error fraction ``1 − acc/100`` with
    reference 1, each cost divided by ``scale[cost]`` (default: its largest value among ``trials``)
    with reference 1.1. Pass the same ``scale`` to compare searches."""
    scale = dict(scale or {})
    for m in objectives:
        if m != "val_acc" and m not in scale:
            scale[m] = max(t.user_attrs[m] for t in trials) or 1.0
    points = [[1 - t.user_attrs[m] / 100 if m == "val_acc" else t.user_attrs[m] / scale[m] for m in objectives]
              for t in trials]
    reference = [1.0 if m == "val_acc" else 1.1 for m in objectives]
    return hypervolume(points, reference)
