"""Lottery-ticket rewinding (Frankle & Carbin 2019; late rewinding, Frankle et al. 2020).

``snapshot(model)`` copies every parameter and buffer except masks. ``rewind(model, snap)`` writes
the snapshot back into the surviving weights (masks are kept and re-applied, so pruned weights stay
zero) - then retrain. Shapes must match: rewinding works across unstructured/N:M pruning, not
across structured thinning (which changes shapes).
"""

from __future__ import annotations

import torch
from torch import nn

from .masks import MASK, apply_masks


@torch.no_grad()
def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if not k.endswith("." + MASK) and k != MASK
    }


@torch.no_grad()
def rewind(model: nn.Module, snap: dict[str, torch.Tensor]) -> None:
    state = model.state_dict()
    for k, v in snap.items():
        if k in state and state[k].shape == v.shape:
            state[k].copy_(v)
        elif k in state:
            raise ValueError(f"cannot rewind {k}: shape {tuple(state[k].shape)} != {tuple(v.shape)}")
    apply_masks(model)
