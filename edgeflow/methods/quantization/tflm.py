"""TFLite Micro's integer arithmetic in the fake-quant forward (``QuantConfig.rounding = "tflm"``).

The default fake-quant forward rounds as onnxruntime does (float multiplier, half to even), so its
predictions equal the ``onnx``-mode integer runtime's. TFLite Micro / CMSIS-NN requantize with a Q31
multiplier and *double rounding* and quantize the graph input half away from zero
(``edgeflow.runtime.quant``); about 0.3 % of outputs then differ by one step per layer, enough to flip
a few test predictions. With ``rounding: tflm`` the quantized model computes those integers itself:

- the graph input quantizer rounds ``x / s`` half away from zero (TFLite's ``AffineQuantize``);
- a Conv1d/Conv2d/Linear layer whose input comes from an activation quantizer (through max-pool,
  flatten, ReLU, dropout, ...) forms the exact integer accumulator ``Σ (q_x − zp_x)·q_w + q_b``
  (int32 bias ``round(b / (s_x·s_w))``, as the export writes it) and requantizes it with
  ``requantize_tflm`` (Q31 multiplier of ``s_x·s_w[c]/s_y``, double rounding, fused-ReLU clamp);
- the quantizer after a global average pool requantizes the integer sum of its taps with
  ``QuantizeMultiplier(s_x / (s_y·n))``, as the runtime's tflm global average pool;
- the quantizer after an unpadded average pool (``AvgPool1d`` / ``AvgPool2d``, e.g. an early-exit
  head) divides each window's integer sum by its size rounding half away from zero and rescales it
  with ``QuantizeMultiplier(s_x / s_y)`` (the raw integers averaged when both grids are equal), as
  the runtime's tflm average pool.

In eval mode only (evaluation, validation, the runtime check); training keeps the float fake-quant
forward, whose straight-through gradients are the same. The integers replace the fake-quant values
(``y_fq + (y_int − y_fq).detach()``). Residual adds, concatenations and padded average pools keep
the float fake-quant rounding (TFLM's rescaling add is not simulated; on the zoo's ``resnet8`` with 256
random inputs the logits were still bit-equal to the tflm runtime's). Layers with BatchNorm attached
(QAT ``bn: simulate``, before folding), disabled quantizers and calibration use the plain forward.

``link`` runs once in ``quantize_model``: it records each simulated module's input quantizer as a
plain attribute (``_tflm_input``: not a submodule, so the state dict is unchanged; ``copy.deepcopy``
of the model keeps the references inside the copy) and sets the public flag ``tflm_rounding``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, fx, nn

from edgeflow import graph as G
from edgeflow.methods.quantization.layers import QUANT_LAYER_TYPES
from edgeflow.methods.quantization.quantizers import ActQuantizer

GLOBAL_POOLS = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)
WINDOW_POOLS = (nn.AvgPool1d, nn.AvgPool2d)


def link(gm: fx.GraphModule) -> None:
    """Switch the quantized ``gm`` (``quantize_model``'s, shapes propagated before the quantizers were
    inserted) to tflm rounding."""
    for node in gm.graph.nodes:
        m = G.module_of(gm, node)
        if isinstance(m, ActQuantizer) and getattr(node.args[0], "op", None) == "placeholder":
            m.tflm_rounding = True  # the graph input: QuantizeLinear -> TFLite AffineQuantize
        elif isinstance(m, QUANT_LAYER_TYPES):
            source = _source_quantizer(gm, node.args[0])
            if source is not None:
                m.tflm_rounding = True
                m.__dict__["_tflm_input"] = source
        elif isinstance(m, ActQuantizer) and not m.fused_relu:
            pool = node.args[0]
            pm = G.module_of(gm, pool) if isinstance(pool, fx.Node) else None
            taps = _pool_taps(gm, pool, pm)
            source = _source_quantizer(gm, pool.args[0]) if taps is not None else None
            if source is not None:
                m.tflm_rounding = True
                m.__dict__["_tflm_input"] = source
                m.__dict__["_tflm_taps"] = taps
                m.__dict__["_tflm_window"] = isinstance(pm, WINDOW_POOLS)


def _pool_taps(gm: fx.GraphModule, pool: Any, pm: nn.Module | None) -> int | None:
    """Taps per output of a global average pool to size 1 or an unpadded, floor-mode average pool
    (every window full); None for any other node."""
    if isinstance(pm, GLOBAL_POOLS) and all(o in (1, None) for o in _tuple(pm.output_size)):
        shape = _shape(gm, pool.args[0])
        return None if shape is None else int(np.prod(shape[2:]))
    if isinstance(pm, WINDOW_POOLS) and not any(_tuple(pm.padding)) and not pm.ceil_mode:
        kernel = _tuple(pm.kernel_size)
        return int(np.prod(kernel)) ** (2 if isinstance(pm, nn.AvgPool2d) and len(kernel) == 1 else 1)
    return None


def _tuple(v: Any) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _shape(gm: fx.GraphModule, node: fx.Node) -> tuple[int, ...] | None:
    """``node``'s propagated shape; an inserted quantizer (no shape recorded) has its input's."""
    while G.shape_of(node) is None and isinstance(G.module_of(gm, node), ActQuantizer):
        node = node.args[0]
    return G.shape_of(node)


def _source_quantizer(gm: fx.GraphModule, node: Any) -> ActQuantizer | None:
    """The activation quantizer whose grid ``node``'s value is on (through transparent ops), if any."""
    for _ in range(32):
        if not isinstance(node, fx.Node):
            return None
        m = G.module_of(gm, node)
        if isinstance(m, ActQuantizer):
            return m
        if isinstance(m, QUANT_LAYER_TYPES):
            return m.act_quantizer
        if not G.is_transparent(gm, node) or not node.args:
            return None
        node = node.args[0]
    return None


