"""Cost regularisers of a differentiable search: ``strength · cost`` and DUCCIO-style targets.

Costs are the soft totals a supernet reports (``soft_cost(hw)``: ``params``, ``macs``,
``flash_bytes``, ``latency_ms``, ``energy_uj`` on the configured target). Both terms are unitless:

- **strength · cost**: ``strength · cost / cost₀`` where ``cost₀`` is the seed model's cost (the
  supernet's cost before the search), so one strength means the same on any model and metric;
- **targets** (DUCCIO): ``Σ_m target_strength · max(0, cost_m / target_m − 1)``: a penalty only
  above each target, several at once; its strength ramps linearly from 0 to ``target_strength``
  over the first ``ramp_epochs`` search epochs (DUCCIO: the first half of the search).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor

from edgeflow.methods.dnas.spec import COSTS


@dataclass
class Regularizer:
    """``loss(costs, epoch)`` adds to the task loss; ``reference`` holds ``cost₀`` per metric."""

    cost: str | None = "params"
    strength: float = 0.0
    targets: Mapping[str, float] = field(default_factory=dict)
    target_strength: float = 1.0
    ramp_epochs: int = 0
    reference: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in [self.cost, *self.targets]:
            if key is not None and key not in COSTS:
                raise ValueError(f"unknown cost {key!r}; soft costs: {', '.join(COSTS)}")

    def ramp(self, epoch: int) -> float:
        """Share of ``target_strength`` applied at search epoch ``epoch`` (0-based)."""
        if self.ramp_epochs <= 0:
            return 1.0
        return min(1.0, (epoch + 1) / self.ramp_epochs)

    def loss(self, costs: Mapping[str, Tensor], epoch: int) -> Tensor:
        total = torch.zeros((), dtype=torch.float64)
        if self.cost is not None and self.strength > 0:
            total = total + self.strength * costs[self.cost] / self.reference[self.cost]
        ramp = self.ramp(epoch)
        for key, target in self.targets.items():
            total = total + ramp * self.target_strength * torch.relu(costs[key] / float(target) - 1.0)
        return total

    def metrics(self) -> set[str]:
        """The cost metrics this regulariser reads."""
        return ({self.cost} if self.cost else set()) | set(self.targets)
