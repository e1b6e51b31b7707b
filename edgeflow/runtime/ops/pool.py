"""Integer pooling: max, average, global average (1-D and 2-D, NCHW).

Max pooling works on the integers directly (scale and zero point pass through; padded taps are
ignored). Average pooling:

* onnx mode reproduces onnxruntime's ``QLinearAveragePool``: taps dequantized to float32
  (``s_x * (x - zp_x)``), summed in float32 in row-major tap order, divided by the tap count,
  then ``saturate(rne(y / s_y + zp_y))`` in float32.
* tflm mode: TFLM ``AveragePool``: the integer sum of the raw inputs over in-image taps divided by
  their count, rounding half away from zero (input and output share scale and zero point); when
  they differ, the sum of (x - zp_x), divided likewise, rescaled with a Q31 multiplier, plus zp_y.

Global average pooling, onnx mode = MLAS ``MlasQLinearGlobalAveragePoolNchw``::

    acc = sum(x) - zp_x * n;   M = f32(s_x / f32(s_y * n));   q = rne(clamp(f32(acc) * M)) + zp_y

tflm mode: ``zp_y + MultiplyByQuantizedMultiplier(acc, QuantizeMultiplier(s_x / (s_y n)))``; with
``tflite_mean`` (TFLite's MEAN, ``reference_ops::QuantizedMeanOrSum``) the count is folded into the
Q31 multiplier of ``s_x / s_y`` instead: ``k = min(floor(log2 n), 32, 31 + shift)``,
``m' = (m << k) // n``, ``shift' = shift - k``.
"""

from __future__ import annotations

import itertools

import numpy as np

from edgeflow.runtime import intgemm, quant
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op
from edgeflow.runtime.shapes import pool_geometry


def _taps(x: np.ndarray, kernel, strides, pads, out, dil, fill):
    """Yield (tap_values, valid_mask) per kernel tap over a padded copy of x (spatial dims 1 or 2)."""
    nd = len(kernel)
    width = [(0, 0), (0, 0)] + [(pads[i], pads[i + nd] + strides[i] * out[i]) for i in range(nd)]
    xp = np.pad(x, width, mode="constant", constant_values=fill)
    valid = np.pad(np.ones(x.shape[2:], dtype=bool), width[2:], mode="constant", constant_values=False)
    for idx in itertools.product(*[range(k) for k in kernel]):
        sl = tuple(slice(idx[i] * dil[i], idx[i] * dil[i] + strides[i] * (out[i] - 1) + 1, strides[i]) for i in range(nd))
        yield xp[(slice(None), slice(None)) + sl], valid[sl]


class MaxPool(Op):
    kind = "max_pool"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.kernel = tuple(at["kernel"])
        self.strides = tuple(at["strides"] or (1,) * len(self.kernel))
        self.pads_attr, self.auto_pad, self.ceil_mode, self.dil = at["pads"], at["auto_pad"], int(at["ceil_mode"]), at["dilations"]

    def run(self, values, mode):
        x = values[0]
        pads, out, dil = pool_geometry(x.shape, self.kernel, self.strides, self.pads_attr, self.auto_pad, self.ceil_mode, self.dil)
        lo = quant.qrange(x.dtype)[0]
        # channel-last: the taps' inner loops run over contiguous channels, and the output keeps
        # the channel-last layout of a conv's output (returned as its NCHW-shaped view)
        nd = len(self.kernel)
        xl = intgemm.as_nhwc(x)
        width = [(0, 0)] + [(pads[i], pads[i + nd] + self.strides[i] * out[i]) for i in range(nd)] + [(0, 0)]
        xp = np.pad(xl, width, mode="constant", constant_values=lo)
        res = None
        for idx in itertools.product(*[range(k) for k in self.kernel]):
            sl = tuple(slice(idx[i] * dil[i], idx[i] * dil[i] + self.strides[i] * (out[i] - 1) + 1, self.strides[i])
                       for i in range(nd))
            tap = xp[(slice(None),) + sl]
            if res is None:
                res = np.ascontiguousarray(tap)
            else:
                np.maximum(res, tap, out=res)
        return [intgemm.as_nchw(res)]


