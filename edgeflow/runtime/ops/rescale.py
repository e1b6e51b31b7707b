"""Requantize between two quantized representations (DQ→[Relu/Clip]→Q with other parameters).

onnx mode: exactly onnxruntime's float path ``QuantizeLinear(clamp(DequantizeLinear(q)))``.
tflm mode: TFLM ``Requantize``: ``zp_y + MultiplyByQuantizedMultiplier(q - zp_x, s_x / s_y)``.
An optional clamp (ReLU/Clip) is applied in the real domain (onnx) or on the integers (tflm).
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime import quant
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op


def rescale(q, sx, zpx, sy, zpy, out_dtype, mode, lo=None, hi=None):
    out_dtype = np.dtype(out_dtype)
    if mode == "onnx":
        x = quant.dequantize_linear(q, np.float32(sx), zpx)
        if lo is not None or hi is not None:
            x = np.clip(x, -np.inf if lo is None else np.float32(lo), np.inf if hi is None else np.float32(hi))
        return quant.quantize_linear(x, np.float32(sy), zpy, out_dtype)
    m, sh = quant.quantize_multiplier(float(np.float32(sx)) / float(np.float32(sy)))
    qmin, qmax = quant.qrange(out_dtype)
    v = quant.multiply_by_quantized_multiplier(q.astype(np.int64) - zpx, m, sh) + zpy
    a, b = quant.activation_range("clip" if (lo is not None or hi is not None) else None, lo, hi, float(sy), zpy, out_dtype, mode)
    return np.clip(v, max(a, qmin), min(b, qmax)).astype(out_dtype)


class Rescale(Op):
    kind = "rescale"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.sx, self.zpx = np.float32(at["in_scale"]), int(at["in_zero_point"])
        self.sy, self.zpy = np.float32(at["out_scale"]), int(at["out_zero_point"])
        self.out_dtype, self.lo, self.hi = np.dtype(at["out_dtype"]), at["lo"], at["hi"]

    def run(self, values, mode):
        return [rescale(values[0], self.sx, self.zpx, self.sy, self.zpy, self.out_dtype, mode, self.lo, self.hi)]


class Clamp(Op):
    """ReLU / ReLU6 / Clip on integers with unchanged parameters: clip(q, act_min, act_max)."""

    kind = "clamp"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.range = {m: quant.activation_range("clip", at["lo"], at["hi"], at["in_scale"], at["in_zero_point"],
                                                np.dtype(at["in_dtype"]), m) for m in quant.MODES}

    def run(self, values, mode):
        a, b = self.range[mode]
        return [np.clip(values[0], a, b).astype(values[0].dtype)]
