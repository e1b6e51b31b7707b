"""Unstructured magnitude pruning (Han et al. 2015), layer-wise or with one global threshold.

Rules (exact):

* The score of a weight is ``|w|``; weights already pruned (``weight_mask == 0``) score below every
  live weight, so masks only ever grow (pruning is monotone: a pruned weight is never revived).
* ``scope="layer"``: each layer ``l`` with ``n_l`` weights loses exactly ``round(s_l * n_l)`` weights,
  the smallest by score, where ``s_l`` is the requested sparsity (the same for every layer unless
  ``layer_sparsity`` gives per-layer values, e.g. from :func:`energy_aware_sparsities`).
* ``scope="global"``: all selected layers are ranked together and exactly
  ``round(s * sum(n_l))`` weights are pruned, the smallest anywhere (one global threshold on
  ``|w|``); a layer is never emptied completely (its largest weight is kept).
* Ties are broken by position (stable sort), so results are deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .masks import get_mask, prunable_layers, set_masks

SCOPES = ("layer", "global")


def _scores(m: nn.Module) -> torch.Tensor:
    w = m.weight.detach().abs().flatten().float()
    mask = get_mask(m).flatten()
    return torch.where(mask > 0, w, torch.full_like(w, -1.0))


def _mask_from_pruned(shape: torch.Size, pruned_idx: torch.Tensor, device) -> torch.Tensor:
    mask = torch.ones(int(torch.Size(shape).numel()), device=device)
    mask[pruned_idx] = 0.0
    return mask.view(shape)


@torch.no_grad()
def magnitude_masks(
    model: nn.Module,
    sparsity: float,
    *,
    scope: str = "layer",
    exclude: Iterable[str] = (),
    layer_sparsity: Mapping[str, float] | None = None,
) -> dict[str, torch.Tensor]:
    """Masks (name -> 0/1 tensor) that prune ``sparsity`` of the weights by magnitude.

    ``layer_sparsity`` (layer scope only) overrides the sparsity of the named layers.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    layers = prunable_layers(model, exclude)
    if not layers:
        raise ValueError("no prunable (Conv/Linear) layer left after `exclude`")
    masks: dict[str, torch.Tensor] = {}
    if scope == "layer":
        for name, m in layers.items():
            s = float(layer_sparsity.get(name, sparsity)) if layer_sparsity else sparsity
            scores = _scores(m)
            k = min(round(s * scores.numel()), scores.numel() - 1)
            already = int((scores < 0).sum())
            k = max(k, already)  # monotone: never revive
            idx = torch.argsort(scores, stable=True)[:k]
            masks[name] = _mask_from_pruned(m.weight.shape, idx, m.weight.device)
        return masks
    if layer_sparsity:
        raise ValueError("layer_sparsity needs scope='layer'")
    names = list(layers)
    all_scores = [_scores(layers[n]) for n in names]
    sizes = [s.numel() for s in all_scores]
    flat = torch.cat(all_scores)
    k = round(sparsity * flat.numel())
    k = max(k, int((flat < 0).sum()))
    order = torch.argsort(flat, stable=True)[:k]
    pruned = torch.zeros(flat.numel(), dtype=torch.bool)
    pruned[order] = True
    start = 0
    for name, n, sc in zip(names, sizes, all_scores):
        p = pruned[start : start + n].clone()
        if bool(p.all()):  # never empty a layer: keep its largest weight
            p[int(torch.argmax(sc))] = False
        masks[name] = (~p).float().view(layers[name].weight.shape).to(layers[name].weight.device)
        start += n
    return masks


def magnitude_prune(
    model: nn.Module,
    sparsity: float,
    *,
    scope: str = "layer",
    exclude: Iterable[str] = (),
    layer_sparsity: Mapping[str, float] | None = None,
) -> dict[str, torch.Tensor]:
    """Compute :func:`magnitude_masks` and install them (``weight_mask`` buffers, weights zeroed)."""
    masks = magnitude_masks(
        model, sparsity, scope=scope, exclude=exclude, layer_sparsity=layer_sparsity
    )
    set_masks(model, masks)
    return masks
