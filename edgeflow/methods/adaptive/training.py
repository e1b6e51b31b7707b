"""The weighted early-exit loss (Panda et al.; Shallow-Deep Networks): Σ wₖ · CE(exitₖ, y) / Σ wₖ."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from edgeflow.methods.adaptive.system import EarlyExit


def exit_loss(weights: Sequence[float], heads_only: bool = False) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    """The training loss ``loss(model, x, y)`` of an ``EarlyExit`` for ``edgeflow.training.fit``.

    ``weights``: one per path (exits, then the final classifier). ``heads_only``: the backbone is
    frozen (its parameters should have ``requires_grad=False``; its BatchNorm statistics stay as they
    are: segments run in eval mode) and only the exit heads learn."""
    w = [float(v) for v in weights]
    total = sum(w)

    def loss(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        assert isinstance(model, EarlyExit)
        if heads_only:
            model.segments.eval()
            feats = _features(model, x)
            logits = [head(f) for head, f in zip(model.heads, feats)] + [feats[-1]]
        else:
            logits = model.exit_logits(x)
        return sum(wk * F.cross_entropy(lk, y) for wk, lk in zip(w, logits)) / total

    return loss


def _features(model: EarlyExit, x: Tensor) -> list[Tensor]:
    """Every segment's output, no gradients: the features at each exit, then the final logits."""
    feats, h = [], x
    with torch.no_grad():
        for seg in model.segments:
            h = seg(h)
            feats.append(h)
    return feats
