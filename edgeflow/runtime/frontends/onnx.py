"""ONNX frontend: a quantized ONNX model (QDQ or QOperator form) → the runtime IR (``Graph``).

QDQ: every ``DequantizeLinear`` of a runtime integer tensor becomes an *alias* (no compute); a
float op whose inputs are aliases (or dequantized constants) and whose output goes, optionally
through ``Relu``/``Clip``, into ``QuantizeLinear`` is lowered to one integer op writing the
quantized output (the activation becomes a clamp). Data-movement ops keep their input's
parameters; a ``DQ → op → Q`` with other parameters gets an explicit ``Rescale``.

QOperator: ``QLinearConv``, ``QLinearMatMul``, ``QGemm``, ``QLinearAdd``, ``QLinearAveragePool``,
``QLinearGlobalAveragePool``, ``ConvInteger``, ``MatMulInteger`` map one to one; ``MaxPool``,
``Flatten``, ``Reshape`` ... run on the integers.

Float appears only at the boundary: the input ``QuantizeLinear``, output ``DequantizeLinear``
(also of an int32 accumulator when a Conv/Gemm output is not requantized) and ``Softmax``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.runtime.errors import RuntimeModelError, UnsupportedOpError
from edgeflow.runtime.frontends import nodes as N
from edgeflow.runtime.frontends.nodes import QInfo
from edgeflow.runtime.ir import Graph, GraphInput, Node

WEIGHT_BITS_KEY = "edgeflow.weight_bits"
CODEBOOK_KEY = "edgeflow.codebook"  # {initializer: {"clusters", "index_bits", "scope"}} of clustered layers


@dataclass
class ConstQ:
    """A dequantized constant: integer values, scale(s), zero point(s), channel axis."""

    q: np.ndarray
    scale: np.ndarray
    zp: np.ndarray
    axis: int
    name: str


def read_model(path: str | Path):
    """onnx.load with one-line errors for missing, truncated or non-ONNX files."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise RuntimeModelError(f"{p}: no such file")
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # DecodeError, truncated protobuf, external data missing ...
        raise RuntimeModelError(f"{p}: not a readable ONNX model ({type(exc).__name__}: {str(exc)[:120]})") from None
    if not model.graph.node or model.ir_version == 0:
        raise RuntimeModelError(f"{p}: not an ONNX model (no graph nodes; truncated or another file type?)")
    return model


def _attrs(node) -> dict[str, Any]:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _np_dtype(elem_type: int) -> np.dtype:
    import onnx

    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))


