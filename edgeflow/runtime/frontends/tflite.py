"""TFLite frontend: an int8 ``.tflite`` flatbuffer → the runtime IR (``Graph``).

The file is parsed with the ``tflite`` package (the flatbuffers-generated TFLite schema). Ops:
CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD, MUL, AVERAGE_POOL_2D, MAX_POOL_2D, MEAN (over
height and width), RESHAPE, SQUEEZE, CONCATENATION, PAD, QUANTIZE, DEQUANTIZE, SOFTMAX, LOGISTIC,
TANH, HARD_SWISH, with their fused activations (RELU, RELU6, RELU_N1_TO_1). Anything else is refused with one line naming the
op and its index; so is a model whose tensors between the boundary ops are not integers ("not an
int8 model") and a truncated or corrupt file.

Layout: TFLite tensors are NHWC; the runtime's conv and pool kernels read NCHW. A 4-D tensor is
kept in NCHW from the first conv/pool on; a ``transpose`` node converts where an op needs NHWC
(reshape, squeeze, fully connected, softmax, graph outputs) or NCHW (a 4-D graph input). Graph
inputs and outputs keep the file's own shapes, names and dtypes; dimension 0 is the batch
(symbolic, so a batch of samples runs at once). Programs from ``.tflite`` files are meant for
``tflm`` rounding: bit-equal to LiteRT's reference kernels (``OpResolverType.BUILTIN_REF``),
which compute what TFLite Micro computes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgeflow.runtime.errors import RuntimeModelError, UnsupportedOpError
from edgeflow.runtime.frontends import nodes as N
from edgeflow.runtime.frontends.nodes import QInfo
from edgeflow.runtime.ir import Graph, GraphInput, Node

IDENTIFIER = b"TFL3"
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8,
           10: np.float64}
_ACTIVATIONS: dict[int, N.Activation] = {0: N.NO_ACT, 1: ("relu", 0.0, None), 2: ("clip", -1.0, 1.0),
                                         3: ("clip", 0.0, 6.0)}
TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]
_NHWC_AXIS_IN_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}


def is_tflite(path: str | Path) -> bool:
    """True for a ``.tflite`` path or a file carrying the ``TFL3`` flatbuffer identifier."""
    path = Path(path)
    if path.suffix == ".tflite":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == IDENTIFIER


@dataclass
class TfTensor:
    """One tensor of the subgraph: dtype, shape, quantization (per tensor or per channel), data."""

    index: int
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    scale: np.ndarray  # float32, empty when not quantized
    zp: np.ndarray  # int64
    qdim: int
    data: np.ndarray | None  # constant contents (None: a runtime tensor)

    @property
    def quantized(self) -> bool:
        return self.scale.size > 0

    def q(self) -> QInfo:
        return QInfo(float(self.scale[0]), int(self.zp[0]), self.dtype)


def _vector(length: int, limit: int, what: str) -> int:
    if length < 0 or length > limit:
        raise RuntimeModelError(f"{what}: length {length} is beyond the file: truncated or corrupt .tflite")
    return length


def read_model(path: str | Path) -> tuple[bytes, Any]:
    """The file's bytes and its ``tflite.Model`` root; one-line errors for files that are not TFLite."""
    import tflite

    path = Path(path)
    if not path.is_file():
        raise RuntimeModelError(f"{path}: no such file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        raise RuntimeModelError(f"{path}: not a TFLite flatbuffer (no {IDENTIFIER.decode()} identifier)")
    if struct.unpack_from("<I", data, 0)[0] + 4 > len(data):
        raise RuntimeModelError(f"{path}: truncated .tflite file ({len(data)} bytes)")
    return data, tflite.Model.GetRootAsModel(data, 0)


class Lowerer:
    """Walks subgraph 0 of a ``tflite.Model`` in operator order and emits IR nodes."""

    def __init__(self, data: bytes, model: Any) -> None:
        import tflite

        self.tfl = tflite
        self.limit = len(data) // 4
        if _vector(model.SubgraphsLength(), self.limit, "subgraphs") != 1:
            raise RuntimeModelError(f"the model has {model.SubgraphsLength()} subgraphs; only single-subgraph "
                                    "models (no control flow) are supported")
        self.model = model
        self.sg = model.Subgraphs(0)
        self.tensors = [self._tensor(i) for i in range(_vector(self.sg.TensorsLength(), self.limit, "tensors"))]
        self.names = self._unique_names()
        self.nodes: list[Node] = []
        self.qt: dict[str, QInfo] = {}
        self.layout: dict[int, str] = {}  # runtime tensor index -> "nhwc" | "nchw"
        self.converted: dict[tuple[int, str], str] = {}
        self.inputs: list[GraphInput] = []
        self.outputs: list[str] = []

    # ------------------------------------------------------------------ tensors
    def _tensor(self, i: int) -> TfTensor:
        t = self.sg.Tensors(i)
        code = t.Type()
        if code not in _DTYPES:
            raise RuntimeModelError(f"tensor {i}: element type {code} is not supported")
        dtype = np.dtype(_DTYPES[code])
        shape = tuple(int(d) for d in (t.ShapeAsNumpy() if t.ShapeLength() else []))
        if any(d < 0 for d in shape):
            raise RuntimeModelError(f"tensor {i}: negative dimension in shape {list(shape)}")
        q = t.Quantization()
        scale = np.zeros(0, np.float32)
        zp = np.zeros(0, np.int64)
        qdim = 0
        if q is not None and q.ScaleLength():
            scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32).reshape(-1)
            zp = np.asarray(q.ZeroPointAsNumpy(), dtype=np.int64).reshape(-1) if q.ZeroPointLength() \
                else np.zeros(scale.size, np.int64)
            qdim = int(q.QuantizedDimension())
            if not np.all(np.isfinite(scale)) or np.any(scale <= 0) or zp.size != scale.size:
                raise RuntimeModelError(f"tensor {i} ({t.Name().decode(errors='replace')}): invalid quantization "
                                        f"(scales {scale.tolist()[:4]}, zero points {zp.tolist()[:4]})")
        data = None
        if 0 < t.Buffer() < _vector(self.model.BuffersLength(), self.limit, "buffers"):
            buf = self.model.Buffers(t.Buffer())
            if buf.Offset() > 1:
                raise RuntimeModelError(f"tensor {i}: data outside the flatbuffer (offset buffers) is not supported")
            if buf.DataLength():
                raw = buf.DataAsNumpy().tobytes()
                want = int(np.prod(shape)) * dtype.itemsize
                if len(raw) != want:
                    raise RuntimeModelError(f"tensor {i}: buffer holds {len(raw)} bytes, shape {list(shape)} needs {want}")
                data = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
        name = (t.Name() or b"").decode(errors="replace") or f"tensor_{i}"
        return TfTensor(i, name, dtype, shape, scale, zp, qdim, data)

    def _unique_names(self) -> list[str]:
        seen: dict[str, int] = {}
        for t in self.tensors:
            seen[t.name] = seen.get(t.name, 0) + 1
        return [t.name if seen[t.name] == 1 else f"{t.name}#{t.index}" for t in self.tensors]

    def _name(self, i: int, layout: str | None = None) -> str:
        """Runtime name of tensor ``i`` in ``layout`` (emits a transpose the first time it is needed)."""
        have = self.layout[i]
        if layout is None or layout == have or len(self.tensors[i].shape) != 4:
            return self.names[i]
        key = (i, layout)
        if key not in self.converted:
            out = f"{self.names[i]}:{layout}"
            self.nodes.append(N.transpose(f"{self.names[i]}/to_{layout}", self.names[i], out,
                                          TO_NCHW if layout == "nchw" else TO_NHWC))
            if self.names[i] in self.qt:
                self.qt[out] = self.qt[self.names[i]]
            self.converted[key] = out
        return self.converted[key]

    def _out(self, i: int, layout: str, q: bool = True) -> str:
        self.layout[i] = layout if len(self.tensors[i].shape) == 4 else "nhwc"
        if q:
            t = self.tensors[i]
            if not t.quantized:
                raise RuntimeModelError(f"tensor {i} ({t.name}): integer output without quantization parameters")
            self.qt[self.names[i]] = t.q()
        return self.names[i]

    # ------------------------------------------------------------------ lowering
    def lower(self) -> None:
        sg = self.sg
        n_in = _vector(sg.InputsLength(), self.limit, "inputs")
        for i in (sg.InputsAsNumpy().tolist() if n_in else []):
            t = self._checked(int(i), "graph input")
            self.inputs.append(GraphInput(self.names[i], t.dtype, (None,) + t.shape[1:] if t.shape else ()))
            self.layout[i] = "nhwc"
        n_ops = _vector(sg.OperatorsLength(), self.limit, "operators")
        for k in range(n_ops):
            self._op(k)
        n_out = _vector(sg.OutputsLength(), self.limit, "outputs")
        for i in (sg.OutputsAsNumpy().tolist() if n_out else []):
            t = self._checked(int(i), "graph output")
            if i not in self.layout:
                raise RuntimeModelError(f"graph output {t.name!r} is never computed")
            name = self.names[i]
            if self.layout[i] == "nchw" and len(t.shape) == 4:  # the NHWC copy takes the output's own name
                inner = f"{name}:nchw"
                for node in self.nodes:
                    node.inputs = [inner if n == name else n for n in node.inputs]
                    node.outputs = [inner if n == name else n for n in node.outputs]
                if name in self.qt:
                    self.qt[inner] = self.qt[name]
                self.nodes.append(N.transpose(f"{name}/to_nhwc", inner, name, TO_NHWC))
                self.layout[i] = "nhwc"
            self.outputs.append(name)

    def _checked(self, i: int, what: str) -> TfTensor:
        if not 0 <= i < len(self.tensors):
            raise RuntimeModelError(f"{what}: tensor index {i} out of range ({len(self.tensors)} tensors)")
        return self.tensors[i]

    def _op(self, k: int) -> None:
        op = self.sg.Operators(k)
        n_codes = _vector(self.model.OperatorCodesLength(), self.limit, "operator codes")
        if not 0 <= op.OpcodeIndex() < n_codes:
            raise RuntimeModelError(f"operator {k}: opcode index {op.OpcodeIndex()} out of range")
        oc = self.model.OperatorCodes(op.OpcodeIndex())
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = self.tfl.utils.BUILTIN_OPCODE2NAME.get(code, f"builtin {code}")
        if name == "CUSTOM":
            name = f"CUSTOM {(oc.CustomCode() or b'').decode(errors='replace')!r}"
        ins = op.InputsAsNumpy().tolist() if _vector(op.InputsLength(), self.limit, "op inputs") else []
        outs = op.OutputsAsNumpy().tolist() if _vector(op.OutputsLength(), self.limit, "op outputs") else []
        for i in ins:
            if i >= 0:
                self._checked(int(i), f"operator {k} ({name}) input")
        for i in outs:
            self._checked(int(i), f"operator {k} ({name}) output")
        node = f"{name.lower()}_{k}"
        handler = getattr(self, f"_op_{name}", None)
        if handler is None:
            raise UnsupportedOpError(name, f"operator {k}", "not supported by the runtime's .tflite importer")
        for i in ins:
            if i >= 0 and self.tensors[i].data is None and i not in self.layout:
                raise RuntimeModelError(f"operator {k} ({name}): input tensor {i} is never computed before it")
        if name not in ("QUANTIZE", "DEQUANTIZE"):
            for i in [j for j in ins if j >= 0] + outs:
                t = self.tensors[i]
                if t.dtype.kind == "f":
                    raise RuntimeModelError(f"not an int8 model: operator {k} ({name}) has float tensor {t.name!r}; "
                                            "quantize the model to int8 (full integer quantization)")
        try:
            handler(node, ins, outs, op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            if isinstance(exc, RuntimeModelError):
                raise
            raise RuntimeModelError(f"operator {k} ({name}): {type(exc).__name__}: {exc}") from None

    def _options(self, op: Any, cls_name: str) -> Any:
        table = op.BuiltinOptions()
        if table is None:
            return None
        opts = getattr(self.tfl, cls_name)()
        opts.Init(table.Bytes, table.Pos)
        return opts

    def _act(self, opts: Any) -> N.Activation:
        code = 0 if opts is None else int(opts.FusedActivationFunction())
        if code not in _ACTIVATIONS:
            raise ValueError(f"fused activation {code} is not supported")
        return _ACTIVATIONS[code]

    def _x(self, i: int, layout: str | None = None) -> tuple[str, TfTensor]:
        t = self.tensors[i]
        if t.data is not None:
            raise ValueError(f"constant tensor {t.name!r} where a runtime input is expected")
        if t.dtype.kind in "iu" and not t.quantized:
            raise ValueError(f"tensor {t.name!r} has no quantization parameters")
        return self._name(i, layout), t

    @staticmethod
    def _same_pads(in_hw, kernel, strides, dilations, padding: int) -> list[int]:
        """Explicit [top, left, bottom, right] pads of TFLite SAME (0) / VALID (1) padding."""
        if padding == 1:
            return [0, 0, 0, 0]
        begin, end = [], []
        for size, k, s, d in zip(in_hw, kernel, strides, dilations):
            out = (size + s - 1) // s
            total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
            begin.append(total // 2)
            end.append(total - total // 2)
        return begin + end

    def _bias(self, ins: list[int], idx: int) -> np.ndarray | None:
        if len(ins) <= idx or ins[idx] < 0:
            return None
        b = self.tensors[ins[idx]]
        if b.data is None or b.dtype != np.int32:
            raise ValueError("bias must be a constant int32 tensor")
        return b.data.astype(np.int64)

    def _weight(self, i: int) -> TfTensor:
        w = self.tensors[i]
        if w.data is None or w.dtype.kind not in "iu" or not w.quantized:
            raise ValueError(f"weights {w.name!r} must be a constant quantized integer tensor")
        return w

    # ------------------------------------------------------------------ ops
    def _conv(self, node, ins, outs, op, depthwise: bool) -> None:
        opts = self._options(op, "DepthwiseConv2DOptions" if depthwise else "Conv2DOptions")
        x_name, x = self._x(ins[0], "nchw")
        w = self._weight(ins[1])
        y = self.tensors[outs[0]]
        if len(x.shape) != 4 or len(w.shape) != 4:
            raise ValueError(f"input {list(x.shape)} and weights {list(w.shape)} must be 4-D")
        if depthwise:
            wq = w.data.transpose(3, 0, 1, 2)  # (1, KH, KW, C·mult) -> (C·mult, 1, KH, KW)
            group = x.shape[3]
            if wq.shape[0] % group:
                raise ValueError(f"depthwise weights {list(w.shape)} do not fit {group} input channels")
        else:
            wq = w.data.transpose(0, 3, 1, 2)  # (O, KH, KW, I) -> (O, I, KH, KW)
            if x.shape[3] % wq.shape[1]:
                raise ValueError(f"weights {list(w.shape)} do not fit {x.shape[3]} input channels")
            group = x.shape[3] // wq.shape[1]
        strides = [int(opts.StrideH()), int(opts.StrideW())]
        dil = [int(opts.DilationHFactor()), int(opts.DilationWFactor())]
        pads = self._same_pads(x.shape[1:3], wq.shape[2:], strides, dil, int(opts.Padding()))
        rq = N.requant(float(x.scale[0]), w.scale, float(y.scale[0]), int(y.zp[0]), y.dtype, self._act(opts))
        w_zp = np.broadcast_to(w.zp, (wq.shape[0],)) if w.zp.size > 1 else w.zp
        self.nodes.append(N.conv(node, x_name, self._out(outs[0], "nchw"), wq, w_zp, self._bias(ins, 2),
                                 int(x.zp[0]), x.dtype, rq, 8 * w.dtype.itemsize, strides=strides, pads=pads,
                                 dilations=dil, group=group))

    def _op_CONV_2D(self, node, ins, outs, op) -> None:
        self._conv(node, ins, outs, op, depthwise=False)

    def _op_DEPTHWISE_CONV_2D(self, node, ins, outs, op) -> None:
        self._conv(node, ins, outs, op, depthwise=True)

    def _op_FULLY_CONNECTED(self, node, ins, outs, op) -> None:
        opts = self._options(op, "FullyConnectedOptions")
        if opts is not None and int(opts.WeightsFormat()) != 0:
            raise ValueError("shuffled weights format is not supported")
        x_name, x = self._x(ins[0], "nhwc")
        w = self._weight(ins[1])
        y = self.tensors[outs[0]]
        kdim = w.shape[1]
        if len(x.shape) != 2 or x.shape[-1] != kdim:
            flat = f"{x_name}/flat"
            self.nodes.append(N.reshape(f"{node}/flatten", x_name, flat, shape=[-1, kdim]))
            self.qt[flat] = x.q()
            x_name = flat
        rq = N.requant(float(x.scale[0]), w.scale, float(y.scale[0]), int(y.zp[0]), y.dtype, self._act(opts))
        rq["single_rounding"] = True  # LiteRT's FULLY_CONNECTED rounds once (measured: 0 of 128k outputs differ)
        self.nodes.append(N.fully_connected(node, x_name, self._out(outs[0], "nhwc"), w.data.T, w.zp,
                                            self._bias(ins, 2), int(x.zp[0]), x.dtype, rq, 8 * w.dtype.itemsize))

    def _binary(self, node, ins, outs, op, make) -> None:
        a_i, b_i = ins[0], ins[1]
        if self.tensors[a_i].data is not None and self.tensors[b_i].data is None:
            a_i, b_i = b_i, a_i  # both ops are commutative; the constant goes second
        a, b, y = self.tensors[a_i], self.tensors[b_i], self.tensors[outs[0]]
        if a.data is not None:
            raise ValueError("both operands are constants")
        layout = self.layout[a_i] if len(a.shape) == 4 and len(y.shape) == 4 else "nhwc"
        if b.data is None and len(b.shape) != 4:
            layout = "nhwc"
        a_name, _ = self._x(a_i, layout)
        const_b = None
        b_name = None
        if b.data is not None:
            if not b.quantized:
                raise ValueError(f"constant {b.name!r} has no quantization parameters")
            const_b = b.data
            if layout == "nchw":
                const_b = const_b.reshape((1,) * (4 - const_b.ndim) + const_b.shape).transpose(TO_NCHW)
        else:
            b_name, _ = self._x(b_i, layout)
        opts = self._options(op, "AddOptions" if make is N.add else "MulOptions")
        self.nodes.append(make(node, a_name, b_name, self._out(outs[0], layout), float(a.scale[0]), int(a.zp[0]),
                               float(b.scale[0]), int(b.zp[0]), float(y.scale[0]), int(y.zp[0]), y.dtype,
                               self._act(opts), const_b=const_b))

    def _op_ADD(self, node, ins, outs, op) -> None:
        self._binary(node, ins, outs, op, N.add)

    def _op_MUL(self, node, ins, outs, op) -> None:
        self._binary(node, ins, outs, op, N.mul)

    def _pool(self, node, ins, outs, op, kind: str) -> None:
        opts = self._options(op, "Pool2DOptions")
        x_name, x = self._x(ins[0], "nchw")
        y = self.tensors[outs[0]]
        if len(x.shape) != 4:
            raise ValueError(f"input {list(x.shape)} must be 4-D")
        kernel = [int(opts.FilterHeight()), int(opts.FilterWidth())]
        strides = [int(opts.StrideH()), int(opts.StrideW())]
        pads = self._same_pads(x.shape[1:3], kernel, strides, [1, 1], int(opts.Padding()))
        act = self._act(opts)
        out = self._out(outs[0], "nchw")
        pooled = out if act == N.NO_ACT else f"{out}/pooled"
        if kind == "max":
            if (x.scale[0], x.zp[0]) != (y.scale[0], y.zp[0]):
                raise ValueError("MAX_POOL_2D input and output quantization differ")
            self.nodes.append(N.max_pool(node, x_name, pooled, kernel, strides=strides, pads=pads))
        else:
            self.nodes.append(N.avg_pool(node, x_name, pooled, kernel, float(x.scale[0]), int(x.zp[0]),
                                         float(y.scale[0]), int(y.zp[0]), y.dtype, strides=strides, pads=pads))
        if pooled != out:
            self.qt[pooled] = y.q()
            self.nodes.append(N.clamp(f"{node}/act", pooled, out, act[1], act[2], float(y.scale[0]), int(y.zp[0]),
                                      y.dtype))

    def _op_AVERAGE_POOL_2D(self, node, ins, outs, op) -> None:
        self._pool(node, ins, outs, op, "avg")

    def _op_MAX_POOL_2D(self, node, ins, outs, op) -> None:
        self._pool(node, ins, outs, op, "max")

    def _op_MEAN(self, node, ins, outs, op) -> None:
        x_name, x = self._x(ins[0], "nchw")
        axes = self.tensors[ins[1]].data
        y = self.tensors[outs[0]]
        opts = self._options(op, "ReducerOptions")
        keep = opts is not None and bool(opts.KeepDims())
        if axes is None or len(x.shape) != 4 or sorted(int(a) % 4 for a in axes.reshape(-1)) != [1, 2]:
            raise ValueError("only MEAN over height and width of a 4-D tensor is supported")
        pooled = self._out(outs[0], "nchw") if keep else f"{self.names[outs[0]]}/keep"
        mean = N.global_avg_pool(node, x_name, pooled, float(x.scale[0]), int(x.zp[0]), float(y.scale[0]),
                                 int(y.zp[0]), y.dtype)
        mean.attrs["tflite_mean"] = True
        self.nodes.append(mean)
        if not keep:
            self.qt[pooled] = y.q()
            self.nodes.append(N.reshape(f"{node}/squeeze", pooled, self._out(outs[0], "nhwc"), squeeze_axes=[2, 3]))

    def _op_RESHAPE(self, node, ins, outs, op) -> None:
        x_name, x = self._x(ins[0], "nhwc")
        y = self.tensors[outs[0]]
        self._same_quant(x, y)
        shape = list(y.shape)
        if shape and x.shape and shape[0] == x.shape[0] == 1 and len(shape) >= 2:
            shape[0] = -1  # the batch
        self.nodes.append(N.reshape(node, x_name, self._out(outs[0], "nhwc"), shape=shape))

    def _op_SQUEEZE(self, node, ins, outs, op) -> None:
        self._op_RESHAPE(node, ins[:1], outs, op)

    @staticmethod
    def _same_quant(x: TfTensor, y: TfTensor) -> None:
        if x.quantized and y.quantized and (float(x.scale[0]), int(x.zp[0])) != (float(y.scale[0]), int(y.zp[0])):
            raise ValueError(f"input {x.name!r} and output {y.name!r} quantization differ")

    def _op_CONCATENATION(self, node, ins, outs, op) -> None:
        opts = self._options(op, "ConcatenationOptions")
        if self._act(opts) != N.NO_ACT:
            raise ValueError("fused activation on CONCATENATION is not supported")
        y = self.tensors[outs[0]]
        rank = len(y.shape)
        axis = int(opts.Axis()) % rank
        layout = "nchw" if rank == 4 and all(self.layout.get(i) == "nchw" for i in ins) else "nhwc"
        names, params = [], []
        for i in ins:
            name, t = self._x(i, layout)
            names.append(name)
            params.append((float(t.scale[0]), int(t.zp[0])))
        if layout == "nchw":
            axis = _NHWC_AXIS_IN_NCHW[axis]
        self.nodes.append(N.concat(node, names, self._out(outs[0], layout), axis, params, float(y.scale[0]),
                                   int(y.zp[0]), y.dtype))

    def _op_PAD(self, node, ins, outs, op) -> None:
        x_name, x = self._x(ins[0], self.layout[ins[0]])
        pads = self.tensors[ins[1]].data
        y = self.tensors[outs[0]]
        self._same_quant(x, y)
        if pads is None or pads.shape != (len(x.shape), 2):
            raise ValueError("paddings must be a constant (rank, 2) tensor")
        layout = self.layout[ins[0]] if len(x.shape) == 4 else "nhwc"
        if layout == "nchw":
            pads = pads[TO_NCHW]
        self.nodes.append(N.pad(node, x_name, self._out(outs[0], layout), list(pads[:, 0]) + list(pads[:, 1]),
                                value=int(x.zp[0])))

    def _op_QUANTIZE(self, node, ins, outs, op) -> None:
        x = self.tensors[ins[0]]
        y = self.tensors[outs[0]]
        layout = self.layout.get(ins[0], "nhwc")
        x_name = self._name(ins[0], layout)
        if x.dtype.kind == "f":
            self.nodes.append(N.quantize(node, x_name, self._out(outs[0], layout), y.scale[:1],
                                         y.zp[:1].astype(y.dtype), 1))
            return
        _, x = self._x(ins[0], layout)
        self.nodes.append(N.rescale(node, x_name, self._out(outs[0], layout), float(x.scale[0]), int(x.zp[0]),
                                    float(y.scale[0]), int(y.zp[0]), y.dtype))

    def _op_DEQUANTIZE(self, node, ins, outs, op) -> None:
        x_name, x = self._x(ins[0], "nhwc")
        self.nodes.append(N.dequantize(node, x_name, self._out(outs[0], "nhwc", q=False), x.scale[:1], x.zp[:1]))

    def _elementwise(self, ins: list[int], outs: list[int]) -> tuple[str, TfTensor, TfTensor, str]:
        layout = self.layout[ins[0]]
        x_name, x = self._x(ins[0], layout)
        return x_name, x, self.tensors[outs[0]], layout

    def _op_LOGISTIC(self, node, ins, outs, op) -> None:
        x_name, x, y, layout = self._elementwise(ins, outs)
        self.nodes.append(N.lut(node, x_name, self._out(outs[0], layout), "logistic", float(x.scale[0]), int(x.zp[0]),
                                x.dtype, float(y.scale[0]), int(y.zp[0]), y.dtype))

    def _op_TANH(self, node, ins, outs, op) -> None:
        x_name, x, y, layout = self._elementwise(ins, outs)
        self.nodes.append(N.lut(node, x_name, self._out(outs[0], layout), "tanh", float(x.scale[0]), int(x.zp[0]),
                                x.dtype, float(y.scale[0]), int(y.zp[0]), y.dtype))

    def _op_HARD_SWISH(self, node, ins, outs, op) -> None:
        x_name, x, y, layout = self._elementwise(ins, outs)
        self.nodes.append(N.hard_swish(node, x_name, self._out(outs[0], layout), float(x.scale[0]), int(x.zp[0]),
                                       float(y.scale[0]), int(y.zp[0]), y.dtype))

    def _op_SOFTMAX(self, node, ins, outs, op) -> None:
        opts = self._options(op, "SoftmaxOptions")
        x_name, x = self._x(ins[0], "nhwc")
        y = self.tensors[outs[0]]
        beta = 1.0 if opts is None else float(opts.Beta())
        self.nodes.append(N.int_softmax(node, x_name, self._out(outs[0], "nhwc"), -1, beta, float(x.scale[0]),
                                        int(x.zp[0]), float(y.scale[0]), int(y.zp[0]), y.dtype))


def to_ir(data: bytes, model: Any) -> Graph:
    """Lower a parsed ``tflite.Model`` (subgraph 0) to the runtime's IR."""
    low = Lowerer(data, model)
    low.lower()
    graph = Graph(low.inputs, low.outputs, low.nodes, {})
    graph.tensors = N.tensor_specs(graph, low.qt)
    for gi in graph.inputs:  # a .tflite input carries its own quantization (float samples are quantized with it)
        t = low.tensors[low.names.index(gi.name)]
        if t.quantized and gi.dtype.kind in "iu":
            graph.tensors[gi.name] = replace(graph.tensors[gi.name], scale=float(t.scale[0]), zero_point=int(t.zp[0]))
    return graph


def load(path: str | Path) -> Graph:
    """Read an int8 ``.tflite`` file and lower it to the runtime's IR (one-line errors)."""
    data, model = read_model(path)
    try:
        return to_ir(data, model)
    except RuntimeModelError as exc:
        raise RuntimeModelError(f"{Path(path).name}: {exc}") from None
    except (Exception, RecursionError) as exc:  # a corrupt flatbuffer fails anywhere in the generated readers
        raise RuntimeModelError(f"{Path(path).name}: truncated or corrupt .tflite file "
                                f"({type(exc).__name__}: {str(exc)[:120]})") from None
