"""Channel dependency groups: which output channels must be removed (or masked) together.

How they are found (no name matching): the model is traced (:mod:`edgeflow.graph.trace`) and shapes
are propagated on an example input. Every Conv (``groups == 1``) and Linear output opens a *channel
space*; the space flows through channel-preserving ops (BatchNorm, activations, dropout, pooling,
padding of spatial dims, spatial slicing, spatial reductions, depthwise convs). Ops that tie spaces
together merge them (union-find): an elementwise add/sub/mul of two tensors (residual adds), and a
depthwise conv (its output channel ``c`` is its input channel ``c``). The result is a list of
:class:`ChannelGroup`: the producers whose output channels go jointly (same indices), the
BatchNorms and depthwise convs indexed by the group, and the consumers whose *input* channels follow
(a Conv's ``in_channels``; a Linear's ``in_features`` after a flatten, channel ``c`` owning the
features ``[c*f, (c+1)*f)`` where ``f`` is the flattened spatial size).

A group is left whole (``blocked`` says why) when it touches the model input or output, a
concatenation, a grouped conv that is not depthwise, an excluded producer, or any op not known to
preserve channels. Unknown means safe, never wrong.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import fx, nn

from edgeflow.graph.trace import input_nodes, module_of, shape_of, trace_with_shapes

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
_TRANSPOSED_CONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
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
# unary ops that stay elementwise on a flattened (channel-major) tensor
_FLAT_SAFE = {F.relu, torch.relu, F.dropout, "relu", "relu_", "contiguous", "clone", "float"}
_BINARY_FUNCS = {operator.add, operator.sub, operator.mul, operator.iadd, operator.isub,
                 operator.imul, torch.add, torch.sub, torch.mul}
_BINARY_METHODS = {"add", "sub", "mul", "add_", "sub_", "mul_"}
_REDUCE = {torch.mean, torch.sum, torch.amax, torch.amin, "mean", "sum", "amax", "amin"}


@dataclass
class ChannelGroup:
    """Channels that must be pruned jointly (same kept indices everywhere).

    ``producers``: Conv/Linear modules whose output channels are the group; ``bns`` / ``depthwise``:
    modules indexed by it; ``consumers``: ``(module, f)`` whose input channels follow (``f`` input
    features per channel after a flatten, else 1); ``blocked``: why the group must stay whole.
    """

    channels: int
    producers: list[str] = field(default_factory=list)
    bns: list[str] = field(default_factory=list)
    depthwise: list[str] = field(default_factory=list)
    consumers: list[tuple[str, int]] = field(default_factory=list)
    blocked: str | None = None

    @property
    def name(self) -> str:
        return self.producers[0] if self.producers else "?"

    @property
    def prunable(self) -> bool:
        return self.blocked is None and bool(self.producers)


def channel_groups(model: nn.Module, input_shape: Iterable[int],
                   exclude: Callable[[str], bool] | None = None) -> list[ChannelGroup]:
    """Trace ``model`` on ``input_shape`` (no batch dimension) and return its channel groups, the
    prunable and the blocked ones, each with at least one producer, in graph order.

    ``exclude(name)`` True keeps the channels of that producer (or depthwise conv) whole.
    """
    gm = trace_with_shapes(model, input_shape)
    builder = _Builder(gm, exclude or (lambda name: False))
    for node in gm.graph.nodes:
        builder.visit(node)
    return builder.groups()


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


def _is_depthwise(m: nn.Module) -> bool:
    return isinstance(m, nn.modules.conv._ConvNd) and m.groups > 1 and (
        m.groups == m.in_channels == m.out_channels
    )


class _Builder:
    """Walks the graph in order, giving each tensor node its channel space (or None)."""

    def __init__(self, gm: fx.GraphModule, exclude: Callable[[str], bool]) -> None:
        self.gm = gm
        self.exclude = exclude
        self.uf = _UF()
        self.vals: dict[fx.Node, _Val | None] = {}
        # memberships by space id (resolved to roots at the end)
        self.producers: list[tuple[int, str]] = []
        self.bns: list[tuple[int, str]] = []
        self.dws: list[tuple[int, str]] = []
        self.consumers: list[tuple[int, str, int]] = []

    def inval(self, n: object) -> _Val | None:
        return self.vals.get(n) if isinstance(n, fx.Node) else None

    def block_all(self, node: fx.Node, why: str) -> None:
        for a in input_nodes((node.args, node.kwargs)):
            v = self.vals.get(a)
            if v is not None:
                self.uf.block(v.space, why)

    def passthrough(self, node: fx.Node, v: _Val | None, why: str) -> _Val | None:
        """Keep ``v`` if the output still has the same channels at ``ch_dim``; else block."""
        if v is None:
            return None
        out = shape_of(node)
        inp = shape_of(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        if out is None or inp is None or len(out) != len(inp) or out[v.ch_dim] != inp[v.ch_dim]:
            self.uf.block(v.space, why)
            return None
        return v

    def visit(self, node: fx.Node) -> None:
        shape = shape_of(node)
        if node.op == "placeholder":
            self.vals[node] = (_Val(self.uf.new(shape[1], "model input"), 1)
                               if shape and len(shape) > 1 else None)
        elif node.op == "get_attr":
            self.vals[node] = None
        elif node.op == "output":
            self.block_all(node, "model output")
        elif shape is None:  # non-tensor result (size(), shape, ...): does not touch channels
            self.vals[node] = None
        elif node.op == "call_module":
            self.vals[node] = self.module(node, module_of(self.gm, node), shape)
        else:
            self.vals[node] = self.function(node, shape)

    # ------------------------------------------------------------------ modules
    def module(self, node: fx.Node, m: nn.Module, shape: tuple[int, ...]) -> _Val | None:
        name = str(node.target)
        a0 = node.args[0] if node.args else None
        v0 = self.inval(a0)
        uf = self.uf
        if isinstance(m, nn.modules.conv._ConvNd) and not isinstance(m, _TRANSPOSED_CONVS):
            return self.conv(name, m, v0)
        if isinstance(m, nn.Linear):
            if v0 is not None:
                ndim = len(shape_of(a0) or ())
                if ndim == 2 and v0.ch_dim == 1:
                    self.consumers.append((v0.space, name, v0.factor))
                else:
                    uf.block(v0.space, f"{name}: linear on a {ndim}-d tensor")
            blk = f"excluded: {name}" if self.exclude(name) else None
            if len(shape) != 2:
                blk = f"{name}: linear output is {len(shape)}-d"
            s = uf.new(m.out_features, blk)
            self.producers.append((s, name))
            return _Val(s, len(shape) - 1)
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if v0 is not None and v0.ch_dim == 1 and v0.factor == 1:
                self.bns.append((v0.space, name))
                return v0
            if v0 is not None:
                uf.block(v0.space, f"{name}: batchnorm on flattened channels")
            return None
        if isinstance(m, _ACT_MODULES):
            return self.passthrough(node, v0, f"{name}: shape change")
        if isinstance(m, _POOL_MODULES):
            ok = v0 is not None and v0.ch_dim == 1 and v0.factor == 1
            if v0 is not None and not ok:
                uf.block(v0.space, f"{name}: pooling on flattened channels")
            return self.passthrough(node, v0, f"{name}: shape change") if ok else None
        if isinstance(m, nn.Flatten):
            return _flatten(node, v0, m.start_dim, m.end_dim, uf)
        self.block_all(node, f"{name}: unsupported module {type(m).__name__}")
        return None

    def conv(self, name: str, m: nn.modules.conv._ConvNd, v0: _Val | None) -> _Val | None:
        uf = self.uf
        if v0 is not None and (v0.ch_dim != 1 or v0.factor != 1):
            uf.block(v0.space, f"{name}: unexpected input layout")
            v0 = None
        if m.groups == 1:
            if v0 is not None:
                self.consumers.append((v0.space, name, 1))
            s = uf.new(m.out_channels, f"excluded: {name}" if self.exclude(name) else None)
            self.producers.append((s, name))
            return _Val(s, 1)
        if _is_depthwise(m) and v0 is not None:
            self.dws.append((v0.space, name))
            if self.exclude(name):
                uf.block(v0.space, f"excluded: {name}")
            return v0
        if v0 is not None:
            uf.block(v0.space, f"{name}: grouped conv")
        return _Val(uf.new(m.out_channels, f"{name}: grouped conv"), 1)

    # ------------------------------------------------------------------ functions and methods
    def function(self, node: fx.Node, shape: tuple[int, ...]) -> _Val | None:
        tgt, method = node.target, node.op == "call_method"
        a0 = node.args[0] if node.args else None
        v0 = self.inval(a0)
        uf = self.uf
        if tgt in _BINARY_FUNCS or (method and tgt in _BINARY_METHODS):
            return self.binary(node)
        if tgt in _UNARY_FUNCS or (method and tgt in _UNARY_METHODS):
            if v0 is not None and v0.factor != 1 and tgt not in _FLAT_SAFE:
                uf.block(v0.space, f"{node.name}: op on flattened channels")
                return None
            return self.passthrough(node, v0, f"{node.name}: shape change")
        if tgt is F.pad:
            pad = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
            inp = shape_of(a0) or ()
            if v0 is not None and v0.ch_dim == 1 and isinstance(pad, (list, tuple)) and len(
                pad
            ) <= 2 * (len(inp) - 2):
                return self.passthrough(node, v0, f"{node.name}: shape change")
            self.block_all(node, f"{node.name}: pad touching channels")
            return None
        if tgt is operator.getitem:
            return _getitem(node, v0, uf)
        if tgt is torch.flatten or (method and tgt == "flatten"):
            sd = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            ed = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            return _flatten(node, v0, sd, ed, uf)
        if method and tgt in ("view", "reshape") or tgt is torch.reshape:
            return _reshape(node, v0, uf)
        if tgt in (torch.squeeze, torch.unsqueeze) or (method and tgt in ("squeeze", "unsqueeze")):
            inp = shape_of(a0) or ()
            ok = v0 is not None and v0.ch_dim == 1 and v0.factor == 1 and len(shape) >= 2
            if ok and tuple(shape[:2]) == tuple(inp[:2]):
                return v0
            self.block_all(node, f"{node.name}: squeeze across channels")
            return None
        if tgt in _REDUCE:
            return _reduce(node, v0, uf)
        self.block_all(node, f"{node.name}: unsupported op {getattr(tgt, '__name__', tgt)}")
        return None

    def binary(self, node: fx.Node) -> _Val | None:
        args = list(node.args[:2])
        tv = [(a, self.inval(a)) for a in args if isinstance(a, fx.Node)]
        spaced = [v for _, v in tv if v is not None]
        others = [a for a, v in tv if v is None]
        if len(spaced) == 2:
            va, vb = spaced
            if (va.ch_dim, va.factor) == (vb.ch_dim, vb.factor) and shape_of(args[0]) == shape_of(args[1]):
                return _Val(self.uf.union(va.space, vb.space), va.ch_dim, va.factor)
            self.uf.block(va.space, f"{node.name}: broadcast between channel groups")
            self.uf.block(vb.space, f"{node.name}: broadcast between channel groups")
            return None
        if len(spaced) == 1:
            v = spaced[0]
            if all(math.prod(shape_of(o) or (2,)) == 1 for o in others):
                return v
            self.uf.block(v.space, f"{node.name}: op with a per-channel constant")
        return None

    # ------------------------------------------------------------------ result
    def groups(self) -> list[ChannelGroup]:
        uf = self.uf
        roots: dict[int, ChannelGroup] = {}

        def group(space: int) -> ChannelGroup:
            r = uf.find(space)
            if r not in roots:
                roots[r] = ChannelGroup(channels=uf.channels[r], blocked=uf.blocked[r])
            return roots[r]

        for s, n in self.producers:
            group(s).producers.append(n)
        for s, n in self.bns:
            group(s).bns.append(n)
        for s, n in self.dws:
            group(s).depthwise.append(n)
        for s, n, f in self.consumers:
            group(s).consumers.append((n, f))
        for r, g in roots.items():
            g.blocked = uf.blocked[r]
        return [g for g in roots.values() if g.producers]


def _flatten(node: fx.Node, v: _Val | None, start: int, end: int, uf: _UF) -> _Val | None:
    if v is None:
        return None
    inp = shape_of(node.args[0]) or ()
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
    inp, out = shape_of(node.args[0]) or (), shape_of(node) or ()
    if inp == out:
        return v
    if v.ch_dim == 1 and v.factor == 1 and len(out) == 2 and len(inp) > 2 and out[0] == inp[0]:
        return _Val(v.space, 1, math.prod(inp[2:]))
    uf.block(v.space, f"{node.name}: reshape across channels")
    return None


def _reduce(node: fx.Node, v: _Val | None, uf: _UF) -> _Val | None:
    if v is None:
        return None
    inp, out = shape_of(node.args[0]) or (), shape_of(node) or ()
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
    inp, out = shape_of(node.args[0]) or (), shape_of(node) or ()
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
