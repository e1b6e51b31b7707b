"""Integer fully connected / matmul: QGemm, QLinearMatMul, MatMulInteger, DQ→Gemm/MatMul→Q.

acc[..., n] = sum_k (a[..., k] - zp_a) * (b[k, n] - zp_b[n]) + bias[n]; requantized per output
column n. ``b`` is a constant weight (per-column or per-tensor scale) or, for an
activation × activation matmul, a second runtime input (per-tensor).
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime import intgemm, quant
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
        else:
            self.w = None
            self.zp_b = int(np.asarray(w_zp).reshape(-1)[0])
            self.b_dtype = np.dtype(at["b_dtype"])
            self.bound_b = float(max(abs(v) for v in quant.qrange(self.b_dtype)) + abs(self.zp_b))
            self.offset = 0 if self.bias is None else self.bias

    def run(self, values, mode):
        with intgemm.single_threaded_blas:  # small GEMMs: a multi-threaded BLAS stalls under load
            return self._run(values, mode)

    def _run(self, values, mode):
        a = values[0]
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
