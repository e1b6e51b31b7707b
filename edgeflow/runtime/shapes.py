"""Static shape and dtype rules of the IR's node kinds (no tensor is computed).

``infer(graph, input_shapes)`` walks the schedule once and gives every tensor's shape from the
input shapes, the nodes' attributes and their constants' shapes. The geometry helpers (ONNX
``auto_pad``, output sizes, pooling windows, reshape targets) are the ones the kernels use, so a
static shape always equals the shape a kernel returns.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgeflow.runtime.ir import Graph, Node


def conv_output_size(size: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    return (size + pb + pe - d * (k - 1) - 1) // s + 1


def resolve_pads(auto_pad: str, in_sp: tuple[int, ...], kernel: tuple[int, ...], strides: tuple[int, ...],
                 dilations: tuple[int, ...], pads: tuple[int, ...] | None) -> tuple[int, ...]:
    """ONNX auto_pad/pads -> explicit (begin..., end...) pads."""
    nd = len(kernel)
    if auto_pad in ("", "NOTSET"):
        return tuple(pads) if pads else (0,) * (2 * nd)
    if auto_pad == "VALID":
        return (0,) * (2 * nd)
    begins, ends = [], []
    for i in range(nd):
        out = -(-in_sp[i] // strides[i])
        total = max(0, (out - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - in_sp[i])
        small, big = total // 2, total - total // 2
        b, e = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
        begins.append(b)
        ends.append(e)
    return tuple(begins + ends)


def pool_geometry(x_shape, kernel, strides, pads_attr, auto_pad, ceil_mode, dilations=None):
    """(explicit pads, output spatial size, dilations) of a max/average pool over NC+spatial ``x_shape``."""
    nd = len(kernel)
    dil = tuple(dilations or (1,) * nd)
    sp = tuple(x_shape[2:])
    pads = resolve_pads(auto_pad, sp, kernel, strides, dil, pads_attr)
    out = []
    for i in range(nd):
        if ceil_mode:
            eff = dil[i] * (kernel[i] - 1) + 1
            o = -(-(sp[i] + pads[i] + pads[i + nd] - eff) // strides[i]) + 1
            if (o - 1) * strides[i] >= sp[i] + pads[i]:
                o -= 1
        else:
            o = conv_output_size(sp[i], kernel[i], strides[i], dil[i], pads[i], pads[i + nd])
        out.append(o)
    return pads, tuple(out), dil


def reshape_target(attrs: dict[str, Any], in_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Target shape of a ``reshape`` node (may hold one -1, as numpy's reshape takes it)."""
    flatten_axis, squeeze_axes, unsqueeze_axes = attrs["flatten_axis"], attrs["squeeze_axes"], attrs["unsqueeze_axes"]
    if flatten_axis is not None:
        a = flatten_axis % (len(in_shape) + 1) if flatten_axis < 0 else flatten_axis
        return (math.prod(in_shape[:a]), math.prod(in_shape[a:]))
    if squeeze_axes is not None or (attrs["shape"] is None and unsqueeze_axes is None):
        if squeeze_axes is None:
            return tuple(d for d in in_shape if d != 1)
        axes = {a % len(in_shape) for a in squeeze_axes}
        for a in axes:
            if in_shape[a] != 1:
                raise ValueError(f"cannot squeeze axis {a} of shape {tuple(in_shape)}")
        return tuple(d for i, d in enumerate(in_shape) if i not in axes)
    if unsqueeze_axes is not None:
        rank = len(in_shape) + len(unsqueeze_axes)
        out = list(in_shape)
        for a in sorted(a % rank for a in unsqueeze_axes):
            out.insert(a, 1)
        return tuple(out)
    shp = list(attrs["shape"])
    if not attrs["allowzero"]:
        shp = [in_shape[i] if v == 0 else v for i, v in enumerate(shp)]
    return tuple(shp)


