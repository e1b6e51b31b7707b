"""Structured (channel / filter) pruning with real thinning.

The channels that must go together are the channel groups of :mod:`edgeflow.graph.groups` (torch.fx
data flow, no name matching): producers pruned jointly, the BatchNorms and depthwise convs they
index, and the consumers whose input channels follow. Groups touching the model input or output,
concatenations, non-depthwise grouped convs, excluded producers or unknown ops stay whole.

Thinning builds a new module tree (a deep copy of the model, same classes and forward code) whose
Conv/Linear/BatchNorm modules hold only the kept channels: fewer parameters, fewer MACs, and a
smaller ONNX export. If the removed channels were zero (weights, bias and BN scale/shift), the thin
model's outputs equal the original's exactly (see :func:`zero_channels`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from edgeflow.graph import groups as G
from edgeflow.graph.groups import ChannelGroup
from edgeflow.models import blueprint

from .masks import matches

CRITERIA = ("l1", "l2", "bn_scale")


def channel_groups(
    model: nn.Module, input_shape: Iterable[int], exclude: Iterable[str] = ()
) -> list[ChannelGroup]:
    """The channel groups of ``model`` (:func:`edgeflow.graph.channel_groups`); producers whose
    name matches a glob pattern in ``exclude`` (:func:`.masks.matches`) keep their channels."""
    patterns = list(exclude)
    return G.channel_groups(model, input_shape, lambda name: matches(name, patterns))


# ----------------------------------------------------------------------------- importance
@torch.no_grad()
def channel_importance(model: nn.Module, group: ChannelGroup, criterion: str = "l1") -> torch.Tensor:
    """Importance of each channel of ``group`` (higher = keep).

    ``l1``: sum over the group's producers of the L1 norm of the channel's filter;
    ``l2``: L2 norm of the concatenated filters; ``bn_scale``: sum of ``|gamma|`` of the group's
    BatchNorms (network slimming; groups without BatchNorm fall back to ``l1``).
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    mods = dict(model.named_modules())
    if criterion == "bn_scale" and group.bns:
        return sum(mods[b].weight.detach().abs().float() for b in group.bns)
    score = torch.zeros(group.channels)
    for p in group.producers:
        w = mods[p].weight.detach().float().flatten(1).cpu()
        score += w.abs().sum(1) if criterion != "l2" else w.pow(2).sum(1)
    return score.sqrt() if criterion == "l2" else score


