"""Exact integer GEMM through float BLAS, and im2col.

int8 × int8 products are at most 2**14 (2**16 with uint8 or centred operands). float32 represents
every integer below 2**24 exactly, so a float32 GEMM is exact as long as each partial sum stays
below 2**24: K is split into chunks of ``floor(2**24 / (max|a| * max|b|))`` (1024 for int8 × int8
with zero-point-0 weights), each chunk result is exact and chunks are summed in float64 (exact up
to 2**53). numpy's own int32 matmul is ~100× slower (no BLAS).
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

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


# ---------------------------------------------------------------------------------- fast paths
# The conv kernels below work channel-last (NHWC): an op's int8 output is allocated (N, H, W, C) and
# handed on as its (N, C, H, W) transpose — a view, so the graph still sees NCHW shapes while the
# next conv reads its input contiguously (``as_nhwc``). Elementwise ops (add, clamps) keep the
# layout (numpy's ``order="K"``); reshapes and other ops copy into NCHW order where they must.

_TLS = threading.local()

#: bytes of float32 im2col columns per GEMM call (a few images): about half a core's L2 cache
CHUNK_BYTES = 1 << 19
#: bytes of int8 columns, int32 accumulators (requantized in place) and int8 output per int8 GEMM call (``int8mm``)
INT8_CHUNK_BYTES = 1 << 20


def images_per_call(n: int, per_image: int, budget: int) -> int:
    """Images per call for ``n`` images of ``per_image`` working bytes within ``budget`` bytes, the
    calls balanced (64 images at 21 per call → 4 calls of 16, not 21, 21, 21, 1)."""
    calls = -(-n // max(1, min(n, budget // max(1, per_image))))
    return -(-n // calls)


def scratch(slot: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """A reusable per-thread work buffer (im2col columns, accumulators): grows, never shrinks.

    Reuse avoids page-faulting fresh multi-megabyte allocations on every call. The contents are
    undefined; a slot is overwritten by the next call that asks for it.
    """
    dtype = np.dtype(dtype)
    n = math.prod(shape) * dtype.itemsize
    pool = getattr(_TLS, "pool", None)
    if pool is None:
        pool = _TLS.pool = {}
    buf = pool.get(slot)
    if buf is None or buf.nbytes < n:
        buf = pool[slot] = np.empty(max(n, 64), dtype=np.uint8)
    return buf[:n].view(dtype).reshape(shape)


def release_scratch() -> None:
    """Free this thread's work buffers."""
    _TLS.pool = {}


_TO_LAST = {n: (0, *range(2, n), 1) for n in range(2, 7)}
_TO_SECOND = {n: (0, n - 1, *range(1, n - 1)) for n in range(2, 7)}


