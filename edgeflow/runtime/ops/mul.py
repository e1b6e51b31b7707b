"""Integer elementwise multiply with rescaling (TFLite MUL, DQ,DQ→Mul→Q).

tflm mode is TFLite's reference int8 Mul::

    M = QuantizeMultiplier(double(s_a) · s_b / s_y)
    q = clamp(zp_y + MultiplyByQuantizedMultiplier((a - zp_a) · (b - zp_b), M), act_min, act_max)

onnx mode is the float path between DequantizeLinear and QuantizeLinear: the float32 product of
the dequantized inputs, quantized (round half to even), then the activation clamp.
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime import quant
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op


class Mul(Op):
    kind = "mul"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.const_b = node.params.get("const_b")
        self.sa, self.sb, self.sy = np.float32(at["a_scale"]), np.float32(at["b_scale"]), np.float32(at["out_scale"])
        self.zpa, self.zpb, self.zpy = int(at["a_zero_point"]), int(at["b_zero_point"]), int(at["out_zero_point"])
        self.out_dtype = np.dtype(at["out_dtype"])
        act = at["activation"]
        self.act_range = {m: quant.activation_range(act[0], act[1], act[2], float(self.sy), self.zpy, self.out_dtype, m)
                          for m in quant.MODES}
        self.m, self.shift = quant.quantize_multiplier(float(self.sa) * float(self.sb) / float(self.sy))

    def run(self, values, mode):
        a = values[0]
        b = self.const_b if self.const_b is not None else values[1]
        lo, hi = self.act_range[mode]
        if mode == "onnx":
            prod = quant.dequantize_linear(a, self.sa, self.zpa) * quant.dequantize_linear(b, self.sb, self.zpb)
            q = quant.quantize_linear(prod, self.sy, self.zpy, self.out_dtype)
            return [np.clip(q, lo, hi).astype(self.out_dtype)]
        prod = (a.astype(np.int64) - self.zpa) * (b.astype(np.int64) - self.zpb)
        v = quant.multiply_by_quantized_multiplier(prod, self.m, self.shift) + self.zpy
        return [np.clip(v, lo, hi).astype(self.out_dtype)]