class AveragePool(Op):
    kind = "avg_pool"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.kernel = tuple(at["kernel"])
        self.strides = tuple(at["strides"] or (1,) * len(self.kernel))
        self.pads_attr, self.auto_pad, self.ceil_mode = at["pads"], at["auto_pad"], int(at["ceil_mode"])
        self.count_include_pad = int(at["count_include_pad"])
        self.sx, self.sy = np.float32(at["in_scale"]), np.float32(at["out_scale"])
        self.zpx, self.zpy = int(at["in_zero_point"]), int(at["out_zero_point"])
        self.out_dtype = np.dtype(at["out_dtype"])
        self.m, self.sh = quant.quantize_multiplier(float(self.sx) / float(self.sy))
        self.same = self.sx == self.sy and self.zpx == self.zpy

    def run(self, values, mode):
        x = values[0]
        pads, out, dil = pool_geometry(x.shape, self.kernel, self.strides, self.pads_attr, self.auto_pad, self.ceil_mode)
        qmin, qmax = quant.qrange(self.out_dtype)
        if mode == "onnx":
            xd = (self.sx * (x.astype(np.int32) - self.zpx).astype(np.float32)).astype(np.float32)
            s = None
            cnt = None
            for tap, valid in _taps(xd, self.kernel, self.strides, pads, out, dil, 0.0):
                s = tap.copy() if s is None else (s + tap).astype(np.float32)  # padded taps add +0.0
                cnt = valid.astype(np.int64) if cnt is None else cnt + valid
            if self.count_include_pad:
                cnt = np.full_like(cnt, int(np.prod(self.kernel)))
            yv = (s / cnt.astype(np.float32)).astype(np.float32)
            v = (yv / self.sy).astype(np.float32) + np.float32(self.zpy)
            return [np.clip(np.rint(v), qmin, qmax).astype(self.out_dtype)]
        # TFLM averages the raw integers when input and output share scale and zero point
        xc = x.astype(np.int64) - (0 if self.same else self.zpx)
        s = None
        cnt = None
        for tap, valid in _taps(xc, self.kernel, self.strides, pads, out, dil, 0):
            s = tap.copy() if s is None else s + tap
            cnt = valid.astype(np.int64) if cnt is None else cnt + valid
        if self.count_include_pad:
            cnt = np.full_like(cnt, int(np.prod(self.kernel)))
        avg = np.where(s > 0, (s + cnt // 2) // cnt, -((-s + cnt // 2) // cnt))
        if self.same:
            return [np.clip(avg, qmin, qmax).astype(self.out_dtype)]
        avg = quant.multiply_by_quantized_multiplier(avg, self.m, self.sh)
        return [np.clip(avg + self.zpy, qmin, qmax).astype(self.out_dtype)]


class GlobalAveragePool(Op):
    kind = "global_avg_pool"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.sx, self.sy = np.float32(at["in_scale"]), np.float32(at["out_scale"])
        self.zpx, self.zpy = int(at["in_zero_point"]), int(at["out_zero_point"])
        self.out_dtype = np.dtype(at["out_dtype"])
        self.tflite_mean = bool(at.get("tflite_mean", False))

    def _tflm_multiplier(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.tflite_mean:
            return quant.quantize_multiplier(float(self.sx) / (float(self.sy) * n))
        m, sh = (int(v[0]) for v in quant.quantize_multiplier(float(self.sx) / float(self.sy)))
        k = min(n.bit_length() - 1, 32, 31 + sh)
        return np.array([(m << k) // n]), np.array([sh - k])

    def run(self, values, mode):
        x = values[0]
        n = int(np.prod(x.shape[2:]))
        xh = intgemm.as_nhwc(x)  # (N, *spatial, C): contiguous when x came from a channel-last kernel
        if xh.flags.c_contiguous and n < 2**23:  # rows summed along contiguous channels; int32 holds n·2**8
            acc = xh.reshape(x.shape[0], n, x.shape[1]).sum(axis=1, dtype=np.int32).astype(np.int64)
        else:
            acc = x.sum(axis=tuple(range(2, x.ndim)), dtype=np.int64)  # any layout, no copy
        acc -= self.zpx * n
        if mode == "onnx":
            m = np.float32(self.sx / np.float32(self.sy * np.float32(n)))
            q = quant.requantize_onnx(acc, m, self.zpy, self.out_dtype)
        else:
            mult, sh = self._tflm_multiplier(n)
            q = quant.requantize_tflm(acc, mult, sh, self.zpy, self.out_dtype)
        return [q.reshape(x.shape[:2] + (1,) * (x.ndim - 2))]
