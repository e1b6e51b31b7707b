"""The search's charts (matplotlib, Agg): the Pareto front and the optimisation history."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

__all__ = ["plot_front", "plot_history"]


def _pyplot():  # noqa: ANN202 - the pyplot module
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_front(rows: Sequence[dict], y: str, costs: Sequence[str], front: set[int], chosen: int | None,
               path: Path) -> Path:
    """One panel per cost: ``y`` (accuracy) against the cost for every complete trial (``rows`` hold
    ``number`` and the metrics), the front's trials highlighted and joined, the chosen one starred."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(costs), figsize=(5.2 * len(costs), 4.2), squeeze=False)
    for ax, cost in zip(axes[0], costs):
        ax.scatter([r[cost] for r in rows], [r[y] for r in rows], s=18, c="0.6", label="trials")
        on = sorted((r for r in rows if r["number"] in front), key=lambda r: r[cost])
        ax.plot([r[cost] for r in on], [r[y] for r in on], "o-", c="tab:red", ms=5, label="Pareto front")
        for r in rows:
            if r["number"] == chosen:
                ax.scatter([r[cost]], [r[y]], marker="*", s=220, c="gold", edgecolors="k", zorder=5,
                           label=f"chosen (trial {chosen})")
        ax.set_xlabel(cost)
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_history(numbers: Sequence[int], series: dict[str, tuple[Sequence[float], bool]], path: Path) -> Path:
    """One panel per objective: its value per complete trial and the best so far (``series`` maps
    a name to (values, maximise))."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(series), figsize=(5.2 * len(series), 3.8), squeeze=False)
    for ax, (name, (values, maximise)) in zip(axes[0], series.items()):
        best, running = [], None
        for v in values:
            running = v if running is None else (max(running, v) if maximise else min(running, v))
            best.append(running)
        ax.scatter(numbers, values, s=14, c="0.5", label="trial")
        ax.step(numbers, best, where="post", c="tab:blue", label="best so far")
        ax.set_xlabel("trial")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
