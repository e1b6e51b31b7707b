"""Integer fully connected / matmul: QGemm, QLinearMatMul, MatMulInteger, DQ→Gemm/MatMul→Q.

acc[..., n] = sum_k (a[..., k] - zp_a) * (b[k, n] - zp_b[n]) + bias[n]; requantized per output
column n. ``b`` is a constant weight (per-column or per-tensor scale) or, for an
activation × activation matmul, a second runtime input (per-tensor).
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime import intgemm, quant
from edgeflow.runtime.ops.base import Op, Requant


class FullyConnected(Op):
    kind = "fully_connected"

    def __init__(self, name: str, a: str, y: str, w: np.ndarray | None, w_zp, bias: np.ndarray | None, zp_a: int,
                 a_dtype: np.dtype, rq: Requant | None, b_input: str | None = None, b_dtype=None) -> None:
        super().__init__(name, [a] if b_input is None else [a, b_input], [y])
        self.zp_a = int(zp_a)
        self.a_dtype = np.dtype(a_dtype)
        self.rq = rq
        self.bound_a = float(max(abs(v) for v in quant.qrange(self.a_dtype)))
        self.bias = None if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
        if w is not None:
            self.w = np.asarray(w)  # (K, N)
            k, n = self.w.shape
            zp = np.broadcast_to(np.asarray(w_zp, dtype=np.int64).reshape(-1), (n,))
            w_c = self.w.astype(np.int64) - zp.reshape(1, n)
            self.wf = w_c.astype(np.float32)
            self.bound_b = float(max(1, np.abs(w_c).max(initial=0)))
            self.offset = (0 if self.bias is None else self.bias) - self.zp_a * w_c.sum(axis=0)
        else:
            self.w = None
            self.zp_b = int(np.asarray(w_zp).reshape(-1)[0])
            self.b_dtype = np.dtype(b_dtype)
            self.bound_b = float(max(abs(v) for v in quant.qrange(self.b_dtype)) + abs(self.zp_b))
            self.offset = 0 if self.bias is None else self.bias

    def run(self, values, mode):
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

    def macs(self, in_shapes, out_shapes):
        k = in_shapes[0][-1]
        return int(np.prod(out_shapes[0][1:])) * int(k)

    def weight_count(self) -> int:
        return 0 if self.w is None else int(self.w.size)

    def bias_bytes(self) -> int:
        return 0 if self.bias is None else 4 * int(self.bias.size)

    def requant_bytes(self) -> int:
        return 0 if self.rq is None else self.rq.param_bytes()
