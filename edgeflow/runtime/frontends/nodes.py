"""Constructors of IR nodes, one per kind, shared by the frontends (ONNX today, ``.tflite`` next).

Each returns an ``edgeflow.runtime.ir.Node`` with exactly the params and attrs its kernel reads
(the table in ``edgeflow.runtime.ir``). Scalars are kept at the precision they were given
(Python floats hold float32 and float64 values exactly), so kernels built from the node compute
what they would compute from the frontend's own values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeflow.runtime import shapes
from edgeflow.runtime.ir import Graph, Node, TensorSpec



@dataclass
class QInfo:
    """Quantization of a runtime integer tensor (per tensor)."""

    scale: float
    zp: int
    dtype: np.dtype


Activation = tuple[str | None, float | None, float | None]
NO_ACT: Activation = (None, None, None)


def requant(s_x: float, s_w: Any, s_y: float, zp: int, out_dtype: Any, act: Activation = NO_ACT) -> dict[str, Any]:
    """Requantization fields of a conv / fully connected node: int32 accumulator scaled by
    ``s_x · s_w[c] / s_y`` (per output channel when ``s_w`` has several values), plus the output
    zero point, dtype and fused activation (real bounds)."""
    return {"in_scale": s_x, "weight_scale": np.atleast_1d(np.asarray(s_w, dtype=np.float32)), "out_scale": s_y,
            "out_zero_point": int(zp), "out_dtype": np.dtype(out_dtype), "activation": list(act)}


def _split_requant(rq: dict[str, Any] | None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if rq is None:
        return {}, {}
    attrs = dict(rq)
    return {"weight_scale": attrs.pop("weight_scale")}, attrs


def quantize(name: str, x: str, y: str, scale: np.ndarray, zp: np.ndarray, axis: int) -> Node:
    """Float → integer at the input boundary; ``zp``'s dtype is the output dtype."""
    return Node("quantize", name, [x], [y], {"scale": np.asarray(scale, dtype=np.float32), "zero_point": np.asarray(zp)},
                {"axis": axis, "out_dtype": np.asarray(zp).dtype})


def dequantize(name: str, x: str, y: str, scale: Any, zp: Any, axis: int = 1) -> Node:
    return Node("dequantize", name, [x], [y], {"scale": np.asarray(scale, dtype=np.float32), "zero_point": np.asarray(zp)},
                {"axis": axis})


def softmax(name: str, x: str, y: str, axis: int, in_scale: float | None = None, in_zp: int | None = None) -> Node:
    return Node("softmax", name, [x], [y], {}, {"axis": axis, "in_scale": in_scale, "in_zero_point": in_zp})


def conv(name: str, x: str, y: str, w: np.ndarray, w_zp: Any, bias: np.ndarray | None, zp_x: int, x_dtype: Any,
         rq: dict[str, Any] | None, weight_bits: int, strides=None, pads=None, dilations=None, group: int = 1,
         auto_pad: str = "NOTSET") -> Node:
    params, attrs = _split_requant(rq)
    params.update(weight=np.asarray(w), weight_zero_point=np.asarray(w_zp, dtype=np.int64).reshape(-1))
    if bias is not None:
        params["bias"] = np.asarray(bias, dtype=np.int64).reshape(-1)
    attrs.update(in_zero_point=int(zp_x), in_dtype=np.dtype(x_dtype), strides=strides, pads=pads, dilations=dilations,
                 group=int(group), auto_pad=auto_pad, weight_bits=int(weight_bits))
    return Node("conv", name, [x], [y], params, attrs)


def fully_connected(name: str, a: str, y: str, w: np.ndarray | None, w_zp: Any, bias: np.ndarray | None, zp_a: int,
                    a_dtype: Any, rq: dict[str, Any] | None, weight_bits: int = 8, b_input: str | None = None,
                    b_dtype: Any = None) -> Node:
    """``w`` (K, N) constant, or ``None`` with ``b_input`` naming the second (runtime) operand."""
    params, attrs = _split_requant(rq)
    params["weight_zero_point"] = np.asarray(w_zp, dtype=np.int64).reshape(-1)
    if bias is not None:
        params["bias"] = np.asarray(bias, dtype=np.int64).reshape(-1)
    attrs.update(in_zero_point=int(zp_a), in_dtype=np.dtype(a_dtype))
    if w is None:
        attrs["b_dtype"] = np.dtype(b_dtype)
        return Node("fully_connected", name, [a, b_input], [y], params, attrs)
    params["weight"] = np.asarray(w)
    attrs["weight_bits"] = int(weight_bits)
    return Node("fully_connected", name, [a], [y], params, attrs)


