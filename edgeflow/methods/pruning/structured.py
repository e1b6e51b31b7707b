"""Structured (channel / filter) pruning with real thinning, dependencies found by torch.fx.

How dependencies are found (no name matching): the model is traced with ``torch.fx`` (Conv, Linear
and BatchNorm modules, subclasses included, are leaves) and shapes are propagated on an example
input. Every Conv (``groups == 1``) and Linear output opens a *channel space*; the space flows
through channel-preserving ops (BatchNorm, activations, dropout, pooling, padding of spatial dims,
spatial slicing, spatial reductions, depthwise convs). Ops that tie spaces together merge them
(union-find): an elementwise add/sub/mul of two tensors (residual adds), and a depthwise conv (its
output channel ``c`` is its input channel ``c``). The result is a list of :class:`ChannelGroup`:
the producers whose output channels are pruned jointly (same indices), the BatchNorms and
depthwise convs indexed by the group, and the consumers whose *input* channels follow (a Conv's
``in_channels``; a Linear's ``in_features`` after a flatten, channel ``c`` owning the features
``[c*f, (c+1)*f)`` where ``f`` is the flattened spatial size).

A group is left whole (``blocked`` says why) when it touches the model input or output, a
concatenation, a grouped conv that is not depthwise, an excluded producer, or any op not known to
preserve channels. Unknown means safe, never wrong.

Thinning builds a new module tree (a deep copy of the model, same classes and forward code) whose
Conv/Linear/BatchNorm modules hold only the kept channels: fewer parameters, fewer MACs, and a
smaller ONNX export. If the removed channels were zero (weights, bias and BN scale/shift), the thin
model's outputs equal the original's exactly (see :func:`zero_channels`).
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from .masks import matches

CRITERIA = ("l1", "l2", "bn_scale")

_ACT_MODULES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
    nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.Identity, nn.Dropout, nn.Dropout1d,
    nn.Dropout2d, nn.AlphaDropout,
)
_POOL_MODULES = (
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.LPPool1d, nn.LPPool2d,
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ReflectionPad1d,
    nn.ReflectionPad2d, nn.ReplicationPad1d, nn.ReplicationPad2d, nn.Upsample,
)
_UNARY_FUNCS = {
    F.relu, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.hardtanh, F.hardswish, F.hardsigmoid,
    F.sigmoid, F.tanh, F.dropout, F.dropout1d, F.dropout2d, torch.relu, torch.sigmoid, torch.tanh,
    torch.clamp, torch.clip, F.max_pool1d, F.max_pool2d, F.avg_pool1d, F.avg_pool2d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
    F.interpolate, torch.abs, torch.neg, torch.square,
}
_UNARY_METHODS = {
    "relu", "relu_", "sigmoid", "tanh", "clamp", "clamp_", "clip", "contiguous", "clone", "float",
    "abs", "neg", "square", "detach",
}
_BINARY_FUNCS = {operator.add, operator.sub, operator.mul, operator.iadd, operator.isub,
                 operator.imul, torch.add, torch.sub, torch.mul}
_BINARY_METHODS = {"add", "sub", "mul", "add_", "sub_", "mul_"}
_REDUCE = {torch.mean, torch.sum, torch.amax, torch.amin, "mean", "sum", "amax", "amin"}


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.conv._ConvNd) and m.groups > 1 and (
        m.groups == m.in_channels == m.out_channels
    )


class _Tracer(fx.Tracer):
    """Conv / Linear / BatchNorm modules are leaves even when subclassed outside torch.nn
    (fake-quant layers), so their channels stay visible."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm)):
            return True
        return super().is_leaf_module(m, qualname)


@dataclass
class ChannelGroup:
    """Channels that must be pruned jointly (same kept indices everywhere)."""

    channels: int
    producers: list[str] = field(default_factory=list)
    bns: list[str] = field(default_factory=list)
    depthwise: list[str] = field(default_factory=list)
    consumers: list[tuple[str, int]] = field(default_factory=list)  # (module, flatten factor)
    blocked: str | None = None

    @property
    def name(self) -> str:
        return self.producers[0] if self.producers else "?"

    @property
    def prunable(self) -> bool:
        return self.blocked is None and bool(self.producers)