def select_channels(
    model: nn.Module,
    groups: list[ChannelGroup],
    ratio: float,
    *,
    criterion: str = "l1",
    scope: str = "layer",
    group_ratio: Mapping[str, float] | None = None,
    multiple: int = 1,
) -> dict[str, torch.Tensor]:
    """Kept channel indices (sorted) per prunable group, keyed by ``group.name``.

    ``scope="layer"``: every group keeps ``C - round(r * C)`` channels (``r`` = ``ratio`` or the
    group's entry in ``group_ratio``), at least 1, then rounded up to a multiple of ``multiple``
    (SIMD-friendly widths, capped at ``C``). ``scope="global"``: importances are divided by their
    group mean and ranked together; the lowest ``round(ratio * total)`` channels go (at least one
    channel kept per group).
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    prunable = [g for g in groups if g.prunable]
    keep: dict[str, torch.Tensor] = {}
    if scope == "layer":
        for g in prunable:
            r = float(group_ratio.get(g.name, ratio)) if group_ratio else ratio
            k = max(1, g.channels - round(r * g.channels))
            k = min(g.channels, math.ceil(k / multiple) * multiple)
            imp = channel_importance(model, g, criterion)
            keep[g.name] = torch.argsort(imp, descending=True, stable=True)[:k].sort().values
        return keep
    if scope != "global":
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    imps = [channel_importance(model, g, criterion) for g in prunable]
    normed = torch.cat([i / (i.mean() + 1e-12) for i in imps])
    n_prune = round(ratio * normed.numel())
    order = torch.argsort(normed, stable=True)[:n_prune]
    pruned = torch.zeros(normed.numel(), dtype=torch.bool)
    pruned[order] = True
    start = 0
    for g, imp in zip(prunable, imps):
        p = pruned[start : start + g.channels].clone()
        if bool(p.all()):
            p[int(torch.argmax(imp))] = False
        keep[g.name] = torch.nonzero(~p).flatten()
        start += g.channels
    return keep


# ----------------------------------------------------------------------------- apply
@torch.no_grad()
def zero_channels(model: nn.Module, groups: list[ChannelGroup], keep: Mapping[str, torch.Tensor]) -> None:
    """Soft structured pruning in place: the removed channels' filters, biases and BatchNorm
    scale/shift become 0, so their activations are exactly 0 (thinning afterwards is exact)."""
    mods = dict(model.named_modules())
    for g in groups:
        if g.name not in keep:
            continue
        drop = torch.ones(g.channels, dtype=torch.bool)
        drop[keep[g.name]] = False
        for n in g.producers + g.depthwise:
            m = mods[n]
            m.weight[drop] = 0
            if m.bias is not None:
                m.bias[drop] = 0
        for n in g.bns:
            m = mods[n]
            if m.weight is not None:
                m.weight[drop] = 0
            if m.bias is not None:
                m.bias[drop] = 0


def _slice_tensor_attrs(m: nn.Module, dim: int, idx: torch.Tensor, ref_shape: torch.Size) -> None:
    """Slice ``weight`` and every parameter/buffer of ``m`` shaped like it along ``dim``."""
    for store in (m._parameters, m._buffers):
        for k, t in list(store.items()):
            if t is not None and t.shape == ref_shape:
                new = t.detach().index_select(dim, idx.to(t.device)).clone()
                store[k] = nn.Parameter(new, requires_grad=t.requires_grad) if isinstance(
                    t, nn.Parameter) else new


def _slice_vec(m: nn.Module, names: Iterable[str], idx: torch.Tensor, n_old: int) -> None:
    for k in names:
        store = m._parameters if k in m._parameters else m._buffers
        t = store.get(k)
        if t is not None and t.dim() >= 1 and t.shape[0] == n_old:
            new = t.detach().index_select(0, idx.to(t.device)).clone()
            store[k] = nn.Parameter(new, requires_grad=t.requires_grad) if isinstance(
                t, nn.Parameter) else new


def _slice_children_per_channel(m: nn.Module, idx: torch.Tensor, n_old: int) -> None:
    """Per-output-channel tensors of submodules (e.g. a weight quantizer's per-channel scale:
    1-D of length ``n_old`` or shaped ``[n_old, 1, ...]``) follow the kept output channels."""
    for child in m.children():
        for sub in child.modules():
            for store in (sub._parameters, sub._buffers):
                for k, t in list(store.items()):
                    if t is not None and t.dim() >= 1 and t.shape[0] == n_old and t.numel() == n_old:
                        new = t.detach().index_select(0, idx.to(t.device)).clone()
                        store[k] = nn.Parameter(new, requires_grad=t.requires_grad) if isinstance(
                            t, nn.Parameter) else new


def thin(
    model: nn.Module, groups: list[ChannelGroup], keep: Mapping[str, torch.Tensor]
) -> nn.Module:
    """A new module tree (deep copy) holding only the kept channels of every group in ``keep``."""
    new = copy.deepcopy(model)
    mods = dict(new.named_modules())
    for g in groups:
        if g.name not in keep:
            continue
        idx = torch.as_tensor(keep[g.name], dtype=torch.long).sort().values
        if idx.numel() == g.channels:
            continue
        if not g.prunable:
            raise ValueError(f"group {g.name} cannot be pruned: {g.blocked}")
        k = idx.numel()
        for n in g.producers:
            m = mods[n]
            old = m.weight.shape[0]
            _slice_tensor_attrs(m, 0, idx, m.weight.shape)
            _slice_vec(m, ["bias"], idx, old)
            _slice_children_per_channel(m, idx, old)
            if isinstance(m, nn.Linear):
                m.out_features = k
            else:
                m.out_channels = k
        for n in g.depthwise:
            m = mods[n]
            old = m.weight.shape[0]
            _slice_tensor_attrs(m, 0, idx, m.weight.shape)
            _slice_vec(m, ["bias"], idx, old)
            _slice_children_per_channel(m, idx, old)
            m.in_channels = m.out_channels = m.groups = k
        for n in g.bns:
            m = mods[n]
            _slice_vec(m, ["weight", "bias", "running_mean", "running_var"], idx, g.channels)
            m.num_features = k
        for n, f in g.consumers:
            m = mods[n]
            cols = idx if f == 1 else (idx[:, None] * f + torch.arange(f)[None, :]).flatten()
            _slice_tensor_attrs(m, 1, cols, m.weight.shape)
            if isinstance(m, nn.Linear):
                m.in_features = cols.numel()
            else:
                m.in_channels = k
    blueprint.record(new, blueprint.resize_step(model, new), source=model)
    return new


def structured_prune(
    model: nn.Module,
    input_shape: Iterable[int],
    ratio: float,
    *,
    criterion: str = "l1",
    scope: str = "layer",
    exclude: Iterable[str] = (),
    group_ratio: Mapping[str, float] | None = None,
    multiple: int = 1,
) -> tuple[nn.Module, list[dict]]:
    """Remove ``ratio`` of the channels of every prunable group and return ``(thin_model, report)``.

    The report has one row per group: name, producers, channels before/after, or why blocked.
    The original model is left unchanged.
    """
    groups = channel_groups(model, input_shape, exclude)
    keep = select_channels(
        model, groups, ratio, criterion=criterion, scope=scope, group_ratio=group_ratio,
        multiple=multiple,
    )
    thin_model = thin(model, groups, keep)
    report = [
        {
            "group": g.name,
            "producers": ",".join(g.producers),
            "channels": g.channels,
            "kept": int(keep[g.name].numel()) if g.name in keep else g.channels,
            "blocked": g.blocked or "",
        }
        for g in groups
    ]
    return thin_model, report


def bn_l1_penalty(model: nn.Module, strength: float):  # noqa: ANN201
    """``extra_loss`` for network slimming (Liu et al. 2017): ``strength * sum |gamma|`` over every
    BatchNorm of ``model``; pass it to ``fit(extra_loss=...)`` before pruning with
    ``criterion="bn_scale"``."""

    def loss(m: nn.Module | None = None) -> torch.Tensor:
        m = model if m is None else m
        bns = [b for b in m.modules() if isinstance(b, nn.modules.batchnorm._BatchNorm) and b.affine]
        return strength * sum(b.weight.abs().sum() for b in bns)

    return loss

