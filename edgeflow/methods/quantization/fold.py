"""BatchNorm folding into the preceding convolution / linear layer (exact in float).

``W' = W · γ/√(σ² + ε)`` (per output channel), ``b' = (b − μ) · γ/√(σ² + ε) + β`` (seeds, lecture 3).
The pairs are found in the traced module graph: a BN is folded into the Conv1d/Conv2d/Linear whose
output only it consumes, whatever the modules are called (sequential stacks, residual blocks, ...).
The BN module is replaced by ``nn.Identity`` so the model class and its forward stay as they were.
"""

from __future__ import annotations

import torch
from torch import nn

from edgeflow.graph import module_of, set_submodule, trace

FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Linear)
BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)


def find_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """``(layer_name, bn_name)`` for every BN that alone consumes a conv/linear output, in graph order."""
    gm = trace(model)
    pairs = []
    for node in gm.graph.nodes:
        bn = module_of(gm, node)
        if not isinstance(bn, BN_TYPES) or not bn.track_running_stats or bn.running_mean is None:
            continue
        prev = node.args[0] if node.args else None
        layer = module_of(gm, prev) if hasattr(prev, "op") else None
        if (isinstance(layer, FOLDABLE) and len(prev.users) == 1 and getattr(layer, "bn", None) is None
                and layer.weight.shape[0] == bn.num_features):
            pairs.append((str(prev.target), str(node.target)))
    return pairs


@torch.no_grad()
def fold_bn_into(layer: nn.Module, bn: nn.Module) -> None:
    """Fold ``bn`` into ``layer``'s weight and bias in place (computed in float64)."""
    w = layer.weight.detach().double()
    var = bn.running_var.detach().double()
    mean = bn.running_mean.detach().double()
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(var)
    factor = gamma / torch.sqrt(var + bn.eps)
    bias = layer.bias.detach().double() if layer.bias is not None else torch.zeros_like(mean)
    layer.weight.copy_((w * factor.reshape(-1, *([1] * (w.ndim - 1)))).to(layer.weight.dtype))
    new_bias = ((bias - mean) * factor + beta).to(layer.weight.dtype)
    if layer.bias is None:
        layer.bias = nn.Parameter(new_bias)
    else:
        layer.bias.copy_(new_bias)


def fold_batchnorm(model: nn.Module) -> list[tuple[str, str]]:
    """Fold every foldable BatchNorm of ``model`` in place; returns the folded ``(layer, bn)`` names.

    BNs that follow something else (e.g. a ReLU) are left in place.
    """
    pairs = find_bn_pairs(model)
    for layer_name, bn_name in pairs:
        fold_bn_into(model.get_submodule(layer_name), model.get_submodule(bn_name))
        set_submodule(model, bn_name, nn.Identity())
    return pairs


def detach_bn_pairs(model: nn.Module) -> dict[str, nn.Module]:
    """Like :func:`fold_batchnorm` but without folding: removes each foldable BN from the graph
    (replaced by ``nn.Identity``) and returns ``{layer_name: bn}`` for simulated folding in QAT."""
    out = {}
    for layer_name, bn_name in find_bn_pairs(model):
        out[layer_name] = model.get_submodule(bn_name)
        set_submodule(model, bn_name, nn.Identity())
    return out
