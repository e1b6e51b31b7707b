"""Elementwise int8 activations by a 256-entry table: LOGISTIC (sigmoid) and TANH.

The table is TFLite's ``PopulateLookupTable``: for every int8 value v, ``x = float32(s_x · (v - zp_x))``,
``f(x)`` in float32 (``1 / (1 + exp(-x))`` or ``tanh(x)``, the libm calls correctly rounded to
float32), ``q = clamp(round(f(x) · float32(1 / s_y)) + zp_y)``. tflm mode rounds half away from zero
(``std::round``, what LiteRT's reference kernels use), onnx mode half to even.
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime import quant
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op


def _transform(function: str, x: np.ndarray) -> np.ndarray:
    if function == "logistic":
        e = np.exp(-x.astype(np.float64)).astype(np.float32)
        return (np.float32(1) / (np.float32(1) + e)).astype(np.float32)
    if function == "tanh":
        return np.tanh(x.astype(np.float64)).astype(np.float32)
    raise ValueError(f"unknown table function {function!r}")


class Lut(Op):
    kind = "lut"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.out_dtype = np.dtype(at["out_dtype"])
        in_dtype = np.dtype(at["in_dtype"])
        if in_dtype.itemsize != 1 or self.out_dtype.itemsize != 1:
            raise ValueError("table activations need 8-bit input and output")
        lo, hi = quant.qrange(in_dtype)
        v = np.arange(lo, hi + 1, dtype=np.int32)
        x = (np.float32(at["in_scale"]) * (v - int(at["in_zero_point"])).astype(np.float32)).astype(np.float32)
        y = (_transform(at["function"], x) * np.float32(np.float32(1) / np.float32(at["out_scale"]))).astype(np.float32)
        qmin, qmax = quant.qrange(self.out_dtype)
        zp = int(at["out_zero_point"])
        self.offset = -lo
        self.tables = {"tflm": np.clip(quant.round_half_away(y) + zp, qmin, qmax).astype(self.out_dtype),
                       "onnx": np.clip(np.rint(y) + zp, qmin, qmax).astype(self.out_dtype)}

    def run(self, values, mode):
        x = values[0]
        return [self.tables[mode][x.astype(np.int32) + self.offset]]
