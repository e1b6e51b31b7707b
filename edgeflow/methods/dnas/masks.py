"""Trainable binary masks of PIT (Risso et al., IEEE TC 2023), binarised with a straight-through estimator.

Every mask is a 0/1 tensor in the forward pass and passes its gradient straight through to the
real-valued parameters behind it, so the task loss and a cost regulariser both train them:

- :class:`ChannelMask`: one parameter per output channel, ``keep_c = |θ_c| ≥ 0.5``; the
  ``min_channels`` channels with the largest ``|θ|`` (at least one) are always kept (a layer never
  vanishes, nor becomes a one-channel bottleneck when ``min_channels`` > 1). PIT starts ``θ_c`` at
  ``1 + importance_c / max importance`` (L1 norm of the channel's filters), so a cost regulariser,
  which pushes every channel of a group alike, removes the least important channels first instead
  of the whole group in one step.
- :class:`TapMask`: the kernel taps of a "same"-padded, stride-1 Conv1d with an odd kernel of
  ``K = 2R + 1`` taps at offsets ``o = -R..R`` (times the layer's dilation). Receptive field: one
  parameter ``β_r`` per radius ``r = 1..R``, radius ``r`` kept while ``Σ_{j ≥ r} |β_j| ≥ 0.5`` (the
  cumulative sum keeps the kept radii contiguous). Dilation: one parameter ``γ_j`` per level
  ``j = 1..L`` (``2^j ≤ R``), ``z_j = Σ_{i ≤ j} |γ_i| ≥ 0.5``; an offset whose largest power-of-two
  divisor is ``2^(j-1)`` needs ``z_j``. The kept offsets are then always the multiples of ``2^j0``
  within a radius ``r*``: a plain conv of ``2·⌊r*/2^j0⌋ + 1`` taps at dilation ``d·2^j0``
  (:meth:`TapMask.export_taps`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

THRESHOLD = 0.5


def binarize(theta: Tensor) -> Tensor:
    """``1`` where ``theta ≥ 0.5`` else ``0`` in the forward pass; identity gradient (STE)."""
    hard = (theta >= THRESHOLD).to(theta.dtype)
    return theta + (hard - theta).detach()


class ChannelMask(nn.Module):
    """A binary keep-mask over ``channels`` output channels (see the module docstring)."""

    def __init__(self, channels: int, init: Tensor | float = 1.0, min_channels: int = 1) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.as_tensor(init, dtype=torch.float32).expand(channels).clone())
        self.min_channels = max(1, min(int(min_channels), channels))

    def forward(self) -> Tensor:
        a = self.theta.abs()
        mask = binarize(a)
        alive = torch.zeros_like(a)
        alive[torch.topk(a.detach(), self.min_channels).indices] = 1.0
        return torch.maximum(mask, alive)  # the gradient of the kept-alive channel still flows (max picks mask)

    def kept(self) -> Tensor:
        """Indices of the kept channels (sorted)."""
        with torch.no_grad():
            return torch.nonzero(self() > 0).flatten()


def two_adic(o: int) -> int:
    """The exponent of the largest power of two dividing ``o`` (``o != 0``)."""
    v = 0
    while o % 2 == 0:
        o //= 2
        v += 1
    return v


class TapMask(nn.Module):
    """Receptive-field and dilation mask over the ``kernel`` taps (odd) of a Conv1d (module docstring).

    ``search_rf`` / ``search_dilation`` switch each part on; a part switched off keeps every tap.
    """

    def __init__(self, kernel: int, search_rf: bool = True, search_dilation: bool = True) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"TapMask needs an odd kernel size, got {kernel}")
        self.kernel = kernel
        self.radius = (kernel - 1) // 2
        levels = 0
        while 2 ** (levels + 1) <= self.radius:
            levels += 1
        self.levels = levels
        self.beta = nn.Parameter(torch.ones(self.radius)) if search_rf and self.radius else None
        self.gamma = nn.Parameter(torch.ones(levels)) if search_dilation and levels else None

    def _radius_keep(self) -> Tensor | None:
        if self.beta is None:
            return None
        cum = torch.flip(torch.cumsum(torch.flip(self.beta.abs(), [0]), 0), [0])  # Σ_{j ≥ r} |β_j|
        return binarize(cum)

    def _level_keep(self) -> Tensor | None:
        if self.gamma is None:
            return None
        return binarize(torch.cumsum(self.gamma.abs(), 0))

    def forward(self) -> Tensor:
        """The 0/1 mask over the ``kernel`` taps (index ``t`` = offset ``t - R``)."""
        radius, levels = self._radius_keep(), self._level_keep()
        ref = self.beta if self.beta is not None else self.gamma
        one = torch.ones((), dtype=ref.dtype if ref is not None else torch.float32,
                         device=ref.device if ref is not None else None)
        taps = []
        for t in range(self.kernel):
            o = t - self.radius
            m = one
            if o != 0:
                if radius is not None:
                    m = m * radius[abs(o) - 1]
                v = two_adic(abs(o))
                if levels is not None and v < self.levels:
                    m = m * levels[v]
            taps.append(m)
        return torch.stack(taps)

    def export_taps(self) -> tuple[list[int], int]:
        """``(kept tap indices, dilation factor)`` of the hard mask: the taps ``R + m·2^j0`` for
        ``|m·2^j0| ≤ r*`` and the factor ``2^j0`` (1 when only the centre tap is left)."""
        with torch.no_grad():
            keep = self().tolist()
        kept = [t for t, k in enumerate(keep) if k > 0]
        offsets = [t - self.radius for t in kept if t != self.radius]
        if not offsets:
            return kept, 1
        step = min(2 ** two_adic(abs(o)) for o in offsets)
        return kept, step