def _resolve_minus_one(target: tuple[int, ...], size: int) -> tuple[int, ...]:
    if -1 not in target:
        known = target
    else:
        rest = int(np.prod([d for d in target if d != -1]))
        if rest == 0 or size % rest:
            raise ValueError(f"cannot reshape {size} elements to {list(target)}")
        known = tuple(size // rest if d == -1 else d for d in target)
    if int(np.prod(known)) != size:
        raise ValueError(f"cannot reshape {size} elements to {list(target)}")
    return tuple(int(d) for d in known)


def _conv(node: Node, x: tuple[int, ...]) -> tuple[int, ...]:
    w = node.params["weight"].shape
    at = node.attrs
    nd = len(w) - 2
    kernel = tuple(int(k) for k in w[2:])
    strides = tuple(at["strides"] or (1,) * nd)
    dil = tuple(at["dilations"] or (1,) * nd)
    if len(x) != nd + 2 or x[1] != w[1] * at["group"]:
        raise ValueError(f"input shape {tuple(x)} does not fit weights {tuple(w)}")
    pads = resolve_pads(at["auto_pad"], tuple(x[2:]), kernel, strides, dil, at["pads"])
    return (x[0], w[0]) + tuple(conv_output_size(x[2 + i], kernel[i], strides[i], dil[i], pads[i], pads[i + nd])
                                 for i in range(nd))


def _fully_connected(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    a = ins[0]
    if "weight" in node.params:
        k, n = node.params["weight"].shape
        if a[-1] != k:
            raise ValueError(f"input shape {tuple(a)} does not fit weights {(k, n)}")
        return tuple(a[:-1]) + (n,)
    b = ins[1]
    return tuple(np.broadcast_shapes(a[:-2], b[:-2])) + (a[-2], b[-1])


def _pool(node: Node, x: tuple[int, ...]) -> tuple[int, ...]:
    at = node.attrs
    kernel = tuple(at["kernel"])
    strides = tuple(at["strides"] or (1,) * len(kernel))
    _, out, _ = pool_geometry(x, kernel, strides, at["pads"], at["auto_pad"], at["ceil_mode"], at.get("dilations"))
    return tuple(x[:2]) + out


def _concat(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    axis = node.attrs["axis"] % len(ins[0])
    out = list(ins[0])
    out[axis] = sum(s[axis] for s in ins)
    return tuple(out)


def _pad(node: Node, x: tuple[int, ...]) -> tuple[int, ...]:
    at = node.attrs
    axes = list(range(len(x))) if at["axes"] is None else [a % len(x) for a in at["axes"]]
    out = list(x)
    for i, a in enumerate(axes):
        out[a] += at["pads"][i] + at["pads"][i + len(axes)]
    return tuple(out)


def output_shape(node: Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    """Shape of ``node``'s (single) output from its inputs' shapes."""
    k = node.kind
    x = tuple(ins[0])
    if k in ("quantize", "dequantize", "softmax", "int_softmax", "lut", "hard_swish", "clamp", "rescale"):
        return x
    if k == "conv":
        return _conv(node, x)
    if k == "fully_connected":
        return _fully_connected(node, ins)
    if k in ("add", "mul"):
        b = ins[1] if len(ins) > 1 else node.params["const_b"].shape
        return tuple(np.broadcast_shapes(x, tuple(b)))
    if k in ("max_pool", "avg_pool"):
        return _pool(node, x)
    if k == "global_avg_pool":
        return tuple(x[:2]) + (1,) * (len(x) - 2)
    if k == "concat":
        return _concat(node, ins)
    if k == "reshape":
        return _resolve_minus_one(reshape_target(node.attrs, x), int(np.prod(x)))
    if k == "transpose":
        perm = node.attrs["perm"] or list(range(len(x)))[::-1]
        return tuple(x[p] for p in perm)
    if k == "pad":
        return _pad(node, x)
    raise ValueError(f"no shape rule for node kind {k!r}")


def output_dtype(node: Node, in_dtype: np.dtype) -> np.dtype:
    """Dtype of ``node``'s output: its ``out_dtype``, float32 at the float boundary, int32 for an
    accumulator (conv/fully connected without requantization), else its input's dtype."""
    if "out_dtype" in node.attrs:
        return np.dtype(node.attrs["out_dtype"])
    if node.kind in ("dequantize", "softmax"):
        return np.dtype(np.float32)
    if node.kind in ("conv", "fully_connected"):
        return np.dtype(np.int32)
    return np.dtype(in_dtype)


def infer(graph: Graph, input_shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor (graph inputs and node outputs) for the given input shapes.

    Raises ``ValueError`` naming the node whose rule fails (an input that does not fit it).
    """
    shapes = {name: tuple(int(d) for d in s) for name, s in input_shapes.items()}
    for node in graph.nodes:
        try:
            out = output_shape(node, [shapes[n] for n in node.inputs])
        except (ValueError, IndexError, KeyError) as exc:
            raise ValueError(f"node {node.name!r} ({node.kind}): {exc}") from None
        for name in node.outputs:
            shapes[name] = out
    return shapes
