"""Integer softmax (int8 → int8, output scale 1/256, zero point -128).

tflm mode is TFLite's reference int8 SOFTMAX (``reference_ops::Softmax``, TFLite Micro's too)::

    (m, left_shift) = QuantizeMultiplier(min(beta · s_x · 2**26, 2**31 - 1))      # ≥ 1
    diff_min = -floor(31 · 2**26 / 2**left_shift)
    d = x - max(x)  per row;  taps with d < diff_min give qmin
    e = exp_on_negative_values(SRDHM(d · 2**left_shift, m))      # FixedPoint<5> → <0>
    sum = Σ RoundingDivideByPOT(e, 12);  (r, bits) = GetReciprocal(sum, 12)
    q = clamp(RoundingDivideByPOT(SRDHM(r, e), bits + 31 - 8) + qmin)

onnx mode dequantizes, computes the float32 softmax and quantizes with QuantizeLinear (the float
path between DequantizeLinear and QuantizeLinear).
"""

from __future__ import annotations

import math

import numpy as np

from edgeflow.runtime import fixedpoint, quant
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


class IntSoftmax(Op):
    kind = "int_softmax"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.axis = int(at["axis"])
        self.beta = float(at["beta"])
        self.sx, self.zpx = np.float32(at["in_scale"]), int(at["in_zero_point"])
        self.sy, self.zpy = np.float32(at["out_scale"]), int(at["out_zero_point"])
        self.out_dtype = np.dtype(at["out_dtype"])
        real = min(self.beta * float(self.sx) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)), float(2**31 - 1))
        m, shift = quant.quantize_multiplier(real)
        self.mult, self.left_shift = int(m[0]), int(shift[0])
        if self.left_shift < 0:
            raise ValueError(f"beta * input scale {real:g} too small for the fixed-point softmax")
        radius = ((1 << SCALED_DIFF_INTEGER_BITS) - 1) * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)) / (1 << self.left_shift)
        self.diff_min = -int(math.floor(radius))

    def run(self, values, mode):
        x = values[0]
        if mode == "onnx":
            xf = quant.dequantize_linear(x, self.sx, self.zpx) * np.float32(self.beta)
            e = np.exp(xf - xf.max(axis=self.axis, keepdims=True))
            p = (e / e.sum(axis=self.axis, keepdims=True)).astype(np.float32)
            return [quant.quantize_linear(p, self.sy, self.zpy, self.out_dtype)]
        xm = np.moveaxis(x, self.axis, -1).astype(np.int64)
        diff = xm - xm.max(axis=-1, keepdims=True)
        valid = diff >= self.diff_min
        scaled = quant.saturating_rounding_doubling_high_mul(diff << self.left_shift, np.int64(self.mult))
        e = fixedpoint.exp_on_negative_values(np.where(valid, scaled, 0), SCALED_DIFF_INTEGER_BITS)
        total = np.where(valid, quant.rounding_divide_by_pot(e, ACCUMULATION_INTEGER_BITS), 0)
        total = total.sum(axis=-1, keepdims=True)
        r, bits = fixedpoint.reciprocal(total, ACCUMULATION_INTEGER_BITS)
        qmin, qmax = quant.qrange(self.out_dtype)
        out_bits = 8 * self.out_dtype.itemsize
        q = quant.rounding_divide_by_pot(quant.saturating_rounding_doubling_high_mul(r, e), bits + 31 - out_bits) + qmin
        q = np.where(valid, np.clip(q, qmin, qmax), qmin)
        return [np.moveaxis(q.astype(self.out_dtype), -1, self.axis)]
