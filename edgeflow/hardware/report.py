"""Per-layer CSV and charts: of a ``ModelCost`` + ``Estimate`` (analyze) and of a runtime profile (matplotlib, Agg)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgeflow.hardware.graph import ModelCost
    from edgeflow.hardware.model import Estimate

CSV_COLUMNS = (
    "name", "kind", "input_shapes", "output_shape", "macs", "ops", "weights", "biases", "weight_bits", "act_bits",
    "sparsity", "storage_format", "flash_bytes", "input_bytes", "output_bytes", "live_bytes", "precision",
    "compute_cycles", "memory_cycles", "bound", "latency_ms", "energy_uj", "fused", "attrs",
)


def layer_rows(cost: ModelCost, est: Estimate) -> list[dict]:
    """One dict per layer joining the analysis and the estimate (``CSV_COLUMNS`` keys)."""
    rows = []
    for lc, le in zip(cost.layers, est.layers):
        r = lc.row()
        r.update(storage_format=le.storage_format, flash_bytes=le.flash_bytes, precision=le.precision,
                 compute_cycles=round(le.compute_cycles, 1), memory_cycles=round(le.memory_cycles, 1),
                 bound=le.bound, latency_ms=le.latency_ms, energy_uj=le.energy_uj,
                 sparsity=round(lc.sparsity, 6))
        rows.append({k: r.get(k, "") for k in CSV_COLUMNS})
    return rows


def write_csv(cost: ModelCost, est: Estimate, path: Path) -> Path:
    """Write the per-layer table to ``path`` (CSV with a header row)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        w.writeheader()
        w.writerows(layer_rows(cost, est))
    return path


def plot_layers(est: Estimate, path: Path, title: str = "") -> Path:
    """Horizontal bar chart of per-layer latency (ms) and energy (uJ), PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [le.name for le in est.layers]
    height = max(3.0, 0.22 * len(names) + 1.2)
    fig, axes = plt.subplots(1, 2, figsize=(11, height), sharey=True)
    y = list(range(len(names)))
    colors = ["tab:blue" if le.bound == "compute" else "tab:orange" for le in est.layers]
    axes[0].barh(y, [le.latency_ms for le in est.layers], color=colors)
    axes[0].set_xlabel("latency [ms] (blue: compute-bound, orange: memory-bound)")
    axes[1].barh(y, [le.energy_uj for le in est.layers], color="tab:green")
    axes[1].set_xlabel("energy [uJ]")
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(names, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(title or f"{est.target}: {est.latency_ms:.3g} ms, {est.energy_uj:.3g} uJ, "
                 f"flash {est.flash_bytes:,} B, RAM {est.peak_ram_bytes:,} B")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown_table(results: dict[tuple[str, str], Estimate]) -> str:
    """Markdown table of ``{(target, model): Estimate}``."""
    lines = ["| target | model | latency (ms) | energy (uJ) | flash (B) | peak RAM (B) | fits |",
             "|---|---|---:|---:|---:|---:|---|"]
    for (target, model), e in results.items():
        lines.append(f"| {target} | {model} | {e.latency_ms:.3f} | {e.energy_uj:.1f} | {e.flash_bytes:,} | "
                     f"{e.peak_ram_bytes:,} | {'yes' if e.fits else 'no'} |")
    return "\n".join(lines)


def plot_profile(prof: Any, out_dir: Path) -> dict[str, Path]:
    """Charts of a runtime profile (``edgeflow.runtime.profiler``): per-layer latency and energy bars
    (MACs without a target) in ``profile_layers.png``, arena usage over the schedule in
    ``profile_arena.png``. Returns ``{"profile_layers_png": path, "profile_arena_png": path}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    layers = [lp for lp in prof.layers if lp.kind not in ("reshape",)]
    names = [f"{lp.index}:{lp.kind}" for lp in layers]
    fig, axes = plt.subplots(2 if prof.latency_ms is not None else 1, 1, figsize=(max(6, 0.35 * len(layers)), 6),
                             squeeze=False)
    if prof.latency_ms is not None:
        axes[0, 0].bar(names, [lp.latency_ms for lp in layers], color="tab:blue")
        axes[0, 0].set_ylabel("latency [ms]")
        axes[0, 0].set_title(f"per-layer latency and energy on {prof.hardware}")
        axes[1, 0].bar(names, [lp.energy_uj for lp in layers], color="tab:orange")
        axes[1, 0].set_ylabel("energy [uJ]")
    else:
        axes[0, 0].bar(names, [lp.macs for lp in layers], color="tab:blue")
        axes[0, 0].set_ylabel("MACs")
    for ax in axes[:, 0]:
        ax.tick_params(axis="x", rotation=90, labelsize=7)
    fig.tight_layout()
    p = out_dir / "profile_layers.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out["profile_layers_png"] = p

    usage = prof.plan.usage()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.step(range(len(usage)), [u[0] for u in usage], where="mid", label="live tensors")
    ax.step(range(len(usage)), [u[1] for u in usage], where="mid", label="arena high-water")
    ax.axhline(prof.peak_ram_bytes, color="k", ls="--", lw=0.8, label=f"arena {prof.peak_ram_bytes:,} B")
    ax.set_xlabel("op (schedule step)")
    ax.set_ylabel("bytes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out_dir / "profile_arena.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    out["profile_arena_png"] = p
    return out
