"""Exact integer GEMM through float BLAS, and im2col.

int8 × int8 products are at most 2**14 (2**16 with uint8 or centred operands). float32 represents
every integer below 2**24 exactly, so a float32 GEMM is exact as long as each partial sum stays
below 2**24: K is split into chunks of ``floor(2**24 / (max|a| * max|b|))`` (1024 for int8 × int8
with zero-point-0 weights), each chunk result is exact and chunks are summed in float64 (exact up
to 2**53). numpy's own int32 matmul is ~100× slower (no BLAS).
"""

from __future__ import annotations

import numpy as np

_F32_EXACT = float(1 << 24)


def chunk_size(bound_a: float, bound_b: float) -> int:
    """Largest K chunk whose float32 partial sums stay exact for |a| ≤ bound_a, |b| ≤ bound_b."""
    p = max(1.0, float(bound_a) * float(bound_b))
    return max(1, int(_F32_EXACT // p))


def exact_matmul(a: np.ndarray, b: np.ndarray, bound_a: float, bound_b: float, bound_offset: float = 0.0) -> np.ndarray:
    """``a @ b`` for integer-valued float32 operands, exact.

    ``a``: (..., M, K), ``b``: (..., K, N) (numpy matmul broadcasting). The result is float32 when
    every value (plus a later offset of at most ``bound_offset``) stays below 2**24, else float64.
    """
    k = a.shape[-1]
    kc = chunk_size(bound_a, bound_b)
    if k <= kc:
        out = np.matmul(a, b)
        if k * bound_a * bound_b + bound_offset >= _F32_EXACT:
            out = out.astype(np.float64)
        return out
    out = None
    for k0 in range(0, k, kc):
        part = np.matmul(a[..., k0:k0 + kc], b[..., k0:k0 + kc, :]).astype(np.float64)
        out = part if out is None else out + part
    return out


def pad_nchw(x: np.ndarray, pads: tuple[int, ...], value: float) -> np.ndarray:
    """Pad the spatial dims of (N, C, *spatial); pads = (begin_0, begin_1, ..., end_0, end_1, ...)."""
    nd = x.ndim - 2
    if not any(pads):
        return x
    width = [(0, 0), (0, 0)] + [(pads[i], pads[i + nd]) for i in range(nd)]
    return np.pad(x, width, mode="constant", constant_values=value)


def im2col_2d(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
              out_hw: tuple[int, int]) -> np.ndarray:
    """(N, C, Hp, Wp) padded input -> columns (C*KH*KW, N*OH*OW), K ordered (c, kh, kw).

    Batch-major columns make a whole batch one GEMM ``W (M, K) @ cols (K, N*L)``.
    """
    n, c = xp.shape[:2]
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    oh, ow = out_hw
    xt = xp.transpose(1, 0, 2, 3)
    cols = np.empty((c, kh * kw, n, oh, ow), dtype=xp.dtype)
    t = 0
    for i in range(kh):
        for j in range(kw):
            h0, w0 = i * dh, j * dw
            cols[:, t] = xt[:, :, h0:h0 + sh * (oh - 1) + 1:sh, w0:w0 + sw * (ow - 1) + 1:sw]
            t += 1
    return cols.reshape(c * kh * kw, n * oh * ow)
