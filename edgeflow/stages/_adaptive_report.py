"""Outputs and charts of the ``adaptive`` and ``partition`` stages (not a stage kind: the leading
underscore keeps it out of discovery). Imports torch / matplotlib inside the functions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    import numpy as np


def path_outputs(system: Any, loader: Iterable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every path of ``system`` on every sample of ``loader``: confidences ``[P, N]``, predictions
    ``[P, N]`` and labels ``[N]`` (eval mode, no gradients)."""
    import numpy as np
    import torch

    from edgeflow.methods.adaptive import confidence

    was = system.training
    system.eval()
    conf, pred, labels = [], [], []
    with torch.no_grad():
        for x, y in loader:
            logits = system.path_logits(x)
            conf.append(torch.stack([confidence(lg, system.measure) for lg in logits]).numpy())
            pred.append(torch.stack([lg.argmax(1) for lg in logits]).numpy())
            labels.append(y.numpy())
    system.train(was)
    return np.concatenate(conf, axis=1), np.concatenate(pred, axis=1), np.concatenate(labels)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_curve(val: Sequence[Any], test: Sequence[Any], chosen: Any, chosen_test: Any, names: Sequence[str],
               reference: Mapping[str, float], objective: str, path: Path, title: str) -> Path:
    """``curve.png``: accuracy against expected cost (validation and test, the chosen point, the
    biggest path alone) and the share served by each path against θ."""
    plt = _pyplot()
    unit = "µJ" if objective == "energy_uj" else "ms"
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for curve, label, style in ((val, "validation", "-"), (test, "test", "--")):
        left.plot([p.expected[objective] for p in curve], [p.acc for p in curve], style, label=label)
    left.plot([chosen.expected[objective]], [chosen.acc], "o", color="C3", label=f"chosen θ={chosen.theta:.3f} (val)")
    left.plot([chosen_test.expected[objective]], [chosen_test.acc], "s", color="C3", mfc="none", label="chosen (test)")
    left.axvline(reference[objective], color="grey", lw=0.8, ls=":", label="biggest path alone")
    left.set_xlabel(f"expected {objective.split('_')[0]} per inference / {unit}")
    left.set_ylabel("accuracy / %")
    left.legend(fontsize=8)
    thetas = [p.theta for p in val]
    for k, name in enumerate(names):
        right.plot(thetas, [100 * p.shares[k] for p in val], label=f"served by {name}")
    right.axvline(chosen.theta, color="C3", lw=0.8)
    right.set_xlabel("threshold θ")
    right.set_ylabel("share of validation samples / %")
    right.legend(fontsize=8)
    return _save(plt, fig, title, path)


def plot_partition(rows: Sequence[Mapping[str, Any]], fast: Mapping[str, Any], frugal: Mapping[str, Any],
                   path: Path, title: str) -> Path:
    """``partition.png``: stacked device / transfer / server latency per split, and the device's energy."""
    plt = _pyplot()
    labels = [str(r["after"]) for r in rows]
    x = range(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    bottom = [0.0] * len(rows)
    for key, label in (("device_ms", "device"), ("transfer_ms", "transfer"), ("server_ms", "server")):
        values = [r[key] for r in rows]
        left.bar(x, values, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    left.axvline(fast["split"], color="C3", lw=0.8, ls="--", label=f"fastest: after {fast['after']}")
    left.set_ylabel("latency / ms")
    right.bar(x, [r["device_energy_uj"] for r in rows], label="device compute")
    right.bar(x, [r["tx_energy_uj"] for r in rows], bottom=[r["device_energy_uj"] for r in rows], label="transmit")
    right.axvline(frugal["split"], color="C3", lw=0.8, ls="--", label=f"least energy: after {frugal['after']}")
    right.set_ylabel("device energy / µJ")
    for ax in (left, right):
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        ax.set_xlabel("last layer on the device")
        ax.legend(fontsize=8)
    return _save(plt, fig, title, path)


def _save(plt: Any, fig: Any, title: str, path: Path) -> Path:
    """Title, lay out, write ``fig`` to ``path`` (PNG) and close it; returns ``path``."""
    fig.suptitle(title, fontsize=9)
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
