"""N:M block-balanced sparsity: in every block of M consecutive weights along the input (reduction)
dimension, exactly N are kept (the N largest by magnitude), e.g. 2:4 (NVIDIA Ampere) or 1:4.

Layout: for each output channel the reduction dimension is taken in channels-last order
(Conv2d weight ``[O, I, kh, kw]`` -> ``[O, kh, kw, I]``; Conv1d ``[O, I, k]`` -> ``[O, k, I]``;
Linear ``[O, I]`` as is), i.e. the order of an HWC im2col row that CMSIS-NN / TFLite Micro kernels
walk, flattened to ``K`` values and cut into blocks of M from the start. With ``I % M == 0`` every
block lies within one kernel tap across M input channels; depthwise kernels (``I == 1``) block
along the kernel taps. If ``K % M != 0`` the last, shorter block of ``r`` values keeps
``min(N, r)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .masks import get_mask, prunable_layers, set_masks


def _to_rows(w: torch.Tensor) -> torch.Tensor:
    """[O, I, *k] -> [O, K] in channels-last order."""
    if w.dim() == 2:
        return w
    perm = (0, *range(2, w.dim()), 1)
    return w.permute(perm).reshape(w.shape[0], -1)


def _from_rows(rows: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    if len(shape) == 2:
        return rows.view(shape)
    cl_shape = (shape[0], *shape[2:], shape[1])
    t = rows.reshape(cl_shape)
    inv = (0, t.dim() - 1, *range(1, t.dim() - 1))
    return t.permute(inv).contiguous()


@torch.no_grad()
def nm_mask(weight: torch.Tensor, n: int, m: int, prior: torch.Tensor | None = None) -> torch.Tensor:
    """0/1 mask keeping the ``n`` largest-magnitude weights of every block of ``m`` (see module doc).
    Weights already masked by ``prior`` rank last."""
    if not 1 <= n < m:
        raise ValueError(f"N:M needs 1 <= n < m, got {n}:{m}")
    score = weight.detach().abs().float()
    if prior is not None:
        score = torch.where(prior > 0, score, torch.full_like(score, -1.0))
    rows = _to_rows(score)
    o, k = rows.shape
    full = (k // m) * m
    mask_rows = torch.zeros_like(rows)
    if full:
        blocks = rows[:, :full].reshape(o, k // m, m)
        top = torch.topk(blocks, n, dim=-1).indices
        mb = torch.zeros_like(blocks).scatter_(-1, top, 1.0)
        mask_rows[:, :full] = mb.reshape(o, full)
    r = k - full
    if r:
        tail = rows[:, full:]
        top = torch.topk(tail, min(n, r), dim=-1).indices
        mask_rows[:, full:] = torch.zeros_like(tail).scatter_(-1, top, 1.0)
    return _from_rows(mask_rows, weight.shape).to(weight.dtype)


def nm_prune(
    model: nn.Module, n: int = 2, m: int = 4, *, exclude: Iterable[str] = ()
) -> dict[str, torch.Tensor]:
    """Install N:M masks on every prunable layer not excluded."""
    masks = {
        name: nm_mask(mod.weight, n, m, get_mask(mod))
        for name, mod in prunable_layers(model, exclude).items()
    }
    set_masks(model, masks)
    return masks


@torch.no_grad()
def check_nm(weight_or_mask: torch.Tensor, n: int, m: int) -> bool:
    """True when every full block of ``m`` (channels-last reduction order) has at most ``n``
    non-zeros."""
    rows = _to_rows(weight_or_mask)
    o, k = rows.shape
    full = (k // m) * m
    if not full:
        return True
    nz = (rows[:, :full].reshape(o, k // m, m) != 0).sum(-1)
    return bool((nz <= n).all())
