"""Integer fully connected / matmul: QGemm, QLinearMatMul, MatMulInteger, DQ→Gemm/MatMul→Q.

acc[..., n] = sum_k (a[..., k] - zp_a) * (b[k, n] - zp_b[n]) + bias[n]; requantized per output
column n. ``b`` is a constant weight (per-column or per-tensor scale) or, for an
activation × activation matmul, a second runtime input (per-tensor). A constant int8-range weight
runs on the exact int8 GEMM (``edgeflow.runtime.int8mm``) when every accumulator fits int32.
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime import int8mm, intgemm, quant
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op, requant_of


class FullyConnected(Op):
    kind = "fully_connected"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.zp_a = int(at["in_zero_point"])
        self.a_dtype = np.dtype(at["in_dtype"])
        self.rq = requant_of(node)
        self.bound_a = float(max(abs(v) for v in quant.qrange(self.a_dtype)))
        bias = node.params.get("bias")
        self.bias = None if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
        w, w_zp = node.params.get("weight"), node.params["weight_zero_point"]
        if w is not None:
            self.w = w  # (K, N)
            k, n = self.w.shape
            zp = np.broadcast_to(np.asarray(w_zp, dtype=np.int64).reshape(-1), (n,))
            w_c = self.w.astype(np.int64) - zp.reshape(1, n)
            self.wf = w_c.astype(np.float32)
            self.bound_b = float(max(1, np.abs(w_c).max(initial=0)))
            self.offset = (0 if self.bias is None else self.bias) - self.zp_a * w_c.sum(axis=0)
            self._centred = w_c  # for ``prepare``
        else:
            self.w = None
            self._centred = None
            self.imm = None
            self.zp_b = int(np.asarray(w_zp).reshape(-1)[0])
            self.b_dtype = np.dtype(at["b_dtype"])
            self.bound_b = float(max(abs(v) for v in quant.qrange(self.b_dtype)) + abs(self.zp_b))
            self.offset = 0 if self.bias is None else self.bias

    def prepare(self) -> None:
        """Choose the exact int8 GEMM (``imm``) or the float32 path, once (at the first ``run``:
        ``int8mm`` imports torch, which loading a program for its costs alone does not need)."""
        if self._centred is not None:
            self.imm = self._int8_gemm(self._centred)
            self._centred = None

    def _int8_gemm(self, w_c: np.ndarray):
        """(int8 weight, int32 offset, input shift) for ``int8mm`` (the conv's rule), or None."""
        if self.a_dtype not in (np.dtype(np.int8), np.dtype(np.uint8)) or w_c.size == 0 or \
                w_c.min() < -128 or w_c.max() > 127 or not int8mm.available():
            return None
        shift = 128 if self.a_dtype == np.dtype(np.uint8) else 0
        offset = (0 if self.bias is None else self.bias) - (self.zp_a - shift) * w_c.sum(axis=0)
        if not int8mm.fits_int32(128, w_c, offset):
            return None
        return int8mm.weight(w_c), np.broadcast_to(np.asarray(offset, np.int32), (w_c.shape[1],)).copy(), shift

    def run(self, values, mode):
        self.prepare()
        a = values[0]
        if self.imm is not None:
            if a.shape[-1] != self.wf.shape[0]:
                raise ValueError(f"input shape {a.shape} does not fit weights {self.w.shape}")
            w, off, shift = self.imm
            a8 = np.bitwise_xor(a.view(np.int8), np.int8(-128)) if shift else a  # uint8: a - 128 as int8
            acc = int8mm.matmul(np.ascontiguousarray(a8).reshape(-1, a.shape[-1]), w, off)
            acc = acc.reshape(*a.shape[:-1], -1)
            return [acc if self.rq is None else self.rq.apply(acc, mode, acc.ndim - 1)]
        with intgemm.single_threaded_blas:  # small GEMMs: a multi-threaded BLAS stalls under load
            return self._run_float(a, values, mode)

    def _run_float(self, a, values, mode):
        """The exact float32 BLAS path (``intgemm.exact_matmul``)."""
        if self.w is not None:
            if a.shape[-1] != self.wf.shape[0]:
                raise ValueError(f"input shape {a.shape} does not fit weights {self.w.shape}")
            acc = intgemm.exact_matmul(a.astype(np.float32), self.wf, self.bound_a, self.bound_b)
        else:
            b = (values[1].astype(np.int64) - self.zp_b).astype(np.float32)
            acc = intgemm.exact_matmul(a.astype(np.float32), b, self.bound_a, self.bound_b)
            acc = acc - self.zp_a * b.astype(np.float64).sum(axis=-2, keepdims=True)
        acc = acc + self.offset
        if self.rq is None:
            return [acc.astype(np.int32)]
        return [self.rq.apply(acc, mode, acc.ndim - 1)]
