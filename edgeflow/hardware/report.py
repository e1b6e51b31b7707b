"""Per-layer CSV and charts: of a ``ModelCost`` + ``Estimate`` (analyze) and of a runtime profile (matplotlib, Agg).

Both layer charts (``layers.png``, ``profile_layers.png``) have one style: one horizontal bar per
layer, labelled with its module name, latency bars coloured by ``bound`` (``BOUND_COLORS``: the
roofline term that limits the layer), energy bars beside them, the totals (target, latency, energy,
MACs, flash, peak RAM) in the title.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgeflow.hardware.graph import ModelCost
    from edgeflow.hardware.model import Estimate

CSV_COLUMNS = (
    "name", "kind", "input_shapes", "output_shape", "macs", "ops", "weights", "biases", "weight_bits", "act_bits",
    "sparsity", "storage_format", "flash_bytes", "input_bytes", "output_bytes", "live_bytes", "precision",
    "compute_cycles", "memory_cycles", "overhead_cycles", "bound", "latency_ms", "energy_uj", "fused", "attrs",
)
BOUND_COLORS = {"compute": "tab:blue", "memory": "tab:orange", "overhead": "tab:gray"}
ENERGY_COLOR = "tab:green"


def layer_rows(cost: ModelCost, est: Estimate) -> list[dict]:
    """One dict per layer joining the analysis and the estimate (``CSV_COLUMNS`` keys)."""
    rows = []
    for lc, le in zip(cost.layers, est.layers):
        r = lc.row()
        r.update(storage_format=le.storage_format, flash_bytes=le.flash_bytes, precision=le.precision,
                 compute_cycles=round(le.compute_cycles, 1), memory_cycles=round(le.memory_cycles, 1),
                 overhead_cycles=le.overhead_cycles, bound=le.bound, latency_ms=le.latency_ms, energy_uj=le.energy_uj,
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


def totals_title(target: str | None, latency_ms: float | None, energy_uj: float | None, macs: int,
                 flash_bytes: int, peak_ram_bytes: int) -> str:
    """The title line of both layer charts: target, latency, energy, MACs, flash and peak RAM."""
    head = f"{target}: {latency_ms:,.4g} ms, {energy_uj:,.4g} uJ, " if latency_ms is not None else ""
    return f"{head}{macs:,} MACs, flash {flash_bytes:,} B, peak RAM {peak_ram_bytes:,} B"


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _layer_chart(names: list[str], latency: list[float], energy: list[float], bounds: list[str], title: str,
                 path: Path) -> Path:
    """Latency bars coloured by bound (legend: the bounds present) beside energy bars, one row per layer."""
    from matplotlib.patches import Patch

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, max(3.0, 0.22 * len(names) + 1.4)), sharey=True)
    y = list(range(len(names)))
    axes[0].barh(y, latency, color=[BOUND_COLORS[b] for b in bounds])
    axes[0].set_xlabel("latency [ms]")
    axes[0].legend(handles=[Patch(color=c, label=f"{b}-bound") for b, c in BOUND_COLORS.items() if b in bounds],
                   fontsize=7, loc="lower right")
    axes[1].barh(y, energy, color=ENERGY_COLOR)
    axes[1].set_xlabel("energy [uJ]")
    axes[0].set_yticks(y)
    axes[0].set_yticklabels(names, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_layers(est: Estimate, path: Path, title: str = "") -> Path:
    """``layers.png`` of the analysis: per-layer latency (coloured by bound) and energy, totals in the title."""
    return _layer_chart([le.name for le in est.layers], [le.latency_ms for le in est.layers],
                        [le.energy_uj for le in est.layers], [le.bound for le in est.layers],
                        title or totals_title(est.target, est.latency_ms, est.energy_uj, est.macs, est.flash_bytes,
                                              est.peak_ram_bytes), path)


def markdown_table(results: dict[tuple[str, str], Estimate]) -> str:
    """Markdown table of ``{(target, model): Estimate}``."""
    lines = ["| target | model | latency (ms) | energy (uJ) | flash (B) | peak RAM (B) | fits |",
             "|---|---|---:|---:|---:|---:|---|"]
    for (target, model), e in results.items():
        lines.append(f"| {target} | {model} | {e.latency_ms:.3f} | {e.energy_uj:.1f} | {e.flash_bytes:,} | "
                     f"{e.peak_ram_bytes:,} | {'yes' if e.fits else 'no'} |")
    return "\n".join(lines)


def module_name(node_name: str) -> str:
    """The module path behind a runtime node name, for labels.

    ``edgeflow.export.qdq`` names an ONNX node ``<OnnxOp>:<its output>``: a layer's output is
    ``<module>.out``, a quantizer's ``<module>_q``, other ops' their module or fx node name (a
    functional ``a + b`` is ``add``, ``add_1``, ...). So ``Conv:features.0.0.out`` → ``features.0.0``,
    ``MaxPool:features.1`` → ``features.1``, ``QuantizeLinear:input_quant_q`` → ``input_quant``.
    Names without an ``<OnnxOp>:`` prefix (other exporters, nodes the runtime adds such as
    ``logits/dequantize``) are returned unchanged.
    """
    op, sep, rest = node_name.partition(":")
    if not sep or not op.isidentifier() or not rest:
        return node_name
    for suffix in (".out", "_q"):
        if rest.endswith(suffix):
            return rest[: -len(suffix)]
    return rest


def profile_bars(prof: Any) -> list[Any]:
    """The layers ``profile_layers.png`` draws: every node of the profile but views (reshapes: no work)."""
    return [lp for lp in prof.layers if lp.kind != "reshape"]


def arena_series(prof: Any) -> tuple[list[str], list[int], list[int]]:
    """Per step of the schedule: the op's label (``module_name (kind)``), the bytes of the arena
    buffers live at that step, and the arena's high-water mark so far (the running maximum of the
    highest live buffer end, 16-byte aligned), which ends at ``prof.peak_ram_bytes``."""
    usage = prof.plan.usage()
    labels = [f"{module_name(lp.name)} ({lp.kind})" for lp in prof.layers[: len(usage)]]
    return labels, [u[0] for u in usage], list(itertools.accumulate((u[1] for u in usage), max))


def plot_profile(prof: Any, out_dir: Path) -> dict[str, Path]:
    """Charts of a runtime profile (``edgeflow.runtime.profiler``).

    ``profile_layers.png``: the chart of ``layers.png`` (latency coloured by bound, energy, totals in
    the title) over ``profile_bars``, labelled by ``module_name``; without a target, MACs and ops bars.
    ``profile_arena.png``: ``arena_series`` — live bytes and the never-decreasing high-water line per
    op, and the arena size. Returns ``{"profile_layers_png": path, "profile_arena_png": path}``.
    """
    out_dir = Path(out_dir)
    layers = profile_bars(prof)
    names = [module_name(lp.name) for lp in layers]
    title = totals_title(prof.hardware, prof.latency_ms, prof.energy_uj, prof.macs, prof.flash_bytes,
                         prof.peak_ram_bytes)
    plt = _pyplot()
    if prof.latency_ms is not None:
        layers_png = _layer_chart(names, [lp.latency_ms for lp in layers], [lp.energy_uj for lp in layers],
                                  [lp.bound for lp in layers], title, out_dir / "profile_layers.png")
    else:
        fig, axes = plt.subplots(1, 2, figsize=(11, max(3.0, 0.22 * len(names) + 1.4)), sharey=True)
        y = list(range(len(names)))
        axes[0].barh(y, [lp.macs for lp in layers], color=BOUND_COLORS["compute"])
        axes[0].set_xlabel("MACs")
        axes[1].barh(y, [lp.ops for lp in layers], color=BOUND_COLORS["overhead"])
        axes[1].set_xlabel("ops (pool taps, adds, activations)")
        axes[0].set_yticks(y)
        axes[0].set_yticklabels(names, fontsize=7)
        axes[0].invert_yaxis()
        fig.suptitle(title, fontsize=10)
        layers_png = _save(fig, out_dir / "profile_layers.png")

    labels, live, high = arena_series(prof)
    x = list(range(len(labels)))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.3 * len(labels) + 2.0), 4.5))
    ax.bar(x, live, color=BOUND_COLORS["compute"], alpha=0.6, label="live tensors")
    ax.step(x, high, where="mid", color="tab:red", label="arena high-water (highest byte used so far)")
    ax.axhline(prof.peak_ram_bytes, color="k", ls="--", lw=0.8, label=f"arena {prof.peak_ram_bytes:,} B")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylabel("bytes")
    ax.yaxis.set_major_formatter("{x:,.0f}")
    ax.set_title(f"arena over the schedule: peak RAM {prof.peak_ram_bytes:,} B", fontsize=10)
    ax.legend(fontsize=8)
    return {"profile_layers_png": layers_png, "profile_arena_png": _save(fig, out_dir / "profile_arena.png")}
