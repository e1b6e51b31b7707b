"""QDQ ONNX export of quantized models, written node by node from the traced module graph.

Format (what onnxruntime's QDQ selectors and the int8 runtime expect; TFLite int8 conventions):

- weights: int8 initializers (``<layer>.weight_q``), per output channel (axis 0) or per tensor, zero
  point 0, values in ±127 (sub-byte, binary and power-of-two weights use the same int8 container),
  followed by ``DequantizeLinear``;
- biases: int32 initializers (``<layer>.bias_q``) with scale ``s_in · s_w[c]`` and zero point 0, then
  ``DequantizeLinear``;
- activations: ``QuantizeLinear → DequantizeLinear`` (int8, per tensor) on the graph input and after
  every conv / gemm / add / concat / average pool, i.e. ``DQ → Conv|Gemm → Q`` and ``DQ, DQ → Add → Q``;
  a ReLU fused into its producer is dropped when the output's zero point is −128 (the saturation is the
  ReLU) and kept before the Q otherwise; max-pool, reshape and slice sit between Q/DQ pairs with
  their input's scale, so onnxruntime runs them on int8.
- metadata_props: ``edgeflow.weight_bits`` = JSON ``{initializer: bits}`` (true bit-width: 1 = binary),
  ``edgeflow.weight_format`` = ``{initializer: uniform|binary|pow2}``, ``edgeflow.act_bits`` =
  ``{quantized tensor: bits}`` for every activation, ``edgeflow.layers`` = ``{module: {...}}``,
  ``edgeflow.codebook`` = ``{initializer: {"clusters": k, "index_bits": ceil(log2 k), "scope":
  layer|channel}}`` for every clustered layer (``edgeflow.methods.clustering``; its int8 initializer
  holds at most k distinct values per layer with per-tensor weights, per channel otherwise).

onnxruntime at ``ORT_ENABLE_EXTENDED`` or higher fuses these into QLinearConv / QGemm / QLinearAdd /
QLinearGlobalAveragePool (see :func:`edgeflow.export.ort.optimized_op_types`).

Known limit: activations below 8 bits are stored in int8 with their own scale; QuantizeLinear
saturates at the int8 bounds, not the b-bit bounds (the b-bit range is recorded in metadata).
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from edgeflow import graph as G
from edgeflow.methods.quantization.layers import QUANT_LAYER_TYPES, QLinear
from edgeflow.methods.quantization.quantizers import ActQuantizer



SHARE_DQ = False  # one DequantizeLinear per consumer (the form onnxruntime's selectors want)


class QDQExportError(RuntimeError):
    """The model contains something the QDQ exporter cannot express."""


@dataclass
class _Q:
    """A quantized tensor in the ONNX graph: the int8 name and its quantization parameters."""

    name: str
    scale: float
    zp: int
    bits: int
    qmin: int

    @property
    def nonneg(self) -> bool:
        return self.zp == -128  # int8 saturation at -128 is real 0: nothing below 0 survives


@dataclass
class _F:
    name: str


class _Builder:
    def __init__(self) -> None:
        import onnx

        self.onnx = onnx
        self.h = onnx.helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.names: set[str] = set()
        self.weight_bits: dict[str, int] = {}
        self.weight_format: dict[str, str] = {}
        self.codebook: dict[str, dict[str, Any]] = {}
        self.act_bits: dict[str, int] = {}
        self.layers: dict[str, dict[str, Any]] = {}
        self._qparams: dict[tuple[float, int], tuple[str, str]] = {}
        self._dq_cache: dict[str, str] = {}

    def fresh(self, base: str) -> str:
        base = base.replace("/", ".")
        name, i = base, 1
        while name in self.names:
            name = f"{base}_{i}"
            i += 1
        self.names.add(name)
        return name

    def init(self, base: str, array: np.ndarray) -> str:
        name = self.fresh(base)
        self.inits.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], base: str, domain: str | None = None, **attrs: Any) -> str:
        out = self.fresh(base)
        kw = {"domain": domain} if domain else {}
        self.nodes.append(self.h.make_node(op, inputs, [out], name=self.fresh(f"{op}:{base}"), **kw, **attrs))
        return out

    def act_qparams(self, scale: float, zp: int) -> tuple[str, str]:
        key = (float(np.float32(scale)), int(zp))
        if key not in self._qparams:
            s = self.init("act_scale", np.array(scale, dtype=np.float32))
            z = self.init("act_zp", np.array(zp, dtype=np.int8))
            self._qparams[key] = (s, z)
        return self._qparams[key]

    def quantize(self, x: str, scale: float, zp: int, bits: int, qmin: int, base: str) -> _Q:
        s, z = self.act_qparams(scale, zp)
        out = self.node("QuantizeLinear", [x, s, z], f"{base}_q")
        self.act_bits[out] = bits
        return _Q(out, float(np.float32(scale)), int(zp), bits, qmin)

    def dq(self, v: _Q | _F, base: str) -> str:
        if isinstance(v, _F):
            return v.name
        if SHARE_DQ and v.name in self._dq_cache:
            return self._dq_cache[v.name]
        s, z = self.act_qparams(v.scale, v.zp)
        out = self.node("DequantizeLinear", [v.name, s, z], f"{base}_dq")
        self._dq_cache[v.name] = out
        return out

    def requant_same(self, x: str, like: _Q, base: str) -> _Q:
        return self.quantize(x, like.scale, like.zp, like.bits, like.qmin, base)


def _pads(module: nn.Module, in_shape: tuple[int, ...]) -> list[int]:
    k = module.kernel_size
    dims = len(k)
    if isinstance(module.padding, str):
        if module.padding == "valid":
            return [0] * (2 * dims)
        total = [module.dilation[i] * (k[i] - 1) for i in range(dims)]
        return [t // 2 for t in total] + [t - t // 2 for t in total]
    p = list(module.padding)
    return p + p


def _tuple(v: Any, n: int) -> list[int]:
    return list(v) if isinstance(v, (tuple, list)) else [int(v)] * n


def _shape(node: fx.Node) -> tuple[int, ...]:
    meta = node.meta.get("tensor_meta")
    if meta is None or not hasattr(meta, "shape"):
        raise QDQExportError(f"no shape known for node {node.name}")
    return tuple(meta.shape)


def _emit_layer(b: _Builder, name: str, m: nn.Module, x: _Q, node: fx.Node) -> _Q:
    if getattr(m, "bn", None) is not None:
        raise QDQExportError(f"{name}: BatchNorm still attached (QAT bn=simulate); call fold_simulated_bn first")
    if not m.act_quantizer.enabled:
        raise QDQExportError(f"{name}: activations are not quantized (act_bits=32); QDQ export needs them")
    wq = m.weight_quantizer
    mask = m._mask()
    q_w, s_w = wq.quantize_int(m.weight.detach(), mask)
    q_w = q_w.cpu().numpy()
    s_w = s_w.detach().cpu().numpy().astype(np.float32)
    if np.abs(q_w).max(initial=0) > 127:
        raise QDQExportError(f"{name}: weight codes exceed the int8 container")
    per_channel = bool(wq.per_channel)
    w_name = b.init(f"{name}.weight_q", q_w.astype(np.int8))
    b.weight_bits[w_name] = int(wq.bits)
    b.weight_format[w_name] = str(wq.format)
    book = getattr(m, "codebook", None)
    if isinstance(book, torch.Tensor) and isinstance(getattr(m, "weight_index", None), torch.Tensor):
        k = int(book.shape[1])
        b.codebook[w_name] = {"clusters": k, "index_bits": max(1, (k - 1).bit_length()),
                              "scope": "layer" if book.shape[0] == 1 else "channel"}
    if per_channel:
        ws = b.init(f"{name}.weight_scale", s_w.reshape(-1))
        wz = b.init(f"{name}.weight_zp", np.zeros(s_w.size, dtype=np.int8))
        w_f = b.node("DequantizeLinear", [w_name, ws, wz], f"{name}.weight", axis=0)
    else:
        ws = b.init(f"{name}.weight_scale", np.array(s_w.reshape(-1)[0], dtype=np.float32))
        wz = b.init(f"{name}.weight_zp", np.array(0, dtype=np.int8))
        w_f = b.node("DequantizeLinear", [w_name, ws, wz], f"{name}.weight")
    inputs = [b.dq(x, f"{name}.input"), w_f]
    s_b = (np.float32(x.scale) * s_w.reshape(-1)).astype(np.float32)
    if m.bias is not None:
        bias = m.bias.detach().cpu().double().numpy()
        s_full = np.broadcast_to(s_b, bias.shape).astype(np.float64) if per_channel else np.full(bias.shape, s_b[0])
        q_b = np.clip(np.round(bias / s_full), -(2**31), 2**31 - 1).astype(np.int32)
        b_name = b.init(f"{name}.bias_q", q_b)
        b.weight_bits[b_name] = 32
        if per_channel:
            bs = b.init(f"{name}.bias_scale", s_b)
            bz = b.init(f"{name}.bias_zp", np.zeros(s_b.size, dtype=np.int32))
            inputs.append(b.node("DequantizeLinear", [b_name, bs, bz], f"{name}.bias", axis=0))
        else:
            bs = b.init(f"{name}.bias_scale", np.array(s_b[0], dtype=np.float32))
            bz = b.init(f"{name}.bias_zp", np.array(0, dtype=np.int32))
            inputs.append(b.node("DequantizeLinear", [b_name, bs, bz], f"{name}.bias"))
    if isinstance(m, QLinear):
        if len(_shape(node.args[0])) != 2:
            raise QDQExportError(f"{name}: Linear on a rank-{len(_shape(node.args[0]))} input; flatten to 2-D first")
        y = b.node("Gemm", inputs, f"{name}.out", transB=1)
    else:
        if m.padding_mode != "zeros":
            raise QDQExportError(f"{name}: padding_mode {m.padding_mode!r} (only zeros)")
        dims = len(m.kernel_size)
        y = b.node("Conv", inputs, f"{name}.out", kernel_shape=list(m.kernel_size), strides=_tuple(m.stride, dims),
                   pads=_pads(m, _shape(node.args[0])), dilations=_tuple(m.dilation, dims), group=int(m.groups))
    aq = m.act_quantizer
    out = _emit_act(b, aq, y, name)
    b.layers[name] = {"type": type(m).__name__, "weight": w_name, "weight_bits": int(wq.bits),
                      "weight_format": str(wq.format), "per_channel": per_channel, "act_bits": int(aq.bits),
                      "fused_relu": bool(m.fused_relu), "output": out.name}
    return out


def _emit_act(b: _Builder, aq: ActQuantizer, y: str, base: str) -> _Q:
    if not aq.enabled or not bool(aq.initialized):
        raise QDQExportError(f"{base}: activation quantizer not calibrated / disabled")
    scale = float(aq.scale.detach().cpu())
    zp = int(round(float(aq.zero_point.detach().cpu())))
    if aq.fused_relu and zp != -128:  # Q's saturation at -128 is the ReLU only when zp = -128
        y = b.node("Relu", [y], f"{base}.relu")
    if aq.bits == 8 and not -128 <= zp <= 127:
        raise QDQExportError(f"{base}: zero point {zp} outside int8")
    return b.quantize(y, scale, zp, aq.bits, aq.qmin, base)


def _slice_args(index: Any, rank: int) -> tuple[list[int], list[int], list[int], list[int]]:
    if not isinstance(index, tuple):
        index = (index,)
    starts, ends, axes, steps = [], [], [], []
    axis = 0
    for item in index:
        if item is Ellipsis:
            axis = rank - (len(index) - 1 - index.index(Ellipsis)) - 0
            continue
        if not isinstance(item, slice):
            raise QDQExportError(f"unsupported index {item!r} (only slices)")
        if item != slice(None):
            starts.append(0 if item.start is None else int(item.start))
            ends.append(2**62 if item.stop is None else int(item.stop))
            axes.append(axis)
            steps.append(1 if item.step is None else int(item.step))
        axis += 1
    return starts, ends, axes, steps


def export_qdq(model: nn.Module, input_shape: tuple[int, ...], path: Path | str, opset: int = 17) -> Path:
    """Write the quantized ``model`` to ``path`` as QDQ ONNX (see the module docstring); returns the path.

    The model must be calibrated (scales set) and BN folded. Checked with ``onnx.checker``.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was = model.training
    model.eval()
    gm = G.trace(model)
    device = next((p.device for p in gm.parameters()), torch.device("cpu"))
    G.shape_prop(gm, torch.zeros(1, *tuple(input_shape), device=device))
    b = _Builder()
    env: dict[fx.Node, _Q | _F | None] = {}
    graph_inputs, graph_outputs = [], []

    def value(a: Any) -> _Q | _F:
        if not isinstance(a, fx.Node) or env.get(a) is None:
            raise QDQExportError(f"unsupported argument {a!r}")
        return env[a]

    for node in gm.graph.nodes:
        m = G.module_of(gm, node) if node.op == "call_module" else None
        base = str(node.target) if node.op == "call_module" else node.name
        if node.op == "placeholder":
            name = b.fresh("input")
            graph_inputs.append(onnx.helper.make_tensor_value_info(
                name, onnx.TensorProto.FLOAT, ["batch", *map(int, input_shape)]))
            env[node] = _F(name)
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node):
                raise QDQExportError("the model must return a single tensor")
            v = value(out)
            res = b.node("Identity", [b.dq(v, "logits")], "logits") if isinstance(v, _Q) else \
                b.node("Identity", [v.name], "logits")
            graph_outputs.append(onnx.helper.make_tensor_value_info(
                res, onnx.TensorProto.FLOAT, ["batch", *map(int, _shape(out)[1:])]))
        elif isinstance(m, QUANT_LAYER_TYPES):
            x = value(node.args[0])
            if not isinstance(x, _Q):
                raise QDQExportError(f"{base}: its input is not quantized")
            env[node] = _emit_layer(b, base, m, x, node)
        elif isinstance(m, ActQuantizer):
            x = value(node.args[0])
            env[node] = _emit_act(b, m, b.dq(x, base), base)
        elif node.op == "get_attr":
            raise QDQExportError(f"unsupported get_attr {node.target}")
        elif isinstance(m, G.IDENTITY_TYPES) or (node.op == "call_function" and node.target is nn.functional.dropout) \
                or (node.op == "call_method" and node.target == "contiguous"):
            env[node] = value(node.args[0])
        elif G.is_relu(gm, node):
            x = value(node.args[0])
            if isinstance(x, _Q) and x.nonneg:
                env[node] = x  # ReLU of a tensor whose range starts at 0: identity on the int8 grid
            elif isinstance(x, _Q):
                env[node] = b.requant_same(b.node("Relu", [b.dq(x, base)], base), x, base)
            else:
                env[node] = _F(b.node("Relu", [x.name], base))
        elif isinstance(m, G.MAXPOOL_TYPES) or (node.op == "call_function"
                                                and node.target in (nn.functional.max_pool1d, nn.functional.max_pool2d)):
            if m is None:
                raise QDQExportError(f"{base}: use nn.MaxPool modules (functional max_pool not supported)")
            x = value(node.args[0])
            dims = 1 if isinstance(m, nn.MaxPool1d) else 2
            k = _tuple(m.kernel_size, dims)
            s = _tuple(m.stride if m.stride is not None else m.kernel_size, dims)
            p = _tuple(m.padding, dims)
            y = b.node("MaxPool", [b.dq(x, base)], base, kernel_shape=k, strides=s, pads=p + p,
                       dilations=_tuple(m.dilation, dims), ceil_mode=int(m.ceil_mode))
            env[node] = b.requant_same(y, x, base) if isinstance(x, _Q) else _F(y)
        elif isinstance(m, G.AVGPOOL_TYPES):
            x = value(node.args[0])
            if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
                osz = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size,)
                if any(o not in (1, None) for o in osz):
                    raise QDQExportError(f"{base}: adaptive average pooling to {m.output_size} (only 1)")
                y = b.node("GlobalAveragePool", [b.dq(x, base)], base)
            else:
                dims = 1 if isinstance(m, nn.AvgPool1d) else 2
                k = _tuple(m.kernel_size, dims)
                p = _tuple(m.padding, dims)
                y = b.node("AveragePool", [b.dq(x, base)], base, kernel_shape=k,
                           strides=_tuple(m.stride if m.stride else m.kernel_size, dims), pads=p + p,
                           ceil_mode=int(m.ceil_mode), count_include_pad=int(m.count_include_pad))
            env[node] = _F(y)
        elif isinstance(m, nn.Flatten) or (node.op == "call_function" and node.target is torch.flatten) or (
                node.op == "call_method" and node.target in ("flatten", "view", "reshape", "squeeze", "unsqueeze")) \
                or (node.op == "call_function" and node.target in (torch.squeeze, torch.unsqueeze, torch.reshape)):
            x = value(node.args[0])
            in_shape, out_shape = _shape(node.args[0]), _shape(node)
            if out_shape[0] != in_shape[0]:
                raise QDQExportError(f"{base}: reshapes across the batch dimension are not supported")
            shp = b.init(f"{base}.shape", np.array([0, *out_shape[1:]], dtype=np.int64))
            y = b.node("Reshape", [b.dq(x, base), shp], base)
            env[node] = b.requant_same(y, x, base) if isinstance(x, _Q) else _F(y)
        elif node.op == "call_function" and node.target is operator.getitem and G.produces_tensor(node):
            x = value(node.args[0])
            starts, ends, axes, steps = _slice_args(node.args[1], len(_shape(node.args[0])))
            if 0 in axes:
                raise QDQExportError(f"{base}: slicing the batch dimension is not supported")
            ins = [b.dq(x, base)] + [b.init(f"{base}.{k}", np.array(v, dtype=np.int64))
                                     for k, v in zip(("starts", "ends", "axes", "steps"), (starts, ends, axes, steps))]
            y = b.node("Slice", ins, base)
            env[node] = b.requant_same(y, x, base) if isinstance(x, _Q) else _F(y)
        elif G.is_add(node):
            a, c = value(node.args[0]), value(node.args[1])
            env[node] = _F(b.node("Add", [b.dq(a, f"{base}.a"), b.dq(c, f"{base}.b")], base))
        elif node.op == "call_function" and node.target in G.CAT_FUNCS:
            tensors = node.args[0]
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
            ins = [b.dq(value(t), f"{base}.{i}") for i, t in enumerate(tensors)]
            env[node] = _F(b.node("Concat", ins, base, axis=int(dim)))
        elif node.op == "call_method" and node.target == "size" or not G.produces_tensor(node):
            env[node] = None  # shape arithmetic feeding view/reshape: the static shape is used instead
        else:
            raise QDQExportError(f"unsupported operation {node.op} {node.target} ({base}) in QDQ export")

    graph = onnx.helper.make_graph(b.nodes, type(model).__name__, graph_inputs, graph_outputs, b.inits)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="edgeflow", producer_version="0.1")
    proto.ir_version = min(proto.ir_version, 9)
    meta = {
        "edgeflow.weight_bits": b.weight_bits,
        "edgeflow.weight_format": b.weight_format,
        "edgeflow.act_bits": b.act_bits,
        "edgeflow.layers": b.layers,
        "edgeflow.codebook": b.codebook,
        "edgeflow.format": "qdq",
    }
    onnx.helper.set_model_props(proto, {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    model.train(was)
    return path


def weight_bits_metadata(path: Path | str) -> dict[str, int]:
    """``{initializer: bits}`` recorded in an exported file (``edgeflow.weight_bits``)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(props.get("edgeflow.weight_bits", "{}"))


def codebook_metadata(path: Path | str) -> dict[str, dict[str, Any]]:
    """``{initializer: {"clusters", "index_bits", "scope"}}`` recorded in an exported file
    (``edgeflow.codebook``; empty for a model without clustered layers)."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    return json.loads(props.get("edgeflow.codebook", "{}"))


__all__ = ["export_qdq", "QDQExportError", "codebook_metadata", "weight_bits_metadata"]