def add(name: str, a: str, b: str | None, y: str, sa: float, zpa: int, sb: float, zpb: int, sy: float, zpy: int,
        out_dtype: Any, act: Activation = NO_ACT, const_b: np.ndarray | None = None) -> Node:
    """``a + b`` rescaled to the output; ``b`` is a runtime input, or ``None`` with ``const_b``."""
    params = {} if const_b is None else {"const_b": np.asarray(const_b)}
    return Node("add", name, [a] if b is None else [a, b], [y], params,
                {"a_scale": sa, "a_zero_point": int(zpa), "b_scale": sb, "b_zero_point": int(zpb), "out_scale": sy,
                 "out_zero_point": int(zpy), "out_dtype": np.dtype(out_dtype), "activation": list(act)})


def mul(name: str, a: str, b: str | None, y: str, sa: float, zpa: int, sb: float, zpb: int, sy: float, zpy: int,
        out_dtype: Any, act: Activation = NO_ACT, const_b: np.ndarray | None = None) -> Node:
    """``a · b`` rescaled to the output; ``b`` is a runtime input, or ``None`` with ``const_b``."""
    node = add(name, a, b, y, sa, zpa, sb, zpb, sy, zpy, out_dtype, act, const_b)
    node.kind = "mul"
    return node


def int_softmax(name: str, x: str, y: str, axis: int, beta: float, sx: float, zpx: int, sy: float, zpy: int,
                out_dtype: Any) -> Node:
    """Integer softmax along ``axis`` (int8 in, int8 out with scale 1/256, zero point -128)."""
    return Node("int_softmax", name, [x], [y], {},
                {"axis": int(axis), "beta": float(beta), "in_scale": sx, "in_zero_point": int(zpx), "out_scale": sy,
                 "out_zero_point": int(zpy), "out_dtype": np.dtype(out_dtype)})


def lut(name: str, x: str, y: str, function: str, sx: float, zpx: int, x_dtype: Any, sy: float, zpy: int,
        out_dtype: Any) -> Node:
    """A 256-entry table activation (``function``: "logistic" or "tanh") on 8-bit integers."""
    return Node("lut", name, [x], [y], {},
                {"function": function, "in_scale": sx, "in_zero_point": int(zpx), "in_dtype": np.dtype(x_dtype),
                 "out_scale": sy, "out_zero_point": int(zpy), "out_dtype": np.dtype(out_dtype)})


def hard_swish(name: str, x: str, y: str, sx: float, zpx: int, sy: float, zpy: int, out_dtype: Any,
               in_dtype: Any = np.int8, onnx_float: bool = False) -> Node:
    """TFLite's int8 HARD_SWISH; ``onnx_float``: an ONNX DQ → HardSwish → Q, whose onnx rounding is
    onnxruntime's float32 path (``ops.hard_swish``)."""
    return Node("hard_swish", name, [x], [y], {},
                {"in_scale": sx, "in_zero_point": int(zpx), "out_scale": sy, "out_zero_point": int(zpy),
                 "out_dtype": np.dtype(out_dtype), "in_dtype": np.dtype(in_dtype), "onnx_float": bool(onnx_float)})


def avg_pool(name: str, x: str, y: str, kernel, sx: float, zpx: int, sy: float, zpy: int, out_dtype: Any, strides=None,
             pads=None, auto_pad: str = "NOTSET", ceil_mode: int = 0, count_include_pad: int = 0) -> Node:
    return Node("avg_pool", name, [x], [y], {},
                {"kernel": list(kernel), "strides": strides, "pads": pads, "auto_pad": auto_pad, "ceil_mode": int(ceil_mode),
                 "count_include_pad": int(count_include_pad), "in_scale": sx, "in_zero_point": int(zpx), "out_scale": sy,
                 "out_zero_point": int(zpy), "out_dtype": np.dtype(out_dtype)})


