"""Integer elementwise add with rescaling (residual connections): QLinearAdd, DQ,DQ→Add→Q.

onnx mode reproduces MLAS ``MlasQLinearAddKernelAvx2Helper`` (float32, fused multiply-adds)::

    rA = f32(sA / sC); rB = f32(sB / sC); fixed = f32(zpC) - (rA*zpA + rB*zpB)
    both full:  out = fma(a, rA, fma(b, rB, fixed))
    b scalar:   out = fma(a, rA, fixed + f32(b * rB))     (and symmetrically for a scalar)
    q = saturate(round_half_even(out))

tflm mode is TFLite Micro's reference int8 Add: inputs centred, shifted left by 20, each scaled by
``s_i / (2 max(sA, sB))``, summed, then scaled by ``2 max(sA, sB) / (2**20 sC)`` (double rounding).
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime import intgemm, quant
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op

LEFT_SHIFT = 20
_CHUNK = 1 << 15  # elements per pass of the same-shape add (float64 temporaries stay in L2)


def _fma32(x: np.ndarray, r: np.float32, c: np.ndarray) -> np.ndarray:
    """float32 fused multiply-add x*r + c with a single rounding (products of int8 exact in f64)."""
    return (x.astype(np.float64) * np.float64(r) + np.asarray(c, dtype=np.float64)).astype(np.float32)


class Add(Op):
    kind = "add"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.const_b = node.params.get("const_b")
        sy, zpy, act = at["out_scale"], at["out_zero_point"], at["activation"]
        self.sa, self.sb, self.sy = np.float32(at["a_scale"]), np.float32(at["b_scale"]), np.float32(sy)
        self.zpa, self.zpb, self.zpy = int(at["a_zero_point"]), int(at["b_zero_point"]), int(zpy)
        self.out_dtype = np.dtype(at["out_dtype"])
        self.act_range = {m: quant.activation_range(act[0], act[1], act[2], sy, zpy, self.out_dtype, m) for m in quant.MODES}
        # onnx (MLAS) constants; the compiler contracts rA*zpA + rB*zpB into one fma
        self.ra = np.float32(self.sa / self.sy)
        self.rb = np.float32(self.sb / self.sy)
        inner = np.float32(np.float64(self.ra) * self.zpa + np.float64(np.float32(self.rb * np.float32(self.zpb))))
        self.fixed = np.float32(np.float32(self.zpy) - inner)
        # tflm constants
        twice_max = 2.0 * max(float(self.sa), float(self.sb))
        self.m1, self.sh1 = quant.quantize_multiplier(float(self.sa) / twice_max)
        self.m2, self.sh2 = quant.quantize_multiplier(float(self.sb) / twice_max)
        self.mo, self.sho = quant.quantize_multiplier(twice_max / ((1 << LEFT_SHIFT) * float(self.sy)))

    def run(self, values, mode):
        a = values[0]
        b = self.const_b if self.const_b is not None else values[1]
        qmin, qmax = quant.qrange(self.out_dtype)
        if mode == "onnx" and a.shape == b.shape and a.dtype.kind in "iu" and b.dtype.kind in "iu" \
                and a.itemsize == 1 and b.itemsize == 1:
            return [self._full_onnx(a, b, *self.act_range[mode])]
        lo, hi = self.act_range[mode]
        if mode == "onnx":
            out_shape = np.broadcast_shapes(a.shape, b.shape)
            if b.size == 1 or (b.size < a.size and b.shape != out_shape):
                fixed_b = (self.fixed + (b.astype(np.float32) * self.rb).astype(np.float32)).astype(np.float32)
                v = _fma32(a, self.ra, fixed_b)
            elif a.size == 1 or (a.size < b.size and a.shape != out_shape):
                fixed_a = (self.fixed + (a.astype(np.float32) * self.ra).astype(np.float32)).astype(np.float32)
                v = _fma32(b, self.rb, fixed_a)
            else:
                v = _fma32(a, self.ra, _fma32(b, self.rb, self.fixed))
            q = np.clip(np.rint(v), qmin, qmax)
        else:
            x1 = (a.astype(np.int64) - self.zpa) << LEFT_SHIFT
            x2 = (b.astype(np.int64) - self.zpb) << LEFT_SHIFT
            s1 = quant.multiply_by_quantized_multiplier(x1, self.m1, self.sh1)
            s2 = quant.multiply_by_quantized_multiplier(x2, self.m2, self.sh2)
            q = quant.multiply_by_quantized_multiplier(s1 + s2, self.mo, self.sho) + self.zpy
        q = np.clip(q, max(lo, qmin), min(hi, qmax))
        return [q.astype(self.out_dtype)]

    def _full_onnx(self, a: np.ndarray, b: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Same-shape onnx add, the arithmetic of ``run`` (float64 fma emulation rounded to float32,
        rint, saturate, activation clamp) evaluated in cache-sized chunks of the flat arrays, in
        the memory order of ``a`` (the output keeps ``a``'s layout, e.g. channel-last)."""
        qmin, qmax = quant.qrange(self.out_dtype)
        lo_c, hi_c = max(lo, qmin), min(hi, qmax)
        q = np.empty_like(a, dtype=self.out_dtype)
        if b.strides != a.strides or b.itemsize != a.itemsize:
            bb = np.empty_like(a, dtype=b.dtype)
            np.copyto(bb, b)
            b = bb
        af, bf, qf = a.ravel(order="K"), b.ravel(order="K"), q.ravel(order="K")
        if not np.shares_memory(qf, q):  # pragma: no cover - empty_like always allows a flat view
            raise AssertionError("output is not flat-viewable")
        size = qf.size
        ch = min(size, _CHUNK)
        t = intgemm.scratch("add_t", (ch,), np.float64)
        u = intgemm.scratch("add_u", (ch,), np.float64)
        v = intgemm.scratch("add_v", (ch,), np.float32)
        ra, rb, fixed = np.float64(self.ra), np.float64(self.rb), np.float64(self.fixed)
        flo, fhi = np.float32(lo_c), np.float32(hi_c)
        for s0 in range(0, size, ch):
            e = min(size, s0 + ch)
            k = e - s0
            tt, uu, vv = t[:k], u[:k], v[:k]
            np.copyto(tt, bf[s0:e], casting="unsafe")
            tt *= rb
            tt += fixed
            np.copyto(vv, tt, casting="unsafe")  # inner fma rounded to float32
            np.copyto(uu, af[s0:e], casting="unsafe")
            uu *= ra
            uu += vv
            np.copyto(vv, uu, casting="unsafe")  # outer fma rounded to float32
            np.rint(vv, out=vv)
            np.clip(vv, flo, fhi, out=vv)
            np.copyto(qf[s0:e], vv, casting="unsafe")
        return q
