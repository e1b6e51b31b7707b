"""Neurosurgeon (Kang et al., ASPLOS 2017): split a model between a device and a server over a link.

For a model of ``L`` layers in execution order (``edgeflow.hardware.analyze``), split ``j`` in
``0..L`` runs layers ``0..j−1`` on the device and ``j..L−1`` on the server::

    sent_bytes(j)    = bytes of every tensor made before the cut and read after it (the model input
                       when j = 0); 0 when j = L (the device computes the answer itself)
    transfer_ms(j)   = rtt_ms + sent_bytes · 8 / bandwidth_kbps     (0 when nothing is sent)
    latency_ms(j)    = Σ_{i<j} device latencyᵢ + transfer_ms(j) + Σ_{i≥j} server latencyᵢ
    energy_uj(j)     = Σ_{i<j} device energyᵢ + sent_bytes · energy_per_byte_nj · 1e-3   (the device's)

Per-layer latencies and energies are each target's roofline estimates of the same layers; the
answer's way back (a few bytes) is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Link:
    """The network between device and server: bandwidth (kbit/s), round trip (ms), device energy per byte sent (nJ)."""

    bandwidth_kbps: float
    rtt_ms: float
    energy_per_byte_nj: float


def sent_bytes(cost: Any, j: int) -> int:
    """Bytes crossing a cut after layer ``j − 1`` of ``cost`` (a ``ModelCost``), per the module docstring."""
    layers = cost.layers
    if j >= len(layers):
        return 0
    after = layers[j:]
    crossing = {src for layer in after for src in layer.inputs if src < j}
    return sum(cost.input_bytes if src == -1 else layers[src].output_bytes for src in crossing)


def partition_table(cost: Any, device: Any, server: Any, link: Link) -> list[dict[str, Any]]:
    """One row per split ``j = 0..L`` (``split``, ``after``: the last device layer or ``input``,
    ``device_ms``, ``sent_bytes``, ``transfer_ms``, ``server_ms``, ``latency_ms``, ``device_energy_uj``,
    ``tx_energy_uj``, ``energy_uj``). ``device`` / ``server`` are ``HardwareModel``s."""
    dev = device.estimate(cost, warn=False).layers
    srv = server.estimate(cost, warn=False).layers
    rows = []
    for j in range(len(cost.layers) + 1):
        sent = sent_bytes(cost, j)
        transfer = link.rtt_ms + sent * 8 / link.bandwidth_kbps if sent else 0.0
        device_ms = sum(le.latency_ms for le in dev[:j])
        server_ms = sum(le.latency_ms for le in srv[j:])
        device_uj = sum(le.energy_uj for le in dev[:j])
        tx_uj = sent * link.energy_per_byte_nj * 1e-3
        rows.append({"split": j, "after": cost.layers[j - 1].name if j else "input", "device_ms": device_ms,
                     "sent_bytes": sent, "transfer_ms": transfer, "server_ms": server_ms,
                     "latency_ms": device_ms + transfer + server_ms, "device_energy_uj": device_uj,
                     "tx_energy_uj": tx_uj, "energy_uj": device_uj + tx_uj})
    return rows


def best_split(rows: list[dict[str, Any]], objective: str) -> dict[str, Any]:
    """The row minimising ``objective`` (``latency_ms`` or ``energy_uj``); ties go to the earlier split."""
    return min(rows, key=lambda r: (r[objective], r["split"]))
