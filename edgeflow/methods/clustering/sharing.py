"""Weight sharing in the model: the ``weight_index`` / ``codebook`` buffers and the operations on them.

A clustered Conv1d/Conv2d/Linear (subclasses included: fake-quant layers) carries

- ``weight_index``: an int64 buffer of the weight's shape, each weight's entry in its codebook;
- ``codebook``: a float buffer ``[G, K]``, one row per codebook group (``G = 1`` for
  ``scope="layer"``, ``G = out_channels`` for ``scope="channel"``), ``K`` = the number of clusters;
- ``cluster_zero`` (a bool attribute, saved with the model's flags): entry 0 of every codebook is
  the fixed zero that pruned weights point to; it never moves.

and its ``weight`` always equals ``codebook[group, weight_index]`` exactly, so the model stays an
ordinary module that export, analysis and the runtime read as before, while the buffers say which
weights are tied. Pruned weights (``weight_mask`` 0, or exact zeros when there is no mask) stay zero
and outside the k-means: with any of them present, ``k - 1`` centroids are learned and zero is the
k-th value, so a layer (or channel) never holds more than ``k`` distinct values.

Fine-tuning (Han et al., §3.3): the gradient of a centroid is the sum of the gradients of its
weights. :func:`tie_gradients` replaces every weight's gradient by its cluster's sum before the
optimizer step; all members then start equal, receive equal gradients and equal optimizer state
(SGD, momentum, Adam), and stay equal — each weight moves as its centroid would as a parameter of its
own. :func:`retie` then copies the weights back into the codebook (and the codebook back into the
weights, removing any rounding drift).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from edgeflow.methods.pruning.masks import get_mask, has_mask, prunable_layers

from .kmeans import kmeans_1d

INDEX = "weight_index"
CODEBOOK = "codebook"
ZERO_FLAG = "cluster_zero"
SCOPES = ("layer", "channel")


def is_clustered(module: nn.Module) -> bool:
    """Whether ``module`` carries a ``weight_index`` and a ``codebook``."""
    return isinstance(getattr(module, INDEX, None), torch.Tensor) and isinstance(getattr(module, CODEBOOK, None),
                                                                                  torch.Tensor)


def clustered_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The clustered modules of ``model`` by qualified name, in module order."""
    return {name: m for name, m in model.named_modules() if is_clustered(m)}