class Lowerer:
    """Walks an ONNX graph once in order, emitting IR nodes into ``ops`` (``_op_<OpType>`` per
    ONNX op type) and recording each integer tensor's quantization in ``qt``."""

    def __init__(self, model) -> None:
        from onnx import numpy_helper

        self.model = model
        g = model.graph
        self.graph = g
        self.init: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.consumers: dict[str, list] = {}
        for n in g.node:
            for i in n.input:
                if i:
                    self.consumers.setdefault(i, []).append(n)
        self.graph_outputs = [o.name for o in g.output]
        self.qt: dict[str, QInfo] = {}
        self.alias: dict[str, str] = {}
        self.cq: dict[str, ConstQ] = {}
        self.floats: set[str] = set()
        self.per_axis: dict[str, tuple[bytes, bytes, int]] = {}  # per-axis quantized tensors -> (scale, zp, axis)
        self.nodes: list[Node] = []
        self.done: set[int] = set()
        self.dequantized: dict[str, str] = {}
        self.inputs: list[GraphInput] = []
        init_names = set(self.init)
        for vi in g.input:
            if vi.name in init_names:
                continue
            tt = vi.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
            self.inputs.append(GraphInput(vi.name, _np_dtype(tt.elem_type), dims))
            if _np_dtype(tt.elem_type).kind == "f":
                self.floats.add(vi.name)
            else:  # an integer input (QOperator models): its parameters come with each consuming node
                self.qt[vi.name] = QInfo(1.0, 0, _np_dtype(tt.elem_type))
        self.weight_bits: dict[str, int] = {}
        self.codebook_bits: dict[str, int] = {}
        for p in model.metadata_props:
            if p.key == WEIGHT_BITS_KEY:
                try:
                    self.weight_bits = {str(k): int(v) for k, v in json.loads(p.value).items()}
                except (ValueError, AttributeError):
                    raise RuntimeModelError(f"metadata {WEIGHT_BITS_KEY!r} is not a JSON object of bit-widths") from None
            if p.key == CODEBOOK_KEY:
                try:
                    self.codebook_bits = {str(k): int(v["index_bits"]) for k, v in json.loads(p.value).items()}
                except (ValueError, AttributeError, KeyError, TypeError):
                    raise RuntimeModelError(f"metadata {CODEBOOK_KEY!r} is not a JSON object of codebooks") from None

    # ------------------------------------------------------------------ helpers
    def _codebook(self, w_name: str) -> None:
        """Give the node just appended the ``codebook_bits`` of its weight (clustered layers only)."""
        if w_name in self.codebook_bits:
            self.nodes[-1].attrs["codebook_bits"] = self.codebook_bits[w_name]

    def scalar(self, name: str, node, what: str) -> np.ndarray:
        if name not in self.init:
            raise UnsupportedOpError(node.op_type, node.name, f"{what} {name!r} must be a constant")
        return self.init[name]

    def act(self, name: str, node) -> tuple[str, QInfo]:
        """The integer tensor behind a float (DQ alias) or integer input name."""
        if name in self.alias:
            name = self.alias[name]
        if name in self.qt:
            return name, self.qt[name]
        if name in self.floats:
            raise UnsupportedOpError(node.op_type, node.name, f"input {name!r} is float: this part of the graph "
                                     "is not quantized (the runtime needs an int8 QDQ or QOperator model)")
        raise UnsupportedOpError(node.op_type, node.name, f"input {name!r} is not a quantized tensor")

    def is_act(self, name: str) -> bool:
        return name in self.alias or name in self.qt

    def const(self, name: str, node, what: str) -> ConstQ:
        if name in self.cq:
            return self.cq[name]
        raise UnsupportedOpError(node.op_type, node.name, f"{what} {name!r} must be a quantized constant (DequantizeLinear of an initializer)")

    def new_qt(self, name: str, scale, zp, dtype) -> None:
        self.qt[name] = QInfo(float(np.float32(np.asarray(scale).reshape(-1)[0])), int(np.asarray(zp).reshape(-1)[0]), np.dtype(dtype))

    def out_quant(self, node, allow_act: bool = True):
        """Follow ``node``'s output through an optional Relu/Clip into QuantizeLinear(s).

        Returns (int_output_name, scale, zp, dtype, act) or None if the output is not requantized.
        """
        out = node.output[0]
        if out in self.graph_outputs:
            return None
        cons = self.consumers.get(out, [])
        act = (None, None, None)
        chain = []
        if allow_act and len(cons) == 1 and cons[0].op_type in ("Relu", "Clip") and cons[0].output[0] not in self.graph_outputs:
            a = cons[0]
            act = self.activation(a)
            chain.append(a)
            cons = self.consumers.get(a.output[0], [])
        if not cons or any(c.op_type != "QuantizeLinear" for c in cons):
            return None
        params = []
        for q in cons:
            s = self.scalar(q.input[1], q, "scale")
            zp = self.init[q.input[2]] if len(q.input) > 2 and q.input[2] else np.zeros((), np.uint8)
            if np.asarray(s).size != 1:
                return None
            params.append((float(np.asarray(s).reshape(-1)[0]), int(np.asarray(zp).reshape(-1)[0]), np.dtype(zp.dtype)))
        if any(p != params[0] for p in params):
            return None
        for n in chain + cons:
            self.done.add(id(n))
        first = cons[0].output[0]
        for other in cons[1:]:
            self.alias_int(other.output[0], first)
        s, zp, dt = params[0]
        return first, s, zp, dt, act

    def alias_int(self, name: str, target: str) -> None:
        """Make integer tensor ``name`` the same values as ``target`` (a zero-copy identity)."""
        self.nodes.append(N.reshape(f"{name}/identity", target, name, unsqueeze_axes=[]))
        self.qt[name] = self.qt[target]

    def activation(self, node):
        if node.op_type == "Relu":
            return ("relu", 0.0, None)
        at = _attrs(node)
        lo, hi = at.get("min"), at.get("max")
        if len(node.input) > 1 and node.input[1]:
            lo = self.real_const(node.input[1], node)
        if len(node.input) > 2 and node.input[2]:
            hi = self.real_const(node.input[2], node)
        return ("clip", None if lo is None else float(lo), None if hi is None else float(hi))

    def real_const(self, name, node) -> float:
        if name in self.cq:
            c = self.cq[name]
            return float((c.q.astype(np.float64) - c.zp.astype(np.float64)) * c.scale.astype(np.float64))
        return float(np.asarray(self.scalar(name, node, "limit")).reshape(-1)[0])

    def float_of(self, name: str) -> str:
        """A float tensor holding the dequantized value of alias ``name`` (emits one Dequantize)."""
        if name in self.floats:
            return name
        iname = self.alias[name]
        if name not in self.dequantized:
            info = self.qt[iname]
            self.nodes.append(N.dequantize(f"{name}/dequantize", iname, name, info.scale, info.zp))
            self.dequantized[name] = name
            self.floats.add(name)
        return name

    # ------------------------------------------------------------------ lowering
    def lower(self) -> list[Node]:
        for node in self.graph.node:
            if id(node) in self.done:
                continue
            fn = getattr(self, f"_op_{node.op_type}", None)
            if fn is None or node.domain not in ("", "ai.onnx", "com.microsoft"):
                raise UnsupportedOpError(node.op_type, node.name or node.output[0])
            try:
                fn(node)
            except RuntimeModelError:
                raise
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise UnsupportedOpError(node.op_type, node.name or node.output[0], str(exc)) from None
        for out in self.graph_outputs:
            if out in self.alias and out not in self.floats:
                self.float_of(out)
            if out not in self.qt and out not in self.floats:
                raise RuntimeModelError(f"graph output {out!r} is not produced by any supported op")
        return self.nodes

    # ---- constants and Q/DQ
    def _op_Constant(self, node):
        from onnx import numpy_helper

        at = node.attribute[0]
        if at.name != "value":
            raise UnsupportedOpError("Constant", node.name, f"attribute {at.name}")
        self.init[node.output[0]] = numpy_helper.to_array(at.t)

    def _qparams(self, node):
        s = np.asarray(self.scalar(node.input[1], node, "scale"), dtype=np.float32)
        zp = self.init[node.input[2]] if len(node.input) > 2 and node.input[2] else None
        return s, zp

    def _op_QuantizeLinear(self, node):
        x, y = node.input[0], node.output[0]
        s, zp = self._qparams(node)
        if zp is None:
            zp = np.zeros(s.shape, dtype=np.uint8)
        axis = _attrs(node).get("axis", 1)
        if x in self.init:
            from edgeflow.runtime import quant

            arr = self.init[x]
            sb, zb = s, zp
            if s.size > 1:
                shape = [1] * arr.ndim
                shape[axis % arr.ndim] = s.size
                sb, zb = s.reshape(shape), zp.reshape(shape)
            self.init[y] = quant.quantize_linear(arr, sb, zb, zp.dtype)
            return
        if s.size != 1:
            self._per_axis_quantize(node, s, zp, axis)
            return
        if x in self.floats:
            self.nodes.append(N.quantize(node.name or y, x, y, s, zp, axis))
            self.new_qt(y, s, zp, zp.dtype)
            return
        if x in self.alias:  # DQ → Q directly
            src, info = self.act(x, node)
            if np.float32(info.scale) == np.float32(s.reshape(-1)[0]) and info.zp == int(zp.reshape(-1)[0]) and info.dtype == zp.dtype:
                self.alias_int(y, src)
            else:
                self.nodes.append(N.rescale(node.name or y, src, y, info.scale, info.zp, s.reshape(-1)[0], zp.reshape(-1)[0], zp.dtype))
                self.new_qt(y, s, zp, zp.dtype)
            return
        raise UnsupportedOpError(node.op_type, node.name, f"input {x!r} comes from an op that is not lowered to integers")

    def _per_axis_quantize(self, node, s: np.ndarray, zp: np.ndarray, axis: int) -> None:
        """A per-axis QuantizeLinear of a float tensor whose every consumer is a DequantizeLinear with the
        same parameters (a quantization round trip at the float boundary); anything else is refused."""
        x, y = node.input[0], node.output[0]
        cons = self.consumers.get(y, [])
        if x not in self.floats or not cons or any(c.op_type != "DequantizeLinear" for c in cons) \
                or y in self.graph_outputs:
            raise UnsupportedOpError(node.op_type, node.name or y, "per-channel activation quantization (only "
                                     "QuantizeLinear -> DequantizeLinear pairs on float tensors are supported)")
        self.nodes.append(N.quantize(node.name or y, x, y, s, zp, axis))
        self.per_axis[y] = (s.tobytes(), np.asarray(zp).tobytes(), axis)

    def _op_DequantizeLinear(self, node):
        x, y = node.input[0], node.output[0]
        s, zp = self._qparams(node)
        axis = _attrs(node).get("axis", 1)
        if x in self.init:
            q = self.init[x]
            zp_arr = np.zeros(s.shape, dtype=np.int64) if zp is None else np.asarray(zp, dtype=np.int64)
            self.cq[y] = ConstQ(q, s.reshape(-1), zp_arr.reshape(-1), axis, x)
            return
        if x in self.per_axis:
            if self.per_axis[x] != (s.tobytes(), np.asarray(zp).tobytes(), axis):
                raise UnsupportedOpError(node.op_type, node.name or y, "per-axis parameters differ from the QuantizeLinear's")
            self.nodes.append(N.dequantize(node.name or y, x, y, s, zp, axis))
            self.floats.add(y)
            return
        src, info = self.act(x, node)
        if s.size != 1:
            raise UnsupportedOpError(node.op_type, node.name or y, "per-channel activation dequantization")
        zpv = 0 if zp is None else int(np.asarray(zp).reshape(-1)[0])
        if np.float32(s.reshape(-1)[0]) != np.float32(info.scale) or zpv != info.zp:
            # parameters differ from the producer's: record the DQ's own view of the integers
            self.qt[src + "@" + y] = QInfo(float(s.reshape(-1)[0]), zpv, info.dtype)
            self.alias_int(src + "@" + y, src)
            self.qt[src + "@" + y] = QInfo(float(s.reshape(-1)[0]), zpv, info.dtype)
            src = src + "@" + y
        self.alias[y] = src

    # ---- compute ops (QDQ form)
    def _conv(self, node, x_name, xinfo: QInfo, w: ConstQ, bias_q: np.ndarray | None, oq, float_bias=None):
        s_w = np.broadcast_to(w.scale, (w.q.shape[0],)) if w.scale.size > 1 else w.scale
        if w.scale.size > 1 and w.axis not in (0, -w.q.ndim):
            raise ValueError("per-channel weights must be quantized along the output-channel axis")
        if float_bias is not None:  # an unquantized float bias: quantize it as the device would
            bias_q = np.rint(float_bias.astype(np.float64) / (np.float64(xinfo.scale) * s_w.astype(np.float64))).astype(np.int64)
        kw = _conv_attrs(node, w.q.ndim - 2)
        bits = self.weight_bits.get(w.name, 8 * w.q.itemsize)
        if oq is None:
            y = node.output[0]
            self.nodes.append(N.conv(node.name or y, x_name, y + "/acc", w.q, w.zp, bias_q, xinfo.zp, xinfo.dtype, None, bits, **kw))
            self._codebook(w.name)
            self.qt[y + "/acc"] = QInfo(1.0, 0, np.dtype(np.int32))
            self.nodes.append(N.dequantize(y + "/dequantize", y + "/acc", y, np.float32(xinfo.scale) * s_w.astype(np.float32), 0 * w.zp, axis=1))
            self.floats.add(y)
        else:
            yname, sy, zpy, dt, act = oq
            rq = N.requant(xinfo.scale, s_w, sy, zpy, dt, act)
            self.nodes.append(N.conv(node.name or yname, x_name, yname, w.q, w.zp, bias_q, xinfo.zp, xinfo.dtype, rq, bits, **kw))
            self._codebook(w.name)
            self.new_qt(yname, sy, zpy, dt)

    def _bias(self, node, idx):
        if len(node.input) <= idx or not node.input[idx]:
            return None, None
        b = node.input[idx]
        if b in self.cq:
            c = self.cq[b]
            return (c.q.astype(np.int64) - c.zp).reshape(-1), None
        if b in self.init:
            return None, self.init[b].reshape(-1)
        raise UnsupportedOpError(node.op_type, node.name, f"bias {b!r} must be a constant")

    def _op_Conv(self, node):
        x_name, xinfo = self.act(node.input[0], node)
        w = self.const(node.input[1], node, "weight")
        bias_q, float_bias = self._bias(node, 2)
        self._conv(node, x_name, xinfo, w, bias_q, self.out_quant(node), float_bias)

    def _fc(self, node, a_name, ainfo, wq: np.ndarray, w_scale, w_zp, w_name, bias_q, oq, float_bias=None):
        k, n = wq.shape
        s_w = np.broadcast_to(np.asarray(w_scale, np.float32).reshape(-1), (n,)) if np.size(w_scale) > 1 else np.asarray(w_scale, np.float32).reshape(-1)
        if float_bias is not None:
            bias_q = np.rint(float_bias.astype(np.float64) / (np.float64(ainfo.scale) * s_w.astype(np.float64))).astype(np.int64)
        y = node.output[0]
        bits = self.weight_bits.get(w_name, 8 * wq.itemsize)
        if oq is None:
            self.nodes.append(N.fully_connected(node.name or y, a_name, y + "/acc", wq, w_zp, bias_q, ainfo.zp, ainfo.dtype, None, bits))
            self._codebook(w_name)
            self.qt[y + "/acc"] = QInfo(1.0, 0, np.dtype(np.int32))
            self.nodes.append(N.dequantize(y + "/dequantize", y + "/acc", y, np.float32(ainfo.scale) * s_w, np.zeros(s_w.shape, np.int32), axis=-1))
            self.floats.add(y)
        else:
            yname, sy, zpy, dt, act = oq
            self.nodes.append(N.fully_connected(node.name or yname, a_name, yname, wq, w_zp, bias_q, ainfo.zp, ainfo.dtype,
                                              N.requant(ainfo.scale, s_w, sy, zpy, dt, act), bits))
            self._codebook(w_name)
            self.new_qt(yname, sy, zpy, dt)

    def _op_Gemm(self, node):
        at = _attrs(node)
        if at.get("transA", 0) or at.get("alpha", 1.0) != 1.0 or at.get("beta", 1.0) != 1.0:
            raise UnsupportedOpError(node.op_type, node.name, "transA / alpha / beta other than defaults")
        a_name, ainfo = self.act(node.input[0], node)
        w = self.const(node.input[1], node, "weight")
        wq, zp = w.q, w.zp
        if at.get("transB", 0):
            wq = wq.T
        bias_q, float_bias = self._bias(node, 2)
        self._fc(node, a_name, ainfo, wq, w.scale, zp, w.name, bias_q, self.out_quant(node), float_bias)

    def _op_MatMul(self, node):
        a_name, ainfo = self.act(node.input[0], node)
        b = node.input[1]
        if b in self.cq:
            w = self.cq[b]
            if w.q.ndim != 2:
                raise ValueError("constant matmul operand must be 2-D")
            self._fc(node, a_name, ainfo, w.q, w.scale, w.zp, w.name, None, self.out_quant(node))
            return
        b_name, binfo = self.act(b, node)
        oq = self.out_quant(node)
        if oq is None:
            raise UnsupportedOpError(node.op_type, node.name, "activation matmul output must be quantized")
        yname, sy, zpy, dt, act = oq
        self.nodes.append(N.fully_connected(node.name or yname, a_name, yname, None, binfo.zp, None, ainfo.zp, ainfo.dtype,
                                          N.requant(ainfo.scale, np.float32(binfo.scale), sy, zpy, dt, act), b_input=b_name,
                                          b_dtype=binfo.dtype))
        self.new_qt(yname, sy, zpy, dt)

    def _op_Mul(self, node):
        self._op_Add(node, N.mul)

    def _op_Sigmoid(self, node):
        self._qdq_activation(node, "sigmoid", lambda name, x, y, info, sy, zpy, dt: N.lut(
            name, x, y, "logistic", info.scale, info.zp, info.dtype, sy, zpy, dt))

    def _op_HardSwish(self, node):
        self._qdq_activation(node, "hard-swish", lambda name, x, y, info, sy, zpy, dt: N.hard_swish(
            name, x, y, info.scale, info.zp, sy, zpy, dt, in_dtype=info.dtype, onnx_float=True))

    def _qdq_activation(self, node, what: str, make) -> None:
        """DQ → float activation → Q: ``make(name, x, y, input info, s_y, zp_y, dtype)`` builds the integer node."""
        oq = self.out_quant(node, allow_act=False)
        if oq is None:
            raise UnsupportedOpError(node.op_type, node.name, f"output is not quantized (float {what})")
        yname, sy, zpy, dt, _ = oq
        x_name, info = self.act(node.input[0], node)
        self.nodes.append(make(node.name or yname, x_name, yname, info, sy, zpy, dt))
        self.new_qt(yname, sy, zpy, dt)

    def _op_Add(self, node, make=N.add):
        oq = self.out_quant(node)
        if oq is None:
            raise UnsupportedOpError(node.op_type, node.name, f"output is not quantized (float {node.op_type.lower()})")
        yname, sy, zpy, dt, act = oq
        a, b = node.input[0], node.input[1]
        if not self.is_act(a):
            a, b = b, a
        a_name, ainfo = self.act(a, node)
        if self.is_act(b):
            b_name, binfo = self.act(b, node)
            op = make(node.name or yname, a_name, b_name, yname, ainfo.scale, ainfo.zp, binfo.scale, binfo.zp, sy, zpy, dt, act)
        else:
            c = self.const(b, node, "addend")
            if c.scale.size != 1:
                raise ValueError("per-channel constant addend")
            op = make(node.name or yname, a_name, None, yname, ainfo.scale, ainfo.zp, float(c.scale[0]), int(c.zp[0]), sy,
                      zpy, dt, act, const_b=c.q)
        self.nodes.append(op)
        self.new_qt(yname, sy, zpy, dt)

    def _pool_common(self, node):
        x_name, xinfo = self.act(node.input[0], node)
        oq = self.out_quant(node, allow_act=False)
        if oq is None:
            raise UnsupportedOpError(node.op_type, node.name, "output is not quantized")
        return x_name, xinfo, oq

    def _op_AveragePool(self, node):
        x_name, xinfo, (yname, sy, zpy, dt, _) = self._pool_common(node)
        at = _attrs(node)
        self.nodes.append(N.avg_pool(node.name or yname, x_name, yname, at["kernel_shape"], xinfo.scale, xinfo.zp, sy, zpy, dt,
                                   at.get("strides"), at.get("pads"), _s(at.get("auto_pad", "NOTSET")),
                                   at.get("ceil_mode", 0), at.get("count_include_pad", 0)))
        self.new_qt(yname, sy, zpy, dt)

    def _op_GlobalAveragePool(self, node):
        x_name, xinfo, (yname, sy, zpy, dt, _) = self._pool_common(node)
        self.nodes.append(N.global_avg_pool(node.name or yname, x_name, yname, xinfo.scale, xinfo.zp, sy, zpy, dt))
        self.new_qt(yname, sy, zpy, dt)

    def _op_Concat(self, node):
        oq = self.out_quant(node, allow_act=False)
        if oq is None:
            raise UnsupportedOpError(node.op_type, node.name, "output is not quantized")
        yname, sy, zpy, dt, _ = oq
        names, params = [], []
        for i in node.input:
            n, info = self.act(i, node)
            names.append(n)
            params.append((info.scale, info.zp))
        self.nodes.append(N.concat(node.name or yname, names, yname, _attrs(node)["axis"], params, sy, zpy, dt))
        self.new_qt(yname, sy, zpy, dt)

    # ---- activations on their own
    def _op_Relu(self, node):
        self._clamp(node)

    def _op_Clip(self, node):
        self._clamp(node)

    def _clamp(self, node):
        x_name, xinfo = self.act(node.input[0], node)
        kind, lo, hi = self.activation(node)
        oq = self.out_quant(node, allow_act=False)
        if oq is None or (np.float32(oq[1]) == np.float32(xinfo.scale) and oq[2] == xinfo.zp and oq[3] == xinfo.dtype):
            y = oq[0] if oq else node.output[0] + "/q"
            self.nodes.append(N.clamp(node.name or y, x_name, y, lo, hi, xinfo.scale, xinfo.zp, xinfo.dtype))
            self.qt[y] = xinfo
            if oq is None:
                self.alias[node.output[0]] = y
            return
        yname, sy, zpy, dt, _ = oq
        self.nodes.append(N.rescale(node.name or yname, x_name, yname, xinfo.scale, xinfo.zp, sy, zpy, dt, lo, hi))
        self.new_qt(yname, sy, zpy, dt)

    # ---- data movement (QDQ and QOperator)
    def _movement(self, node, make):
        if node.input[0] in self.floats:  # float data movement at the input boundary (e.g. Flatten)
            self.nodes.append(make(node.input[0], node.output[0]))
            self.floats.add(node.output[0])
            return
        x_name, xinfo = self.act(node.input[0], node)
        oq = self.out_quant(node, allow_act=False)
        if oq is None:
            y = node.output[0] if (node.input[0] not in self.alias) else node.output[0] + "/q"
            self.nodes.append(make(x_name, y))
            self.qt[y] = xinfo
            if y != node.output[0]:
                self.alias[node.output[0]] = y
            return
        yname, sy, zpy, dt, _ = oq
        if np.float32(sy) == np.float32(xinfo.scale) and zpy == xinfo.zp and dt == xinfo.dtype:
            self.nodes.append(make(x_name, yname))
            self.qt[yname] = xinfo
        else:
            mid = yname + "/moved"
            self.nodes.append(make(x_name, mid))
            self.qt[mid] = xinfo
            self.nodes.append(N.rescale(yname + "/rescale", mid, yname, xinfo.scale, xinfo.zp, sy, zpy, dt))
            self.new_qt(yname, sy, zpy, dt)

    def _op_Reshape(self, node):
        shape = self.scalar(node.input[1], node, "shape")
        az = _attrs(node).get("allowzero", 0)
        self._movement(node, lambda x, y: N.reshape(node.name or y, x, y, shape=shape, allowzero=az))

    def _op_Flatten(self, node):
        ax = _attrs(node).get("axis", 1)
        self._movement(node, lambda x, y: N.reshape(node.name or y, x, y, flatten_axis=ax))

    def _axes(self, node):
        at = _attrs(node)
        if "axes" in at:
            return list(at["axes"])
        if len(node.input) > 1 and node.input[1]:
            return [int(v) for v in np.asarray(self.scalar(node.input[1], node, "axes")).reshape(-1)]
        return None

    def _op_Squeeze(self, node):
        axes = self._axes(node)
        self._movement(node, lambda x, y: N.reshape(node.name or y, x, y, squeeze_axes=axes))

    def _op_Unsqueeze(self, node):
        axes = self._axes(node)
        self._movement(node, lambda x, y: N.reshape(node.name or y, x, y, unsqueeze_axes=axes))

    def _op_Transpose(self, node):
        perm = _attrs(node).get("perm")
        self._movement(node, lambda x, y: N.transpose(node.name or y, x, y, perm))

    def _op_Identity(self, node):
        if node.input[0] in self.init:
            self.init[node.output[0]] = self.init[node.input[0]]
            return
        if node.input[0] in self.cq:
            self.cq[node.output[0]] = self.cq[node.input[0]]
            return
        self._movement(node, lambda x, y: N.reshape(node.name or y, x, y, unsqueeze_axes=[]))

    _op_Dropout = _op_Identity

    def _op_MaxPool(self, node):
        at = _attrs(node)
        if len(node.output) > 1 and node.output[1]:
            raise UnsupportedOpError(node.op_type, node.name, "Indices output")
        if at.get("storage_order", 0):
            raise UnsupportedOpError(node.op_type, node.name, "storage_order=1")
        self._movement(node, lambda x, y: N.max_pool(node.name or y, x, y, at["kernel_shape"], at.get("strides"), at.get("pads"),
                                                     _s(at.get("auto_pad", "NOTSET")), at.get("ceil_mode", 0),
                                                     at.get("dilations")))

    def _op_Pad(self, node):
        at = _attrs(node)
        mode = _s(at.get("mode", "constant"))
        pads = at.get("pads")
        if pads is None:
            pads = [int(v) for v in np.asarray(self.scalar(node.input[1], node, "pads")).reshape(-1)]
        x_name, xinfo = self.act(node.input[0], node)
        value = xinfo.zp
        if len(node.input) > 2 and node.input[2]:
            v = node.input[2]
            if v in self.cq:
                real = self.real_const(v, node)
            else:
                real = float(np.asarray(self.scalar(v, node, "constant_value")).reshape(-1)[0])
            from edgeflow.runtime import quant

            value = int(quant.quantize_linear(np.float32(real), np.float32(xinfo.scale), xinfo.zp, xinfo.dtype))
        axes = None
        if len(node.input) > 3 and node.input[3]:
            axes = [int(a) for a in np.asarray(self.scalar(node.input[3], node, "axes")).reshape(-1)]
        self._movement(node, lambda x, y: N.pad(node.name or y, x, y, pads, mode, value, axes))

    def _op_Softmax(self, node):
        x = node.input[0]
        axis = _attrs(node).get("axis", -1)
        y = node.output[0]
        oq = self.out_quant(node, allow_act=False) if x in self.alias else None
        if oq is not None:  # DQ -> Softmax -> Q: integer in, integer out
            yname, sy, zpy, dt, _ = oq
            iname, info = self.act(x, node)
            self.nodes.append(N.int_softmax(node.name or yname, iname, yname, axis, 1.0, info.scale, info.zp, sy, zpy, dt))
            self.new_qt(yname, sy, zpy, dt)
            return
        if x in self.alias:
            iname, info = self.act(x, node)
            self.nodes.append(N.softmax(node.name or y, iname, y, axis, info.scale, info.zp))
        elif x in self.floats:
            self.nodes.append(N.softmax(node.name or y, x, y, axis))
        else:
            raise UnsupportedOpError(node.op_type, node.name, f"input {x!r} is not available")
        self.floats.add(y)

    # ---- QOperator
    def _qop_out(self, node, s_name, zp_name):
        y = node.output[0]
        s = np.asarray(self.scalar(s_name, node, "scale"), np.float32)
        zp = self.init[zp_name] if zp_name else np.zeros((), np.uint8)
        self.new_qt(y, s, zp, zp.dtype)
        return y, float(s.reshape(-1)[0]), int(np.asarray(zp).reshape(-1)[0]), np.dtype(zp.dtype)

    def _in(self, node, i):
        return node.input[i] if len(node.input) > i and node.input[i] else ""

    def _op_QLinearConv(self, node):
        i = node.input
        x_name = i[0]
        if x_name not in self.qt:
            raise UnsupportedOpError(node.op_type, node.name, f"input {x_name!r} is not an integer tensor")
        sx = float(np.asarray(self.scalar(i[1], node, "x_scale")).reshape(-1)[0])
        zpx_arr = self.init[i[2]] if i[2] else np.zeros((), np.uint8)
        xinfo = QInfo(sx, int(np.asarray(zpx_arr).reshape(-1)[0]), self.qt[x_name].dtype)
        wq = self.scalar(i[3], node, "w")
        ws = np.asarray(self.scalar(i[4], node, "w_scale"), np.float32).reshape(-1)
        wzp = np.asarray(self.init[i[5]], np.int64).reshape(-1) if i[5] else np.zeros(1, np.int64)
        w = ConstQ(wq, ws, wzp, 0, i[3])
        bias = np.asarray(self.init[self._in(node, 8)], np.int64) if self._in(node, 8) else None
        y, sy, zpy, dt = self._qop_out(node, i[6], self._in(node, 7))
        self._conv(node, x_name, xinfo, w, bias, (y, sy, zpy, dt, (None, None, None)))

    def _op_ConvInteger(self, node):
        x_name = node.input[0]
        if x_name not in self.qt:
            raise UnsupportedOpError(node.op_type, node.name, f"input {x_name!r} is not an integer tensor")
        xzp = int(np.asarray(self.init[self._in(node, 2)]).reshape(-1)[0]) if self._in(node, 2) else 0
        wq = self.scalar(node.input[1], node, "w")
        wzp = np.asarray(self.init[self._in(node, 3)], np.int64).reshape(-1) if self._in(node, 3) else np.zeros(1, np.int64)
        y = node.output[0]
        self.nodes.append(N.conv(node.name or y, x_name, y, wq, wzp, None, xzp, self.qt[x_name].dtype, None,
                               self.weight_bits.get(node.input[1], 8), **_conv_attrs(node, wq.ndim - 2)))
        self.qt[y] = QInfo(1.0, 0, np.dtype(np.int32))

    def _op_MatMulInteger(self, node):
        a = node.input[0]
        if a not in self.qt:
            raise UnsupportedOpError(node.op_type, node.name, f"input {a!r} is not an integer tensor")
        azp = int(np.asarray(self.init[self._in(node, 2)]).reshape(-1)[0]) if self._in(node, 2) else 0
        bzp = np.asarray(self.init[self._in(node, 3)], np.int64).reshape(-1) if self._in(node, 3) else np.zeros(1, np.int64)
        y = node.output[0]
        b = node.input[1]
        if b in self.init:
            op = N.fully_connected(node.name or y, a, y, self.init[b], bzp, None, azp, self.qt[a].dtype, None, self.weight_bits.get(b, 8))
        else:
            op = N.fully_connected(node.name or y, a, y, None, bzp, None, azp, self.qt[a].dtype, None, b_input=b, b_dtype=self.qt[b].dtype)
        self.nodes.append(op)
        self.qt[y] = QInfo(1.0, 0, np.dtype(np.int32))

    def _op_QLinearMatMul(self, node):
        i = node.input
        a = i[0]
        if a not in self.qt:
            raise UnsupportedOpError(node.op_type, node.name, f"input {a!r} is not an integer tensor")
        sa = float(np.asarray(self.scalar(i[1], node, "a_scale")).reshape(-1)[0])
        zpa = int(np.asarray(self.init[i[2]]).reshape(-1)[0])
        bs = np.asarray(self.scalar(i[4], node, "b_scale"), np.float32).reshape(-1)
        bzp = np.asarray(self.init[i[5]], np.int64).reshape(-1)
        y, sy, zpy, dt = self._qop_out(node, i[6], i[7])
        ainfo = QInfo(sa, zpa, self.qt[a].dtype)
        if i[3] in self.init:
            self._fc(node, a, ainfo, self.init[i[3]], bs, bzp, i[3], None, (y, sy, zpy, dt, (None, None, None)))
        else:
            self.nodes.append(N.fully_connected(node.name or y, a, y, None, bzp, None, zpa, ainfo.dtype,
                                              N.requant(sa, bs, sy, zpy, dt), b_input=i[3], b_dtype=self.qt[i[3]].dtype))

    def _op_QGemm(self, node):
        at = _attrs(node)
        i = node.input
        if at.get("transA", 0) or at.get("alpha", 1.0) != 1.0:
            raise UnsupportedOpError(node.op_type, node.name, "transA / alpha other than defaults")
        if len(i) < 8 or not i[7]:
            raise UnsupportedOpError(node.op_type, node.name, "float output (no y_scale)")
        a = i[0]
        if a not in self.qt:
            raise UnsupportedOpError(node.op_type, node.name, f"input {a!r} is not an integer tensor")
        sa = float(np.asarray(self.scalar(i[1], node, "a_scale")).reshape(-1)[0])
        zpa = int(np.asarray(self.init[i[2]]).reshape(-1)[0])
        wq = self.scalar(i[3], node, "B")
        if at.get("transB", 0):
            wq = wq.T
        bs = np.asarray(self.scalar(i[4], node, "b_scale"), np.float32).reshape(-1)
        bzp = np.asarray(self.init[i[5]], np.int64).reshape(-1)
        bias = np.asarray(self.init[i[6]], np.int64) if i[6] else None
        y, sy, zpy, dt = self._qop_out(node, i[7], self._in(node, 8))
        self._fc(node, a, QInfo(sa, zpa, self.qt[a].dtype), wq, bs, bzp, i[3], bias, (y, sy, zpy, dt, (None, None, None)))

    def _op_QLinearMul(self, node):
        self._op_QLinearAdd(node, N.mul)

    def _qlinear_unary(self, node):
        """``(x, s_x, zp_x, y, s_y, zp_y, dtype_y)`` of a QLinear op with inputs ``x, s_x, zp_x, s_y, zp_y``."""
        i = node.input
        sx = float(np.asarray(self.scalar(i[1], node, "X_scale")).reshape(-1)[0])
        zpx = int(np.asarray(self.init[i[2]]).reshape(-1)[0]) if i[2] else 0
        y, sy, zpy, dt = self._qop_out(node, i[3], self._in(node, 4))
        if i[0] not in self.qt:
            raise UnsupportedOpError(node.op_type, node.name, "input is not an integer tensor")
        return i[0], sx, zpx, y, sy, zpy, dt

    def _op_QLinearSigmoid(self, node):
        x, sx, zpx, y, sy, zpy, dt = self._qlinear_unary(node)
        self.nodes.append(N.lut(node.name or y, x, y, "logistic", sx, zpx, self.qt[x].dtype, sy, zpy, dt))

    def _op_QLinearSoftmax(self, node):
        x, sx, zpx, y, sy, zpy, dt = self._qlinear_unary(node)
        self.nodes.append(N.int_softmax(node.name or y, x, y, _attrs(node).get("axis", -1), 1.0, sx, zpx, sy, zpy, dt))

    def _op_QLinearAdd(self, node, make=N.add):
        i = node.input
        sa = float(np.asarray(self.scalar(i[1], node, "A_scale")).reshape(-1)[0])
        zpa = int(np.asarray(self.init[i[2]]).reshape(-1)[0]) if i[2] else 0
        sb = float(np.asarray(self.scalar(i[4], node, "B_scale")).reshape(-1)[0])
        zpb = int(np.asarray(self.init[i[5]]).reshape(-1)[0]) if i[5] else 0
        y, sy, zpy, dt = self._qop_out(node, i[6], self._in(node, 7))
        a, b = i[0], i[3]
        if a in self.qt and b in self.qt:
            self.nodes.append(make(node.name or y, a, b, y, sa, zpa, sb, zpb, sy, zpy, dt))
        elif a in self.qt and b in self.init:
            self.nodes.append(make(node.name or y, a, None, y, sa, zpa, sb, zpb, sy, zpy, dt, const_b=self.init[b]))
        elif b in self.qt and a in self.init:
            self.nodes.append(make(node.name or y, b, None, y, sb, zpb, sa, zpa, sy, zpy, dt, const_b=self.init[a]))
        else:
            raise UnsupportedOpError(node.op_type, node.name, "inputs are not integer tensors")

    def _qpool_in(self, node):
        i = node.input
        if i[0] not in self.qt:
            raise UnsupportedOpError(node.op_type, node.name, f"input {i[0]!r} is not an integer tensor")
        if _attrs(node).get("channels_last", 0):
            raise UnsupportedOpError(node.op_type, node.name, "channels_last=1")
        sx = float(np.asarray(self.scalar(i[1], node, "x_scale")).reshape(-1)[0])
        zpx = int(np.asarray(self.init[i[2]]).reshape(-1)[0]) if i[2] else 0
        y, sy, zpy, dt = self._qop_out(node, i[3], self._in(node, 4))
        return i[0], sx, zpx, y, sy, zpy, dt

    def _op_QLinearGlobalAveragePool(self, node):
        x, sx, zpx, y, sy, zpy, dt = self._qpool_in(node)
        self.nodes.append(N.global_avg_pool(node.name or y, x, y, sx, zpx, sy, zpy, dt))

    def _op_QLinearAveragePool(self, node):
        x, sx, zpx, y, sy, zpy, dt = self._qpool_in(node)
        at = _attrs(node)
        self.nodes.append(N.avg_pool(node.name or y, x, y, at["kernel_shape"], sx, zpx, sy, zpy, dt, at.get("strides"),
                                   at.get("pads"), _s(at.get("auto_pad", "NOTSET")), at.get("ceil_mode", 0),
                                   at.get("count_include_pad", 0)))


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _conv_attrs(node, nd: int) -> dict[str, Any]:
    """Conv geometry attributes of an ONNX Conv / QLinearConv / ConvInteger node (1-D or 2-D)."""
    if nd not in (1, 2):
        raise ValueError(f"{nd}-D convolution")
    at = _attrs(node)
    return dict(strides=at.get("strides"), pads=at.get("pads"), dilations=at.get("dilations"), group=at.get("group", 1),
                auto_pad=_s(at.get("auto_pad", "NOTSET")))


def to_ir(model) -> Graph:
    """Validate (``frontends.validate``) and lower an ``onnx.ModelProto`` (QDQ or QOperator) to the
    runtime's IR."""
    from edgeflow.runtime.frontends.validate import validate

    validate(model)
    low = Lowerer(model)
    nodes = low.lower()
    graph = Graph(low.inputs, low.graph_outputs, nodes, {})
    graph.tensors = N.tensor_specs(graph, low.qt)
    return graph


def load(path: str | Path) -> Graph:
    """Read a quantized ONNX file and lower it to the runtime's IR (one-line errors)."""
    return to_ir(read_model(path))
