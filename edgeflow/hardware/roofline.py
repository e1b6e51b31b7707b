"""The roofline cost of one layer on a target, for python numbers and torch tensors alike.

The one formula behind ``HardwareModel.estimate_layer`` (exact floats) and the differentiable costs
of ``edgeflow.hardware.differentiable`` (soft tensor inputs, gradients)::

    compute_cycles = work / mac_per_cycle[precision]                   # work = effective MACs + ops
    memory_cycles  = weight_bytes / bytes_per_cycle[weight_memory]
                   + activation_bytes / bytes_per_cycle[activation_memory]
    cycles         = max(compute_cycles, memory_cycles) + layer_overhead_cycles
    latency_ms     = cycles / clock_hz · 1e3
    bound          = "overhead" if layer_overhead_cycles > max(compute_cycles, memory_cycles)
                     else "compute" if compute_cycles >= memory_cycles else "memory"
    energy_uj      = work · energy_per_mac_pj[precision] · 1e-6
                   + (weight_bytes · energy_per_byte_pj[weight_memory]
                      + activation_bytes · energy_per_byte_pj[activation_memory]) · 1e-6

``max`` is Python's on numbers and ``torch.maximum`` (element-wise, differentiable) when either
side is a tensor; torch is imported only then, so this module stays torch-free. ``bound`` names the
largest of the three cycle terms (on numbers): a layer whose fixed per-layer overhead outweighs
both roofs is "overhead"-bound, not "memory"-bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any

from edgeflow.hardware.schema import HardwareConfig

BOUNDS = ("compute", "memory", "overhead")


@dataclass(frozen=True)
class Roofline:
    """One layer's cycles and energy; each field is a number or a tensor, like the inputs."""

    compute_cycles: Any
    memory_cycles: Any
    overhead_cycles: float
    cycles: Any
    latency_ms: Any
    compute_energy_uj: Any
    memory_energy_uj: Any

    @property
    def energy_uj(self) -> Any:
        return self.compute_energy_uj + self.memory_energy_uj

    @property
    def bound(self) -> str:
        """Which term limits the layer (numbers only): see ``bound_of``."""
        return bound_of(float(self.compute_cycles), float(self.memory_cycles), self.overhead_cycles)


def bound_of(compute_cycles: float, memory_cycles: float, overhead_cycles: float) -> str:
    """``"overhead"`` if the fixed per-layer overhead exceeds both roofs, else ``"compute"`` if the
    compute roof is at least the memory roof, else ``"memory"`` (one of ``BOUNDS``)."""
    if overhead_cycles > max(compute_cycles, memory_cycles):
        return "overhead"
    return "compute" if compute_cycles >= memory_cycles else "memory"


def maximum(a: Any, b: Any) -> Any:
    """``max(a, b)`` for real numbers, ``torch.maximum`` when either is a tensor."""
    if isinstance(a, Real) and isinstance(b, Real):
        return max(a, b)
    import torch

    return torch.maximum(torch.as_tensor(a), torch.as_tensor(b))


def roofline(cfg: HardwareConfig, precision: str, work: Any, weight_bytes: Any,
             activation_bytes: Any) -> Roofline:
    """Roofline of ``work`` operations at ``precision`` reading ``weight_bytes`` from the target's
    weight memory and ``activation_bytes`` (inputs + outputs) from its activation memory."""
    compute = work / cfg.mac_per_cycle[precision]
    memory = (weight_bytes / cfg.bytes_per_cycle[cfg.weight_memory]
              + activation_bytes / cfg.bytes_per_cycle[cfg.activation_memory])
    cycles = maximum(compute, memory) + cfg.layer_overhead_cycles
    return Roofline(
        compute_cycles=compute, memory_cycles=memory, overhead_cycles=float(cfg.layer_overhead_cycles), cycles=cycles,
        latency_ms=cycles / cfg.clock_hz * 1e3,
        compute_energy_uj=work * cfg.energy_per_mac_pj[precision] * 1e-6,
        memory_energy_uj=(weight_bytes * cfg.energy_per_byte_pj[cfg.weight_memory]
                          + activation_bytes * cfg.energy_per_byte_pj[cfg.activation_memory]) * 1e-6,
    )