def _live(q: ActQuantizer | None) -> bool:
    return q is not None and q.enabled and not q.calibrating and bool(q.initialized)


def _straight_through(y_fq: Tensor, q: np.ndarray, out: ActQuantizer) -> Tensor:
    """``y_fq`` with the values of the integers ``q`` (output grid of ``out``), gradient of ``y_fq``."""
    zp = float(out.zero_point.detach())
    y = (torch.from_numpy(q.astype(np.float32)).to(y_fq.device) - zp) * out.scale.detach()
    return y_fq + (y.to(y_fq.dtype) - y_fq).detach()


def _centered(x: Tensor, source: ActQuantizer) -> Tensor:
    """The integers ``q − zp`` of a tensor on ``source``'s grid (exact: the values are multiples of s)."""
    return torch.round(x.detach().double() / float(source.scale.detach()))


def quantize_input(q: ActQuantizer, x: Tensor, y_fq: Tensor) -> Tensor:
    """The graph input quantizer's output with TFLite's half-away-from-zero rounding."""
    if not _live(q):
        return y_fq
    v = (x.detach().float() / q.scale.detach().float()).double()  # float32 division, as the runtime
    r = torch.sign(v) * torch.floor(v.abs() + 0.5) + float(q.zero_point.detach())
    ints = torch.clamp(r, q.qmin, q.qmax).cpu().numpy()
    return _straight_through(y_fq, ints, q)


def requantize_layer(layer: nn.Module, x: Tensor, w_fq: Tensor, y_fq: Tensor) -> Tensor:
    """A quantized conv / linear layer's output as TFLite Micro computes it (see the module docstring)."""
    from edgeflow.runtime import quant

    source, out = layer.__dict__.get("_tflm_input"), layer.act_quantizer
    if not (_live(source) and _live(out) and layer.weight_quantizer.enabled and getattr(layer, "bn", None) is None):
        return y_fq
    s_x = np.float32(source.scale.detach().cpu())
    s_w = layer.weight_quantizer.scale.detach().cpu().float().reshape(-1)
    s_w = s_w.expand(layer.weight.shape[0]) if s_w.numel() == 1 else s_w
    view = (-1,) + (1,) * (w_fq.ndim - 1)
    q_w = torch.round(w_fq.detach().double() / s_w.double().to(w_fq.device).reshape(view))
    acc = layer._float_op(_centered(x, source), q_w, None)
    channel = (1, -1) + (1,) * (acc.ndim - 2)
    if layer.bias is not None:
        s_b = (s_x * s_w.numpy()).astype(np.float32).astype(np.float64)
        q_b = np.clip(np.round(layer.bias.detach().cpu().double().numpy() / s_b), -(2**31), 2**31 - 1)
        acc = acc + torch.from_numpy(q_b).to(acc.device).reshape(channel)
    s_y, zp = np.float32(out.scale.detach().cpu()), int(round(float(out.zero_point.detach())))
    real = np.float64(s_x) * s_w.numpy().astype(np.float64) / np.float64(s_y)
    mult, shift = quant.quantize_multiplier(real)
    lo = max(out.qmin, zp) if layer.fused_relu else out.qmin
    ints = quant.requantize_tflm(acc.cpu().numpy(), mult.reshape(channel), shift.reshape(channel), zp,
                                 np.dtype(np.int8), lo, out.qmax)
    return _straight_through(y_fq, ints, out)


def requantize_pool(q: ActQuantizer, mean: Tensor, y_fq: Tensor) -> Tensor:
    """The quantizer after an average pool of n taps per output, from the integer sum Σ (q − zp_x)
    (recovered from the float mean: exact while n·2^8 stays far below float32's 2^24). A global
    pool: ``zp_y + MultiplyByQuantizedMultiplier(Σ, QuantizeMultiplier(s_x / (s_y·n)))``; a windowed
    one (``_tflm_window``): ``avg = Σ / n`` rounded half away from zero, then ``zp_y +
    MultiplyByQuantizedMultiplier(avg, QuantizeMultiplier(s_x / s_y))`` — or, with equal scales and
    zero points, the raw integers' rounded average."""
    from edgeflow.runtime import quant

    source, taps = q.__dict__.get("_tflm_input"), q.__dict__.get("_tflm_taps")
    if not (_live(source) and _live(q)):
        return y_fq
    s_x, s_y = np.float32(source.scale.detach().cpu()), np.float32(q.scale.detach().cpu())
    acc = torch.round(mean.detach().double() * taps / float(s_x)).cpu().numpy().astype(np.int64)
    zp = int(round(float(q.zero_point.detach())))
    if not q.__dict__.get("_tflm_window"):
        mult, shift = quant.quantize_multiplier(float(s_x) / (float(s_y) * taps))
        ints = quant.requantize_tflm(acc, mult, shift, zp, np.dtype(np.int8), q.qmin, q.qmax)
        return _straight_through(y_fq, ints, q)
    zp_x = int(round(float(source.zero_point.detach())))
    same = s_x == s_y and zp_x == zp
    total = acc + zp_x * taps if same else acc
    avg = np.where(total > 0, (total + taps // 2) // taps, -((-total + taps // 2) // taps))
    if not same:
        mult, shift = quant.quantize_multiplier(float(s_x) / float(s_y))
        avg = quant.multiply_by_quantized_multiplier(avg, mult, shift) + zp
    return _straight_through(y_fq, np.clip(avg, q.qmin, q.qmax), q)
