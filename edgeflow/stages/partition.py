"""Stage ``partition``: Neurosurgeon's split-point table of the model between the run's target (the
device) and a ``server`` target over a link (``edgeflow.methods.adaptive.partition``).

Every split between layers (0: everything on the server, L: everything on the device) gets the
device latency, the transfer (``rtt_ms`` + bytes · 8 / ``bandwidth_kbps``), the server latency, and
the device's energy (its layers + ``energy_per_byte_nj`` per byte sent); layers without quantizers
are costed at ``default_bits`` on both targets. Leaves the model unchanged.

Metrics: ``splits`` (L + 1), ``best_latency_split``, ``best_latency_ms``, ``best_energy_split``,
``best_energy_uj``, ``device_only_latency_ms``, ``device_only_energy_uj``, ``server_only_latency_ms``,
``latency_speedup`` (device only / best), ``energy_saving`` (1 − best / device only). Files:
``partition.csv`` (one row per split), ``partition.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeflow.core.errors import require, require_finite
from edgeflow.stages._schema import StageConfig
from edgeflow.stages._targets import check_targets

if TYPE_CHECKING:
    from edgeflow.state import StageContext, StageResult, State


@dataclass
class Config(StageConfig):
    """``server``: the target running the rest; the link's ``bandwidth_kbps`` (> 0), ``rtt_ms`` (≥ 0)
    and ``energy_per_byte_nj`` (≥ 0, the device's radio); ``default_bits`` of unquantized layers."""

    kind: str = "partition"
    server: str = "rpi4"
    bandwidth_kbps: float = 1000.0
    rtt_ms: float = 10.0
    energy_per_byte_nj: float = 100.0
    default_bits: int = 8
    plot: bool = True

    def __post_init__(self) -> None:
        require(isinstance(self.server, str), "server", "a target name", self.server)
        check_targets(self.server, "server")
        require_finite(self.bandwidth_kbps, "bandwidth_kbps", "a finite float > 0", self.bandwidth_kbps > 0)
        require_finite(self.rtt_ms, "rtt_ms", "a finite float >= 0", self.rtt_ms >= 0)
        require_finite(self.energy_per_byte_nj, "energy_per_byte_nj", "a finite float >= 0",
                       self.energy_per_byte_nj >= 0)
        require(self.default_bits in (1, 2, 4, 8, 16, 32), "default_bits", "one of 1, 2, 4, 8, 16, 32",
                self.default_bits)


def run(cfg: Config, state: State, ctx: StageContext) -> StageResult:
    from edgeflow.hardware import analyze
    from edgeflow.methods.adaptive.partition import Link, best_split, partition_table
    from edgeflow.stages._adaptive_report import plot_partition
    from edgeflow.stages._common import write_csv
    from edgeflow.state import StageResult

    cost = analyze(state.model, state.input_shape, default_bits=cfg.default_bits)
    device = ctx.hardware
    rows = partition_table(cost, device, ctx.target(cfg.server),
                           Link(cfg.bandwidth_kbps, cfg.rtt_ms, cfg.energy_per_byte_nj))
    fast, frugal = best_split(rows, "latency_ms"), best_split(rows, "energy_uj")
    local = rows[-1]
    metrics = {"splits": float(len(rows)), "best_latency_split": float(fast["split"]),
               "best_latency_ms": fast["latency_ms"], "best_energy_split": float(frugal["split"]),
               "best_energy_uj": frugal["energy_uj"], "device_only_latency_ms": local["latency_ms"],
               "device_only_energy_uj": local["energy_uj"], "server_only_latency_ms": rows[0]["latency_ms"],
               "latency_speedup": local["latency_ms"] / fast["latency_ms"],
               "energy_saving": 1 - frugal["energy_uj"] / local["energy_uj"] if local["energy_uj"] else 0.0}
    artifacts = {"partition_csv": write_csv(ctx.out_dir / "partition.csv", rows)}
    if cfg.plot:
        artifacts["partition_png"] = plot_partition(rows, fast, frugal, ctx.out_dir / "partition.png",
                                                    f"{device.name} -> {cfg.server}: {cfg.bandwidth_kbps:g} kbit/s, "
                                                    f"RTT {cfg.rtt_ms:g} ms, {cfg.energy_per_byte_nj:g} nJ/B")
    return StageResult(state=state, metrics=metrics, artifacts=artifacts)