@dataclass
class _Val:
    space: int
    ch_dim: int
    factor: int = 1


class _UF:
    def __init__(self) -> None:
        self.parent: list[int] = []
        self.channels: list[int] = []
        self.blocked: list[str | None] = []

    def new(self, channels: int, blocked: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.channels.append(channels)
        self.blocked.append(blocked)
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.blocked[ra] = self.blocked[ra] or self.blocked[rb]
        return ra

    def block(self, i: int, why: str) -> None:
        r = self.find(i)
        if self.blocked[r] is None:
            self.blocked[r] = why


def _shape(node: fx.Node) -> tuple[int, ...] | None:
    tm = node.meta.get("tensor_meta")
    return tuple(tm.shape) if tm is not None and hasattr(tm, "shape") else None


def _flat_nodes(a) -> list[fx.Node]:  # noqa: ANN001
    out: list[fx.Node] = []
    fx.node.map_arg(a, lambda n: out.append(n))
    return out


def trace(model: nn.Module, input_shape: Iterable[int]) -> fx.GraphModule:
    """Symbolically trace ``model`` and annotate node shapes for a batch of 2 example inputs."""
    try:
        graph = _Tracer().trace(model)
    except Exception as e:  # noqa: BLE001
        raise ValueError(
            f"structured pruning needs a torch.fx-traceable forward; tracing failed: {e}"
        ) from e
    gm = fx.GraphModule(model, graph)
    was_training = model.training
    gm.eval()
    try:
        p = next(model.parameters())
        ShapeProp(gm).propagate(torch.zeros(2, *input_shape, dtype=p.dtype, device=p.device))
    finally:
        model.train(was_training)
    return gm


def channel_groups(
    model: nn.Module, input_shape: Iterable[int], exclude: Iterable[str] = ()
) -> list[ChannelGroup]:
    """Trace ``model`` and return its channel groups (prunable ones and blocked ones)."""
    exclude = list(exclude)
    gm = trace(model, tuple(input_shape))
    mods = dict(model.named_modules())
    uf = _UF()
    vals: dict[fx.Node, _Val | None] = {}
    # memberships by space id (resolved to roots at the end)
    producers: list[tuple[int, str]] = []
    bns: list[tuple[int, str]] = []
    dws: list[tuple[int, str]] = []
    consumers: list[tuple[int, str, int]] = []

    def inval(n) -> _Val | None:  # noqa: ANN001
        return vals.get(n) if isinstance(n, fx.Node) else None

    def block_all(node: fx.Node, why: str) -> None:
        for a in _flat_nodes((node.args, node.kwargs)):
            v = vals.get(a)
            if v is not None:
                uf.block(v.space, why)

    def passthrough(node: fx.Node, v: _Val | None, why: str) -> _Val | None:
        """Keep ``v`` if the output still has the same channels at ``ch_dim``; else block."""
        if v is None:
            return None
        out = _shape(node)
        inp = _shape(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if out is None or inp is None or len(out) != len(inp) or out[v.ch_dim] != inp[v.ch_dim]:
            uf.block(v.space, why)
            return None
        return v

    for node in gm.graph.nodes:
        shape = _shape(node)
        if node.op == "placeholder":
            vals[node] = _Val(uf.new(shape[1], "model input"), 1) if shape and len(shape) > 1 else None
            continue
        if node.op == "get_attr":
            vals[node] = None
            continue
        if node.op == "output":
            block_all(node, "model output")
            continue
        a0 = node.args[0] if node.args else None
        v0 = inval(a0)
        if shape is None:  # non-tensor result (size(), shape, ...): does not touch channels
            vals[node] = None
            continue

        if node.op == "call_module":
            m = mods[node.target]
            name = node.target
            if isinstance(m, nn.modules.conv._ConvNd) and not isinstance(
                m, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
            ):
                if v0 is not None and (v0.ch_dim != 1 or v0.factor != 1):
                    uf.block(v0.space, f"{name}: unexpected input layout")
                    v0 = None
                if m.groups == 1:
                    if v0 is not None:
                        consumers.append((v0.space, name, 1))
                    s = uf.new(m.out_channels, f"excluded: {name}" if matches(name, exclude) else None)
                    producers.append((s, name))
                    vals[node] = _Val(s, 1)
                elif _is_depthwise(m) and v0 is not None:
                    dws.append((v0.space, name))
                    if matches(name, exclude):
                        uf.block(v0.space, f"excluded: {name}")
                    vals[node] = v0
                else:
                    if v0 is not None:
                        uf.block(v0.space, f"{name}: grouped conv")
                    vals[node] = _Val(uf.new(m.out_channels, f"{name}: grouped conv"), 1)
            elif isinstance(m, nn.Linear):
                if v0 is not None:
                    ndim = len(_shape(a0) or ())
                    if ndim == 2 and v0.ch_dim == 1:
                        consumers.append((v0.space, name, v0.factor))
                    else:
                        uf.block(v0.space, f"{name}: linear on a {ndim}-d tensor")
                blk = f"excluded: {name}" if matches(name, exclude) else None
                if len(shape) != 2:
                    blk = f"{name}: linear output is {len(shape)}-d"
                s = uf.new(m.out_features, blk)
                producers.append((s, name))
                vals[node] = _Val(s, len(shape) - 1)
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                if v0 is not None and v0.ch_dim == 1 and v0.factor == 1:
                    bns.append((v0.space, name))
                    vals[node] = v0
                else:
                    if v0 is not None:
                        uf.block(v0.space, f"{name}: batchnorm on flattened channels")
                    vals[node] = None
            elif isinstance(m, _ACT_MODULES):
                vals[node] = passthrough(node, v0, f"{name}: shape change")
            elif isinstance(m, _POOL_MODULES):
                ok = v0 is not None and v0.ch_dim == 1 and v0.factor == 1
                if v0 is not None and not ok:
                    uf.block(v0.space, f"{name}: pooling on flattened channels")
                vals[node] = passthrough(node, v0, f"{name}: shape change") if ok else None
            elif isinstance(m, nn.Flatten):
                vals[node] = _flatten(node, v0, m.start_dim, m.end_dim, uf)
            else:
                block_all(node, f"{name}: unsupported module {type(m).__name__}")
                vals[node] = None
            continue

        # call_function / call_method
        tgt = node.target
        if tgt in _BINARY_FUNCS or (node.op == "call_method" and tgt in _BINARY_METHODS):
            args = list(node.args[:2])
            tv = [(a, inval(a)) for a in args if isinstance(a, fx.Node)]
            spaced = [v for _, v in tv if v is not None]
            others = [a for a, v in tv if v is None]
            if len(spaced) == 2:
                va, vb = spaced
                if (va.ch_dim, va.factor) == (vb.ch_dim, vb.factor) and _shape(args[0]) == _shape(
                    args[1]
                ):
                    vals[node] = _Val(uf.union(va.space, vb.space), va.ch_dim, va.factor)
                else:
                    uf.block(va.space, f"{node.name}: broadcast between channel groups")
                    uf.block(vb.space, f"{node.name}: broadcast between channel groups")
                    vals[node] = None
            elif len(spaced) == 1:
                v = spaced[0]
                trivially = all(math.prod(_shape(o) or (2,)) == 1 for o in others)
                if trivially:
                    vals[node] = v
                else:
                    uf.block(v.space, f"{node.name}: op with a per-channel constant")
                    vals[node] = None
            else:
                vals[node] = None
            continue
        if tgt in _UNARY_FUNCS or (node.op == "call_method" and tgt in _UNARY_METHODS):
            if v0 is not None and v0.factor != 1 and tgt not in (
                F.relu, torch.relu, F.dropout, "relu", "relu_", "contiguous", "clone", "float"
            ):
                uf.block(v0.space, f"{node.name}: op on flattened channels")
                vals[node] = None
            else:
                vals[node] = passthrough(node, v0, f"{node.name}: shape change")
            continue
        if tgt is F.pad:
            pad = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
            inp = _shape(a0) or ()
            if v0 is not None and v0.ch_dim == 1 and isinstance(pad, (list, tuple)) and len(
                pad
            ) <= 2 * (len(inp) - 2):
                vals[node] = passthrough(node, v0, f"{node.name}: shape change")
            else:
                block_all(node, f"{node.name}: pad touching channels")
                vals[node] = None
            continue
        if tgt is operator.getitem:
            vals[node] = _getitem(node, v0, uf)
            continue
        if tgt is torch.flatten or (node.op == "call_method" and tgt == "flatten"):
            sd = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            ed = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            vals[node] = _flatten(node, v0, sd, ed, uf)
            continue
        if node.op == "call_method" and tgt in ("view", "reshape") or tgt is torch.reshape:
            vals[node] = _reshape(node, v0, uf)
            continue
        if tgt in (torch.squeeze, torch.unsqueeze) or (
            node.op == "call_method" and tgt in ("squeeze", "unsqueeze")
        ):
            inp = _shape(a0) or ()
            ok = v0 is not None and v0.ch_dim == 1 and v0.factor == 1 and len(shape) >= 2
            if ok and tuple(shape[:2]) == tuple(inp[:2]):
                vals[node] = v0
            else:
                block_all(node, f"{node.name}: squeeze across channels")
                vals[node] = None
            continue
        if tgt in _REDUCE:
            vals[node] = _reduce(node, v0, uf)
            continue
        block_all(node, f"{node.name}: unsupported op {getattr(tgt, '__name__', tgt)}")
        vals[node] = None

    roots: dict[int, ChannelGroup] = {}

    def group(space: int) -> ChannelGroup:
        r = uf.find(space)
        if r not in roots:
            roots[r] = ChannelGroup(channels=uf.channels[r], blocked=uf.blocked[r])
        return roots[r]

    for s, n in producers:
        group(s).producers.append(n)
    for s, n in bns:
        group(s).bns.append(n)
    for s, n in dws:
        group(s).depthwise.append(n)
    for s, n, f in consumers:
        group(s).consumers.append((n, f))
    for r, g in roots.items():
        g.blocked = uf.blocked[r]
    return [g for g in roots.values() if g.producers]


def _flatten(node: fx.Node, v: _Val | None, start: int, end: int, uf: _UF) -> _Val | None:
    if v is None:
        return None
    inp = _shape(node.args[0]) or ()
    nd = len(inp)
    end = end % nd if nd else end
    if v.ch_dim == 1 and start == 1 and end == nd - 1 and v.factor == 1:
        return _Val(v.space, 1, math.prod(inp[2:]) if nd > 2 else 1)
    if nd == 2 and start == 1:  # flatten of a 2-d tensor is a no-op
        return v
    uf.block(v.space, f"{node.name}: flatten across channels")
    return None


def _reshape(node: fx.Node, v: _Val | None, uf: _UF) -> _Val | None:
    if v is None:
        return None
    inp, out = _shape(node.args[0]) or (), _shape(node) or ()
    if inp == out:
        return v
    if v.ch_dim == 1 and v.factor == 1 and len(out) == 2 and len(inp) > 2 and out[0] == inp[0]:
        return _Val(v.space, 1, math.prod(inp[2:]))
    uf.block(v.space, f"{node.name}: reshape across channels")
    return None


def _reduce(node: fx.Node, v: _Val | None, uf: _UF) -> _Val | None:
    if v is None:
        return None
    inp, out = _shape(node.args[0]) or (), _shape(node) or ()
    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    if dim is None or v.factor != 1 or v.ch_dim != 1:
        uf.block(v.space, f"{node.name}: reduction over channels")
        return None
    dims = [d % len(inp) for d in (dim if isinstance(dim, (list, tuple)) else [dim])]
    if 0 in dims or 1 in dims or len(out) < 2 or out[1] != inp[1]:
        uf.block(v.space, f"{node.name}: reduction over channels")
        return None
    return v


def _getitem(node: fx.Node, v: _Val | None, uf: _UF) -> _Val | None:
    if v is None:
        return None
    idx = node.args[1]
    idx = idx if isinstance(idx, tuple) else (idx,)
    inp, out = _shape(node.args[0]) or (), _shape(node) or ()
    ok = (
        v.factor == 1
        and len(out) == len(inp)
        and Ellipsis not in idx[: v.ch_dim + 1]
        and all(isinstance(i, slice) and i == slice(None) for i in idx[: v.ch_dim + 1])
        and out[v.ch_dim] == inp[v.ch_dim]
    )
    if not ok:
        uf.block(v.space, f"{node.name}: indexing across channels")
        return None
    return v


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

