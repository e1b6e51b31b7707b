"""The graph's float boundary: input QuantizeLinear, output DequantizeLinear, Softmax.

These are the only ops that touch float values; everything between them is integer.
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime import quant
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op


class Quantize(Op):
    """Float → integer: QuantizeLinear (onnx mode, half to even) or TFLite's AffineQuantize (tflm)."""

    kind = "quantize"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.scale = np.asarray(node.params["scale"], dtype=np.float32)
        self.zp = node.params["zero_point"]
        self.dtype = np.dtype(node.attrs["out_dtype"])
        self.axis = node.attrs["axis"]

    def _b(self, a, ndim):
        if a.size <= 1:
            return a.reshape(())
        shape = [1] * ndim
        shape[self.axis % ndim] = a.size
        return a.reshape(shape)

    def run(self, values, mode):
        x = values[0]
        if mode == "tflm":
            return [quant.quantize_tflm(x, self._b(self.scale, x.ndim), self._b(self.zp, x.ndim), self.dtype)]
        return [quant.quantize_linear(x, self._b(self.scale, x.ndim), self._b(self.zp, x.ndim), self.dtype)]


class Dequantize(Op):
    kind = "dequantize"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self.scale = np.asarray(node.params["scale"], dtype=np.float32)
        self.zp = node.params["zero_point"]
        self.axis = node.attrs["axis"]

    def run(self, values, mode):
        x = values[0]
        s, z = self.scale, self.zp
        if s.size > 1:
            shape = [1] * x.ndim
            shape[self.axis % x.ndim] = s.size
            s, z = s.reshape(shape), z.reshape(shape)
        else:
            s, z = s.reshape(()), z.reshape(())
        return [quant.dequantize_linear(x, s, z)]


class Softmax(Op):
    """Float softmax on a dequantized int input (the classifier's last op)."""

    kind = "softmax"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.axis = int(at["axis"])
        self.in_scale = None if at["in_scale"] is None else np.float32(at["in_scale"])
        self.in_zp = at["in_zero_point"]

    def run(self, values, mode):
        x = values[0]
        if self.in_scale is not None:
            x = quant.dequantize_linear(x, self.in_scale, self.in_zp)
        x = x.astype(np.float32)
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        return [(e / e.sum(axis=self.axis, keepdims=True)).astype(np.float32)]
