"""Integer hard-swish, x · relu6(x + 3) / 6 — TFLite's reference int8 ``HardSwish`` (both modes).

16-bit fixed point throughout (``reference_ops::HardSwish``): the input, centred and shifted left by
7, is scaled to the output (Q15 multiplier of ``s_x / (128 s_y)``) and, separately, to a "relu-ish"
value in [-1, 1] (Q15 multiplier of ``s_x / 128 / (3 / 32768)``, saturating shifts), mapped to
[0, 1]; their non-rounding doubling high product is shifted right by the output exponent, plus zp_y.

An ONNX ``DequantizeLinear → HardSwish → QuantizeLinear`` (``onnx_float``) runs onnxruntime's float32
path in onnx mode, as a 256-entry table: ``x = float32(q - zp_x) · s_x``, ``x · clip(x/6 + 1/2, 0, 1)``
(``float32(1/6) · x + 0.5``, as ``HardSigmoid``), then ``QuantizeLinear`` (true division, half to
even, saturation; measured bit-equal to onnxruntime); in tflm mode TFLite's fixed point above.
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime import quant
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op

I16_MIN, I16_MAX = -(2**15), 2**15 - 1


def _q15(real: float) -> tuple[int, int]:
    """QuantizeMultiplier then DownScaleInt32ToInt16Multiplier: (Q15 multiplier, exponent)."""
    m, e = (int(v[0]) for v in quant.quantize_multiplier(real))
    return (I16_MAX if m >= 2**31 - 1 - (1 << 15) else (m + (1 << 15)) >> 16), e


def _srdhm16(a: np.ndarray, b: int) -> np.ndarray:
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 14, 1 - (1 << 14))
    s = ab + nudge
    res = np.where(s >= 0, s >> 15, -((-s) >> 15))
    return np.where((a == I16_MIN) & (b == I16_MIN), I16_MAX, res)


def _sdhm16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = a * b
    res = np.where(ab >= 0, ab >> 15, -((-ab) >> 15))
    return np.where((a == I16_MIN) & (b == I16_MIN), I16_MAX, res)


def _sat_shift16(x: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(x << amount, I16_MIN, I16_MAX)


class HardSwish(Op):
    kind = "hard_swish"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.zpx, self.zpy = int(at["in_zero_point"]), int(at["out_zero_point"])
        self.out_dtype = np.dtype(at["out_dtype"])
        hires = np.float32(np.float32(1.0 / 128.0) * np.float32(at["in_scale"]))
        self.out_m, self.out_e = _q15(float(np.float32(hires / np.float32(at["out_scale"]))))
        self.relu_m, self.relu_e = _q15(float(np.float32(hires / np.float32(3.0 / 32768.0))))
        if self.out_e > 0:
            raise ValueError("input scale / (128 · output scale) must be below 1")
        self.onnx_table = self._float_table(at) if at.get("onnx_float") else None

    def _float_table(self, at: dict) -> tuple[int, np.ndarray]:
        """(lowest input value, onnxruntime's float32 DQ → HardSwish → Q output for every input value)."""
        lo, hi = quant.qrange(at["in_dtype"])
        x = ((np.arange(lo, hi + 1) - self.zpx).astype(np.float32) * np.float32(at["in_scale"])).astype(np.float32)
        gate = np.clip((np.float32(1.0 / 6.0) * x).astype(np.float32) + np.float32(0.5), np.float32(0), np.float32(1))
        y = (x * gate.astype(np.float32)).astype(np.float32)
        return lo, quant.quantize_linear(y, np.float32(at["out_scale"]), self.zpy, self.out_dtype)

    def run(self, values, mode):
        if mode == "onnx" and self.onnx_table is not None:
            lo, table = self.onnx_table
            return [table[values[0].astype(np.int64) - lo]]
        v = values[0].astype(np.int64) - self.zpx
        hires = v * 128
        pre = _srdhm16(hires, self.out_m)
        r = hires
        if self.relu_e > 0:
            r = _sat_shift16(r, self.relu_e - 1)
        r = _srdhm16(r, self.relu_m)
        if self.relu_e > 0:
            r = _sat_shift16(r, 1)
        if self.relu_e < 0:
            r = quant.rounding_divide_by_pot(r, -self.relu_e)
        r = (r + (1 << 15)) >> 1
        out = quant.rounding_divide_by_pot(_sdhm16(r, pre), -self.out_e) + self.zpy
        qmin, qmax = quant.qrange(self.out_dtype)
        return [np.clip(out, qmin, qmax).astype(self.out_dtype)]
