"""Validation of an ONNX model before the runtime lowers it (one-line ``RuntimeModelError`` each).

Checked, naming the node and attribute at fault:

* every node input defined before use; attributes known to the op's schema, none repeated;
  Reshape shapes int64;
* the default-domain opset is present and within ``MIN_OPSET..MAX_OPSET``; the graph has an output;
* quantization parameters (``QuantizeLinear``/``DequantizeLinear`` and the QOperator ops): scales
  are float32/float16 constants, finite, normal (≥ the smallest normal float32) and > 0; zero
  points are integer constants of a quantized dtype (int8/uint8, int16/uint16 from opset 21, int32 only for a
  dequantized int32 bias, whose zero point must be 0), of the same dtype as the tensor they
  (de)quantize, with one value per scale; the dequantized initializer is of a quantized dtype;
* ``axis`` attributes within the rank of their input (where the rank is known);
* conv and pool geometry: ``strides``, ``dilations`` ≥ 1 with one value per spatial dim, ``pads`` ≥ 0
  with two per spatial dim and each smaller than the dilated kernel extent, ``kernel_shape`` equal
  to the weight's spatial shape, ``group`` ≥ 1 dividing the channels, and every output dim ≥ 1 and
  the output at most ``MAX_ELEMENTS`` elements where the input shape is known.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeflow.runtime.errors import RuntimeModelError

MIN_OPSET = 10
MAX_OPSET = 21
MAX_ELEMENTS = 1 << 28  # per tensor and sample: far above any microcontroller model
MAX_PAD = 1 << 16  # pads, strides, dilations, kernel sizes
MIN_SCALE = float(np.finfo(np.float32).tiny)
Q_DTYPES = {np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16)}
Q8_DTYPES = {np.dtype(np.int8), np.dtype(np.uint8)}  # before opset 21 (int16/uint16 came with 21)
SCALE_DTYPES = {np.dtype(np.float32), np.dtype(np.float16)}

# op type -> [(scale input index, zero point input index, role)] for the QOperator ops
_QOP_PARAMS = {
    "QLinearConv": [(1, 2, "x"), (4, 5, "w"), (6, 7, "y")],
    "QLinearMatMul": [(1, 2, "a"), (4, 5, "b"), (6, 7, "y")],
    "QGemm": [(1, 2, "a"), (4, 5, "b"), (7, 8, "y")],
    "QLinearAdd": [(1, 2, "A"), (4, 5, "B"), (6, 7, "C")],
    "QLinearMul": [(1, 2, "A"), (4, 5, "B"), (6, 7, "C")],
    "QLinearSigmoid": [(1, 2, "X"), (3, 4, "Y")],
    "QLinearSoftmax": [(1, 2, "X"), (3, 4, "Y")],
    "QLinearAveragePool": [(1, 2, "x"), (3, 4, "y")],
    "QLinearGlobalAveragePool": [(1, 2, "x"), (3, 4, "y")],
}
_CONV = {"Conv": 1, "QLinearConv": 3, "ConvInteger": 1}  # op -> weight input index
_POOL = {"MaxPool", "AveragePool", "QLinearAveragePool"}
_AXIS_OPS = {"Softmax", "Flatten", "Concat", "Gemm", "LogSoftmax"}


def _err(node, what: str) -> RuntimeModelError:
    name = node.name or (node.output[0] if node.output else "")
    return RuntimeModelError(f"{node.op_type} node {name!r}: {what}")


class _Ctx:
    def __init__(self, model, opset: int) -> None:
        from onnx import numpy_helper

        self.opset = opset
        g = model.graph
        self.init: dict[str, np.ndarray] = {}
        for t in g.initializer:
            try:
                self.init[t.name] = numpy_helper.to_array(t)
            except Exception as exc:  # corrupted raw_data / dims
                raise RuntimeModelError(f"initializer {t.name!r} is corrupted ({type(exc).__name__}: "
                                        f"{_line(exc)})") from None
        for n in g.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value" and n.output:
                try:
                    self.init[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
                except Exception as exc:
                    raise RuntimeModelError(f"Constant node {n.name!r} is corrupted ({type(exc).__name__})") from None
        self.shape: dict[str, tuple[int | None, ...]] = {k: tuple(v.shape) for k, v in self.init.items()}
        self.dtype: dict[str, np.dtype] = {k: v.dtype for k, v in self.init.items()}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            tt = vi.type.tensor_type
            if vi.name in self.shape or not tt.HasField("shape"):
                continue
            self.shape[vi.name] = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                                        for d in tt.shape.dim)
        try:  # best effort: more ranks and shapes for the attribute checks
            import onnx

            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
            for vi in inferred.graph.value_info:
                tt = vi.type.tensor_type
                if vi.name not in self.shape and tt.HasField("shape"):
                    self.shape[vi.name] = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                                                for d in tt.shape.dim)
        except Exception:
            pass

    def rank(self, name: str) -> int | None:
        s = self.shape.get(name)
        return None if s is None else len(s)


def _line(exc: BaseException) -> str:
    s = str(exc).strip().splitlines()
    return (s[0] if s else "")[:160]


def _attrs(node) -> dict[str, Any]:
    import onnx

    try:
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    except Exception as exc:
        raise _err(node, f"unreadable attribute ({type(exc).__name__}: {_line(exc)})") from None


def _inp(node, i: int) -> str:
    return node.input[i] if len(node.input) > i and node.input[i] else ""


def _check_scale(ctx: _Ctx, node, name: str, what: str) -> np.ndarray:
    if name not in ctx.init:
        raise _err(node, f"{what} {name!r} must be a constant initializer")
    s = ctx.init[name]
    if s.dtype not in SCALE_DTYPES:
        raise _err(node, f"{what} {name!r} has dtype {s.dtype}; ONNX requires float32 (or float16)")
    if s.ndim > 1 or s.size == 0:
        raise _err(node, f"{what} {name!r} must be a scalar or 1-D, has shape {list(s.shape)}")
    f = s.astype(np.float64).reshape(-1)
    bad = ~np.isfinite(f) | (f < MIN_SCALE)
    if bad.any():
        v = f[bad][0]
        kind = "not finite" if not np.isfinite(v) else ("not > 0" if v <= 0 else "below the smallest normal float32")
        raise _err(node, f"{what} {name!r} = {v:g} is {kind}")
    return s


def _check_zp(ctx: _Ctx, node, name: str, scale: np.ndarray, what: str, want: np.dtype | None,
              allow_int32: bool = False) -> np.dtype | None:
    if not name:
        return None
    if name not in ctx.init:
        raise _err(node, f"{what} {name!r} must be a constant initializer")
    zp = ctx.init[name]
    ok = (Q_DTYPES if ctx.opset >= 21 else Q8_DTYPES) | ({np.dtype(np.int32)} if allow_int32 else set())
    if zp.dtype not in ok:
        raise _err(node, f"{what} {name!r} has dtype {zp.dtype}, not a quantized type ({', '.join(sorted(map(str, ok)))})")
    if want is not None and zp.dtype != want:
        raise _err(node, f"{what} {name!r} has dtype {zp.dtype} but the quantized tensor is {want}")
    if zp.ndim > 1:
        raise _err(node, f"{what} {name!r} must be a scalar or 1-D, has shape {list(zp.shape)}")
    if zp.shape != scale.shape and not (zp.size == 1 and scale.size == 1):
        raise _err(node, f"{what} {name!r} has shape {list(zp.shape)}, its scale {list(scale.shape)}")
    if zp.dtype == np.int32 and np.any(zp != 0):
        raise _err(node, f"{what} {name!r} of an int32 tensor must be 0, is {int(zp.reshape(-1)[np.argmax(zp.reshape(-1) != 0)])}")
    return zp.dtype


def _check_axis(node, axis: Any, rank: int | None, what: str = "axis", extra: int = 0) -> None:
    if not isinstance(axis, (int, np.integer)):
        raise _err(node, f"attribute {what}={axis!r} is not an integer")
    if rank is not None and not (-rank - extra <= axis < rank + extra):
        raise _err(node, f"attribute {what}={axis} is out of range for an input of rank {rank}")


def _check_qdq(ctx: _Ctx, node) -> None:
    if len(node.input) < 2:
        raise _err(node, "needs inputs x and scale")
    x = node.input[0]
    s = _check_scale(ctx, node, node.input[1], "scale")
    at = _attrs(node)
    axis = at.get("axis", 1)
    r = ctx.rank(x)
    if "axis" in at or s.size > 1:  # per tensor, the default axis is ignored
        _check_axis(node, axis, r)
    if s.size > 1:
        if r is None:
            pass
        else:
            dim = ctx.shape[x][axis % r] if r else None
            if dim is not None and dim != s.size:
                raise _err(node, f"attribute axis={axis}: {s.size} scales for a dim of size {dim}")
    dq = node.op_type == "DequantizeLinear"
    want = ctx.dtype.get(x) if dq else None
    if dq and x in ctx.init and ctx.init[x].dtype not in Q_DTYPES | {np.dtype(np.int32)}:
        raise _err(node, f"input {x!r} has dtype {ctx.init[x].dtype}, not a quantized type")
    zdt = _check_zp(ctx, node, _inp(node, 2), s, "zero point", want, allow_int32=dq)
    if dq and zdt is None and want is not None and want not in (np.dtype(np.uint8), np.dtype(np.int32)):
        pass  # no zero point: 0 of x's type, always valid
    if not dq:
        if x in ctx.init and ctx.init[x].dtype.kind != "f":
            raise _err(node, f"input {x!r} has dtype {ctx.init[x].dtype}; QuantizeLinear takes float")
        if node.output:
            ctx.dtype[node.output[0]] = zdt or np.dtype(np.uint8)
    elif node.output:
        ctx.dtype[node.output[0]] = np.dtype(np.float32)


def _check_qop(ctx: _Ctx, node) -> None:
    for si, zi, role in _QOP_PARAMS[node.op_type]:
        sname = _inp(node, si)
        if not sname:
            if node.op_type == "QGemm" and role == "y":
                continue
            raise _err(node, f"missing {role}_scale")
        s = _check_scale(ctx, node, sname, f"{role}_scale")
        data = _inp(node, si - 1) if role not in ("y", "C") else ""
        want = ctx.dtype.get(data) if data else None
        zdt = _check_zp(ctx, node, _inp(node, zi), s, f"{role}_zero_point", want)
        if role in ("y", "C") and node.output:
            ctx.dtype[node.output[0]] = zdt or np.dtype(np.uint8)


def _ints(node, at: dict, key: str, n: int, default: int, minimum: int) -> list[int]:
    v = at.get(key)
    if v is None:
        return [default] * n
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    if len(v) != n:
        raise _err(node, f"attribute {key}={v} needs {n} values")
    for x in v:
        if not isinstance(x, (int, np.integer)) or x < minimum:
            raise _err(node, f"attribute {key}={v}: each must be an integer >= {minimum}")
    return [int(x) for x in v]


def _check_geometry(ctx: _Ctx, node) -> None:
    at = _attrs(node)
    x = node.input[0] if node.input else ""
    if node.op_type in _CONV:
        wname = _inp(node, _CONV[node.op_type])
        w = _weight_shape(ctx, wname)
        if w is None:
            if "kernel_shape" not in at:
                return
            kernel = list(at["kernel_shape"])
        else:
            if len(w) < 3:
                raise _err(node, f"weight {wname!r} has shape {list(w)}; needs [M, C/group, k...]")
            kernel = list(w[2:])
            if "kernel_shape" in at and list(at["kernel_shape"]) != kernel:
                raise _err(node, f"attribute kernel_shape={list(at['kernel_shape'])} contradicts the weight's {kernel}")
        group = at.get("group", 1)
        if not isinstance(group, (int, np.integer)) or group < 1:
            raise _err(node, f"attribute group={group!r} must be >= 1")
        xs = ctx.shape.get(x)
        if w is not None:
            if w[0] % group:
                raise _err(node, f"attribute group={group} does not divide the {w[0]} output channels")
            if xs is not None and len(xs) >= 2 and xs[1] is not None and xs[1] != w[1] * group:
                raise _err(node, f"attribute group={group}: input has {xs[1]} channels, weight expects {w[1] * group}")
    else:
        if "kernel_shape" not in at:
            raise _err(node, "missing attribute kernel_shape")
        kernel = list(at["kernel_shape"])
        if any(not isinstance(k, (int, np.integer)) or k < 1 for k in kernel):
            raise _err(node, f"attribute kernel_shape={kernel}: each must be >= 1")
    nd = len(kernel)
    if nd < 1:
        raise _err(node, f"attribute kernel_shape={kernel} is empty")
    xs = ctx.shape.get(x)
    if xs is not None and len(xs) != nd + 2:
        raise _err(node, f"attribute kernel_shape={kernel}: {nd} spatial dims for an input of rank {len(xs)}")
    strides = _ints(node, at, "strides", nd, 1, 1)
    dil = _ints(node, at, "dilations", nd, 1, 1)
    pads = _ints(node, at, "pads", 2 * nd, 0, 0)
    auto = at.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto not in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"):
        raise _err(node, f"attribute auto_pad={auto!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    for i in range(nd):
        ext = dil[i] * (kernel[i] - 1) + 1
        big = max(pads[i], pads[i + nd])
        if node.op_type in _POOL and big >= ext:
            raise _err(node, f"attribute pads={pads}: a pad of dim {i} is not smaller than the kernel extent {ext}")
        if big > MAX_PAD or strides[i] > MAX_PAD or dil[i] > MAX_PAD or kernel[i] > MAX_PAD:
            raise _err(node, f"attributes pads={pads}, strides={strides}, dilations={dil}, kernel_shape={kernel}: "
                             f"a value exceeds the bound {MAX_PAD}")
    if xs is None:
        return
    total = 1
    for i in range(nd):
        n = xs[2 + i]
        if n is None:
            return
        ext = dil[i] * (kernel[i] - 1) + 1
        if auto == "NOTSET":
            out = (n + pads[i] + pads[i + nd] - ext) // strides[i] + 1
        elif auto == "VALID":
            out = (n - ext) // strides[i] + 1
        else:
            out = -(-n // strides[i])
        if out < 1:
            raise _err(node, f"attributes kernel_shape={kernel}, pads={pads}, strides={strides}, dilations={dil}: "
                             f"output dim {i} is {out} for an input of {n}")
        total *= out
    ch = xs[1] or 1
    if total * ch > MAX_ELEMENTS:
        raise _err(node, f"output of {total * ch} elements exceeds the bound {MAX_ELEMENTS}")


def _check_bias_scale(ctx: _Ctx, node, dq_of: dict) -> None:
    """An int32 bias must be quantized with scale s_x · s_w (the runtime adds it to the accumulator)."""
    x, w, b = (dq_of.get(n) for n in node.input[:3])
    if x is None or w is None or b is None or ctx.dtype.get(b.input[0]) != np.dtype(np.int32):
        return
    try:
        sx, sw, sb = (np.asarray(ctx.init[d.input[1]], np.float32).reshape(-1) for d in (x, w, b))
    except KeyError:
        return
    want = (sx * sw).astype(np.float32)
    if sb.size not in (1, want.size) or not np.allclose(sb, want, rtol=1e-6, atol=0):
        raise _err(node, f"bias scale {b.input[1]!r} is not input scale × weight scale")
    # the int32 accumulator must not overflow: |bias| + max |Σ (w − zp_w)(x − zp_x)| < 2^31
    wq, bq = ctx.init.get(w.input[0]), ctx.init.get(b.input[0])
    if wq is None or bq is None or wq.ndim < 2 or wq.dtype.kind not in "iu":
        return
    wzp = ctx.init.get(_inp(w, 2))
    wz = np.zeros(1, np.int64) if wzp is None else np.asarray(wzp, np.int64).reshape(-1)
    if node.op_type == "Gemm" and _attrs(node).get("transB", 0) == 0:
        wm = wq.astype(np.int64).T
    else:
        wm = wq.astype(np.int64).reshape(wq.shape[0], -1)
    if wz.size not in (1, wm.shape[0]):
        return
    wz = wz.reshape(-1, 1) if wz.size > 1 else wz
    reach = np.abs(wm - wz).sum(axis=1) * 255
    bb = np.abs(bq.astype(np.int64).reshape(-1))
    if bb.size in (1, reach.size) and np.any(bb + reach >= 2 ** 31):
        raise _err(node, f"bias {b.input[0]!r}: |bias| + the largest accumulator exceeds int32 (overflow)")


def _check_pool_ratio(ctx: _Ctx, node, dq, g) -> None:
    """Integer average pooling requantizes by s_in / (s_out · window): kept within [2^-32, 256) as
    the integer kernels (onnxruntime's MLAS, CMSIS-NN) require."""
    q = next((n for n in g.node if n.op_type == "QuantizeLinear" and n.input and n.input[0] == node.output[0]), None)
    xs = ctx.shape.get(dq.input[0]) or ctx.shape.get(node.input[0])
    if q is None or len(q.input) < 2 or q.input[1] not in ctx.init or dq.input[1] not in ctx.init or not xs:
        return
    window = 1
    for d in xs[2:]:
        if d is None:
            return
        window *= d
    ratio = float(np.asarray(ctx.init[dq.input[1]], np.float64).reshape(-1)[0]) / (
        float(np.asarray(ctx.init[q.input[1]], np.float64).reshape(-1)[0]) * max(window, 1))
    if not 2.0 ** -32 <= ratio < 256.0:
        raise _err(node, f"scales: input scale / (output scale x window) = {ratio:g} is outside [2^-32, 256)")


def _weight_shape(ctx: _Ctx, name: str) -> tuple | None:
    s = ctx.shape.get(name)
    if s is None or any(d is None for d in s):
        return None
    return tuple(int(d) for d in s)


def validate(model) -> None:
    """Raise ``RuntimeModelError`` (one line, naming node and attribute) if ``model`` is not valid."""
    g = model.graph
    opsets = {o.domain: o.version for o in model.opset_import}
    v = opsets.get("", opsets.get("ai.onnx"))
    if v is None:
        raise RuntimeModelError("the model imports no default ONNX opset (opset_import lacks domain '')")
    if not MIN_OPSET <= v <= MAX_OPSET:
        raise RuntimeModelError(f"opset {v} is not supported (the runtime supports opsets {MIN_OPSET}..{MAX_OPSET})")
    if not g.output:
        raise RuntimeModelError("the graph has no outputs")
    ctx = _Ctx(model, v)
    for gi in g.input:
        s = ctx.shape.get(gi.name)
        if s is not None and gi.name not in ctx.init:
            n = 1
            for d in s[1:]:
                n *= d or 1
            if n > MAX_ELEMENTS:
                raise RuntimeModelError(f"graph input {gi.name!r} of shape {list(s)} exceeds {MAX_ELEMENTS} elements")
    import onnx

    dq_of: dict[str, Any] = {}
    known = {t.name for t in g.initializer} | {i.name for i in g.input}
    for node in g.node:
        op = node.op_type
        for i in node.input:
            if i and i not in known:
                raise _err(node, f"input {i!r} is not a graph input, initializer or output of an earlier node")
        known.update(o for o in node.output if o)
        names = [a.name for a in node.attribute]
        if len(set(names)) != len(names):
            raise _err(node, f"attribute {next(n for n in names if names.count(n) > 1)!r} appears more than once")
        if op == "Reshape" and len(node.input) > 1 and node.input[1] in ctx.init and ctx.init[node.input[1]].dtype != np.int64:
            raise _err(node, f"input shape {node.input[1]!r} has dtype {ctx.init[node.input[1]].dtype}; ONNX requires int64")
        if node.domain in ("", "ai.onnx"):
            try:
                schema = onnx.defs.get_schema(op, v, "")
            except Exception:
                schema = None
            if schema is not None:
                for a in node.attribute:
                    if a.name not in schema.attributes:
                        raise _err(node, f"attribute {a.name!r} is not an attribute of {op} (opset {v})")
        if op == "DequantizeLinear" and node.output and len(node.input) >= 2:
            dq_of[node.output[0]] = node
        if op == "GlobalAveragePool" and node.input and node.input[0] in dq_of and node.output:
            _check_pool_ratio(ctx, node, dq_of[node.input[0]], g)
        if op in ("Conv", "Gemm") and len(node.input) > 2 and node.input[2] in dq_of:
            _check_bias_scale(ctx, node, dq_of)
        if op in ("QuantizeLinear", "DequantizeLinear"):
            _check_qdq(ctx, node)
        elif op in _QOP_PARAMS:
            _check_qop(ctx, node)
        if op in _CONV or op in _POOL:
            _check_geometry(ctx, node)
        if op in _AXIS_OPS:
            at = _attrs(node)
            if "axis" in at:
                r = ctx.rank(node.input[0]) if node.input else None
                _check_axis(node, at["axis"], r, extra=1 if op == "Flatten" else 0)