def as_nhwc(x: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) → a (N, *spatial, C) view (contiguous when x came from a channel-last kernel).

    ``np.moveaxis(x, 1, -1)`` without its argument normalisation (a few microseconds per call)."""
    return x.transpose(_TO_LAST[x.ndim])


def as_nchw(x: np.ndarray) -> np.ndarray:
    """(N, *spatial, C) → its (N, C, *spatial) view, the inverse of ``as_nhwc``."""
    return x.transpose(_TO_SECOND[x.ndim])


def pad_nhwc(xh: np.ndarray, pads: tuple[int, int, int, int], value: float, dtype, slot: str) -> np.ndarray:
    """(N, H, W, C) → padded (N, H+pt+pb, W+pl+pr, C) of ``dtype`` in a scratch buffer.

    ``pads`` = (top, left, bottom, right); borders hold ``value``, the interior a cast copy of ``xh``.
    """
    n, h, w, c = xh.shape
    pt, pl, pb, pr = pads
    xp = scratch(slot, (n, h + pt + pb, w + pl + pr, c), dtype)
    if pt:
        xp[:, :pt] = value
    if pb:
        xp[:, h + pt:] = value
    if pl:
        xp[:, pt:h + pt, :pl] = value
    if pr:
        xp[:, pt:h + pt, w + pl:] = value
    np.copyto(xp[:, pt:h + pt, pl:w + pl], xh, casting="unsafe")
    return xp


def windows_nhwc(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                 out_hw: tuple[int, int]) -> np.ndarray:
    """Padded (N, Hp, Wp, C) → read-only window view (N, OH, OW, KH, KW, C) (im2col without copying)."""
    n, _, _, c = xp.shape
    s0, s1, s2, s3 = xp.strides
    return as_strided(xp, (n, out_hw[0], out_hw[1], kernel[0], kernel[1], c),
                      (s0, s1 * stride[0], s2 * stride[1], s1 * dilation[0], s2 * dilation[1], s3), writeable=False)


def im2col_nhwc(xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                out_hw: tuple[int, int], out: np.ndarray) -> np.ndarray:
    """Padded (N, Hp, Wp, C) → ``out`` (N*OH*OW, KH*KW*C), rows (n, oh, ow), columns (kh, kw, c), same dtype.

    A plain copy of the windows, one element per contiguous run — a window row's KW·C values when
    the dilation along W is 1, else a pixel's C values — as an opaque ``V<bytes>`` numpy dtype:
    numpy's strided copy costs per element, and a run is often 5-200 bytes (1.7-2× faster than
    8-byte units, 3× than bytes). The source view is built on ``xp``'s buffer with byte strides.
    """
    xp = np.ascontiguousarray(xp)
    n, hp, wp, c = xp.shape
    pixel = c * xp.itemsize
    sh, sw = stride
    dh, dw = dilation
    (oh, ow), (kh, kw) = out_hw, kernel
    row, img = wp * pixel, hp * wp * pixel  # byte strides
    if dw == 1:
        run = np.dtype(f"V{kw * pixel}")
        shape, strides = (n, oh, ow, kh), (img, row * sh, pixel * sw, row * dh)
    else:
        run = np.dtype(f"V{pixel}")
        shape, strides = (n, oh, ow, kh, kw), (img, row * sh, pixel * sw, row * dh, pixel * dw)
    win = np.ndarray(shape, dtype=run, buffer=xp, strides=strides)
    np.copyto(split_view(out.view(run), shape), win)
    return out


def split_view(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` reshaped to ``shape`` without copying (raises instead of silently copying)."""
    v = a.view()
    v.shape = shape
    return v


class _SingleThreadedBlas:
    """Context manager: BLAS at one thread inside (restored on exit), via threadpoolctl if present.

    The conv kernels issue many small, cache-blocked GEMMs (a few images each). A multi-threaded
    BLAS synchronises its threads on every call; on a loaded machine one descheduled thread stalls
    each call for a scheduler time slice (measured here: 2-thread OpenBLAS 10-100× slower than 1
    thread on these shapes while other processes held the cores). Reentrant; thread count restored.
    """

    _libs = None

    def _controllers(self):
        if _SingleThreadedBlas._libs is None:
            try:
                from threadpoolctl import ThreadpoolController

                _SingleThreadedBlas._libs = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
            except Exception:  # pragma: no cover - threadpoolctl missing or failing: leave BLAS alone
                _SingleThreadedBlas._libs = []
        return _SingleThreadedBlas._libs

    def __enter__(self):
        saved = []
        for c in self._controllers():
            n = c.get_num_threads()
            saved.append(n)
            if n != 1:
                c.set_num_threads(1)
        _TLS.__dict__.setdefault("blas_saved", []).append(saved)
        return self

    def __exit__(self, *exc):
        saved = _TLS.blas_saved.pop()
        for c, n in zip(self._controllers(), saved):
            if n != 1:
                c.set_num_threads(n)
        return False


single_threaded_blas = _SingleThreadedBlas()


class _SingleThreadedTorch:
    """Context manager: torch's intra-op threads at one inside (restored on exit); yields torch,
    which must be imported. Reentrant; a no-op when torch already runs one thread.

    Every torch call of the runtime runs inside it (``Program.run`` holds it for the whole run):
    the tensors are small, and a second OpenMP thread that another process keeps off a core stalls
    each parallel call (measured on a busy 2-core machine: a global average pool's row sum 0.1 →
    14 ms, a whole tcn batch 1.2 → 213 ms at two threads)."""

    def __enter__(self):
        torch = sys.modules["torch"]
        n = torch.get_num_threads()
        _TLS.__dict__.setdefault("torch_saved", []).append(n)
        if n != 1:
            torch.set_num_threads(1)
        return torch

    def __exit__(self, *exc):
        n = _TLS.torch_saved.pop()
        if n != 1:
            sys.modules["torch"].set_num_threads(n)
        return False


single_threaded_torch = _SingleThreadedTorch()