def global_avg_pool(name: str, x: str, y: str, sx: float, zpx: int, sy: float, zpy: int, out_dtype: Any) -> Node:
    return Node("global_avg_pool", name, [x], [y], {},
                {"in_scale": sx, "in_zero_point": int(zpx), "out_scale": sy, "out_zero_point": int(zpy),
                 "out_dtype": np.dtype(out_dtype)})


def max_pool(name: str, x: str, y: str, kernel, strides=None, pads=None, auto_pad: str = "NOTSET", ceil_mode: int = 0,
             dilations=None) -> Node:
    return Node("max_pool", name, [x], [y], {},
                {"kernel": list(kernel), "strides": strides, "pads": pads, "auto_pad": auto_pad, "ceil_mode": int(ceil_mode),
                 "dilations": dilations})


def concat(name: str, xs: list[str], y: str, axis: int, in_params: list[tuple[float, int]], sy: float, zpy: int,
           out_dtype: Any) -> Node:
    """Inputs with (scale, zero point) other than the output's are rescaled before joining."""
    return Node("concat", name, xs, [y], {},
                {"axis": int(axis), "in_scales": [s for s, _ in in_params], "in_zero_points": [int(z) for _, z in in_params],
                 "out_scale": sy, "out_zero_point": int(zpy), "out_dtype": np.dtype(out_dtype)})


def rescale(name: str, x: str, y: str, sx: float, zpx: int, sy: float, zpy: int, out_dtype: Any,
            lo: float | None = None, hi: float | None = None) -> Node:
    return Node("rescale", name, [x], [y], {},
                {"in_scale": sx, "in_zero_point": int(zpx), "out_scale": sy, "out_zero_point": int(zpy),
                 "out_dtype": np.dtype(out_dtype), "lo": lo, "hi": hi})


def clamp(name: str, x: str, y: str, lo: float | None, hi: float | None, scale: float, zp: int, dtype: Any) -> Node:
    return Node("clamp", name, [x], [y], {},
                {"lo": lo, "hi": hi, "in_scale": scale, "in_zero_point": int(zp), "in_dtype": np.dtype(dtype)})


def reshape(name: str, x: str, y: str, shape=None, allowzero: int = 0, flatten_axis: int | None = None,
            squeeze_axes=None, unsqueeze_axes=None) -> Node:
    """Reshape, flatten (``flatten_axis``), squeeze, unsqueeze; ``unsqueeze_axes=[]`` is an identity."""
    return Node("reshape", name, [x], [y], {},
                {"shape": None if shape is None else [int(v) for v in shape], "allowzero": int(allowzero),
                 "flatten_axis": flatten_axis, "squeeze_axes": squeeze_axes, "unsqueeze_axes": unsqueeze_axes})


def transpose(name: str, x: str, y: str, perm=None) -> Node:
    return Node("transpose", name, [x], [y], {}, {"perm": perm})


def pad(name: str, x: str, y: str, pads, mode: str = "constant", value: int = 0, axes=None) -> Node:
    return Node("pad", name, [x], [y], {}, {"pads": [int(p) for p in pads], "mode": mode, "value": int(value), "axes": axes})


def tensor_specs(graph: Graph, qt: dict[str, QInfo]) -> dict[str, TensorSpec]:
    """Every runtime tensor's spec: dtype by the nodes' rules, static shape for one sample (batch 1;
    ``None`` throughout when an input has other symbolic dims or a node's shape rule fails at
    batch 1), quantization from the lowering (none for float tensors and for integer graph inputs,
    whose parameters come with each consuming node)."""
    dims = {gi.name: tuple(1 if (d is None and k == 0) else d for k, d in enumerate(gi.shape)) for gi in graph.inputs}
    static = None
    if all(d is not None for s in dims.values() for d in s):
        try:
            static = shapes.infer(graph, dims)
        except ValueError:
            static = None
    dtypes = {gi.name: gi.dtype for gi in graph.inputs}
    for node in graph.nodes:
        dt = shapes.output_dtype(node, dtypes[node.inputs[0]])
        for name in node.outputs:
            dtypes[name] = dt
    inputs = {gi.name for gi in graph.inputs}
    out = {}
    for name, dt in dtypes.items():
        q = qt.get(name) if name not in inputs and dt.kind in "iu" else None
        out[name] = TensorSpec(name, dt, None if static is None else static[name],
                               None if q is None else float(q.scale), None if q is None else int(q.zp))
    return out