def _rows(module: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """``t`` (weight-shaped) as ``[G, n]`` for the module's codebook groups."""
    return t.reshape(getattr(module, CODEBOOK).shape[0], -1)


def shared_weight(module: nn.Module) -> torch.Tensor:
    """``codebook[group, weight_index]`` in the weight's shape."""
    book, index = getattr(module, CODEBOOK), getattr(module, INDEX)
    return book.gather(1, _rows(module, index)).reshape(index.shape)


@torch.no_grad()
def cluster_layer(module: nn.Module, clusters: int, init: str = "linear", scope: str = "layer",
                  seed: int = 0) -> int:
    """Cluster ``module.weight`` in place into ``clusters`` shared values per layer or per output
    channel (``scope``); installs ``weight_index``, ``codebook`` and ``cluster_zero``; returns the
    number of distinct values the layer then holds (zero included)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if not 2 <= clusters <= 256:
        raise ValueError(f"clusters must be in [2, 256], got {clusters}")
    w = module.weight.detach()
    kept = (get_mask(module) != 0) if has_mask(module) else (w != 0)
    zero = bool((~kept).any())
    groups = 1 if scope == "layer" else w.shape[0]
    values = w.reshape(groups, -1).cpu().double().numpy()
    keep = kept.reshape(groups, -1).cpu().numpy()
    learned = clusters - int(zero)
    books = np.zeros((groups, clusters))
    index = np.zeros(values.shape, dtype=np.int64)
    for g in range(groups):
        centroids, labels = kmeans_1d(values[g][keep[g]], learned, init, seed + g)
        row = np.full(learned, centroids[-1] if centroids.size else 0.0)
        row[:centroids.size] = centroids
        books[g, int(zero):] = row
        index[g][keep[g]] = labels + int(zero)
    book_t = torch.as_tensor(books, dtype=w.dtype, device=w.device)
    index_t = torch.as_tensor(index, device=w.device).reshape(w.shape)
    for name, value in ((CODEBOOK, book_t), (INDEX, index_t)):
        if name in module._buffers:
            del module._buffers[name]
        module.register_buffer(name, value)
    setattr(module, ZERO_FLAG, zero)
    module.weight.copy_(shared_weight(module))
    return int(torch.unique(module.weight).numel())


def cluster_model(model: nn.Module, clusters: int | Mapping[str, int], init: str = "linear",
                  scope: str = "layer", exclude: Iterable[str] = (), seed: int = 0) -> dict[str, int]:
    """Cluster every Conv1d/Conv2d/Linear of ``model`` not matching ``exclude`` (fnmatch globs, as
    pruning's) in place. ``clusters``: one count for all, or ``{layer name: count}`` (layers not in
    the mapping are left alone). Returns ``{layer: distinct values}``."""
    out = {}
    for i, (name, module) in enumerate(prunable_layers(model, exclude).items()):
        k = clusters.get(name) if isinstance(clusters, Mapping) else clusters
        if k is not None:
            out[name] = cluster_layer(module, int(k), init, scope, seed + 1000 * i)
    return out


@torch.no_grad()
def tie_gradients(model: nn.Module) -> int:
    """Replace each clustered weight's gradient by the sum of its cluster's gradients (the fixed
    zero's by 0); returns the number of layers tied. Call between ``backward`` and the step."""
    n = 0
    for module in clustered_layers(model).values():
        grad = module.weight.grad
        if grad is None:
            continue
        book, index = getattr(module, CODEBOOK), _rows(module, getattr(module, INDEX))
        sums = torch.zeros_like(book).scatter_add_(1, index, _rows(module, grad).to(book.dtype))
        if getattr(module, ZERO_FLAG, False):
            sums[:, 0] = 0
        grad.copy_(sums.gather(1, index).reshape(grad.shape))
        n += 1
    return n


@torch.no_grad()
def retie(model: nn.Module) -> int:
    """Set every centroid to the mean of its weights (their common value while tied), the fixed zero
    to 0, and every weight back to its centroid; returns the number of layers retied."""
    n = 0
    for module in clustered_layers(model).values():
        book, index = getattr(module, CODEBOOK), _rows(module, getattr(module, INDEX))
        w = _rows(module, module.weight.detach()).double()  # float64: the mean of equal values is exact
        sums = torch.zeros_like(book, dtype=torch.float64).scatter_add_(1, index, w)
        counts = torch.zeros_like(sums).scatter_add_(1, index, torch.ones_like(w))
        book.copy_(torch.where(counts > 0, sums / counts.clamp(min=1), book.double()).to(book.dtype))
        if getattr(module, ZERO_FLAG, False):
            book[:, 0] = 0
        module.weight.copy_(shared_weight(module))
        n += 1
    return n


@torch.no_grad()
def unique_weights(module: nn.Module, per_channel: bool = False) -> int:
    """Distinct weight values of ``module`` (zero included): over the layer, or the most in any
    output channel with ``per_channel``."""
    w = module.weight.detach()
    if not per_channel:
        return int(torch.unique(w).numel())
    return max(int(torch.unique(row).numel()) for row in w.reshape(w.shape[0], -1))


def remove_clustering(model: nn.Module) -> None:
    """Drop every ``weight_index`` / ``codebook`` (the weights keep their shared values but may drift
    apart in later training)."""
    for module in clustered_layers(model).values():
        del module._buffers[INDEX], module._buffers[CODEBOOK]
        if ZERO_FLAG in vars(module):
            delattr(module, ZERO_FLAG)


__all__ = ["CODEBOOK", "INDEX", "SCOPES", "ZERO_FLAG", "cluster_layer", "cluster_model", "clustered_layers",
           "is_clustered", "remove_clustering", "retie", "shared_weight", "tie_gradients", "unique_weights"]
