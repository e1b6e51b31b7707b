"""Integer convolution, 1-D and 2-D: stride, padding, dilation, groups, depthwise.

acc[n, m, p] = sum_k (x[n, k, p] - zp_x) * (w[m, k] - zp_w[m]) + bias[m]    (exact int32)
y = requantize(acc) per output channel m (see ``edgeflow.runtime.quant``); padding taps hold zp_x
(real 0). Lowered as im2col + one exact float32 GEMM (K chunked, ``intgemm``); depthwise
(one input channel per group) as a sum over kernel taps.

Fast paths: ``group == 1``: channel-last (NHWC) im2col of int8 windows into a reused buffer (a 1×1
conv reads its input in place) and torch's exact int8 GEMM (``edgeflow.runtime.int8mm``), a few
images per call (about 1 MiB of columns and accumulators, which stay in L2); without it, and
whenever every partial sum stays below 2**24 so that float32 is exact in any summation order, the
same windows cast to float32 and one float32 GEMM on one BLAS thread. Other groups (depthwise):
torch's float32 channel-last convolution of the centred input under the same bound
(``edgeflow.runtime.torchconv``; numpy's shifted-slice sums were 2-4× slower). All requantize
(``Requant.apply_last``: the fused C loop of ``edgeflow.runtime.native`` when compiled); the output
is the NCHW-shaped view of an NHWC array, which the next conv reads without a transpose.
Bit-identical to the generic path below, which handles everything else.
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime import int8mm, intgemm, quant, torchconv
from edgeflow.runtime.ir import Node
from edgeflow.runtime.ops.base import Op, requant_of
from edgeflow.runtime.shapes import conv_output_size, resolve_pads


class Conv(Op):
    """QLinearConv / ConvInteger / DQ→Conv→Q. ``rq`` None → int32 accumulator output (ConvInteger)."""

    kind = "conv"

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        at = node.attrs
        self.w = node.params["weight"]
        self.nd = self.w.ndim - 2
        if self.nd not in (1, 2):
            raise ValueError(f"{self.nd}-D convolution")
        self.m, self.cg = self.w.shape[:2]
        self.kernel = tuple(int(k) for k in self.w.shape[2:])
        self.strides = tuple(at["strides"] or (1,) * self.nd)
        self.dilations = tuple(at["dilations"] or (1,) * self.nd)
        self.pads_attr = tuple(at["pads"]) if at["pads"] else None
        self.auto_pad = at["auto_pad"]
        self.group = int(at["group"])
        self._geo: dict[tuple[int, ...], tuple] = {}
        self.zp_x = int(at["in_zero_point"])
        self.x_dtype = np.dtype(at["in_dtype"])
        self.rq = requant_of(node)
        w_zp = np.broadcast_to(np.asarray(node.params["weight_zero_point"], dtype=np.int64).reshape(-1), (self.m,))
        w_c = self.w.astype(np.int64) - w_zp.reshape((-1,) + (1,) * (self.w.ndim - 1))
        bias = node.params.get("bias")
        self.bias = None if bias is None else np.asarray(bias, dtype=np.int64).reshape(-1)
        colsum = w_c.reshape(self.m, -1).sum(axis=1)
        self.acc_offset = (0 if self.bias is None else self.bias) - self.zp_x * colsum  # int64 per channel
        self.bound_x = float(max(abs(v) for v in quant.qrange(self.x_dtype)))
        self.bound_w = float(max(1, np.abs(w_c).max(initial=0)))
        kk = int(np.prod(self.kernel))
        self.mg = self.m // self.group
        self.depthwise = self.cg == 1 and self.group > 1 and self.mg == 1 and \
            kk * self.bound_x * self.bound_w < 2**24
        w2 = w_c.reshape(self.m, self.cg, *((1,) * (2 - self.nd)), *self.kernel).astype(np.float32)
        self.w4 = w2  # (M, Cg, KH, KW)
        self.wmat = w2.reshape(self.group, self.mg, self.cg * kk)  # (G, Mg, Kg)
        self._centred = (w_c, colsum)  # for ``prepare``; dropped once the fast path is chosen

    def prepare(self) -> None:
        """Choose the fast path and prepare its weights, once (at the first ``run``: ``int8mm`` and
        ``torchconv`` import torch, which loading a program for its costs alone does not need).

        group == 1: the exact int8 GEMM on int8 im2col columns (``int8mm``, ``imm``) when torch
        provides it; else, with every partial sum of sum_k x_k w_k + offset below 2**24 (max|x| *
        sum_k |w_k| + |offset|), one float32 GEMM (any K, any summation order) is exact
        (``fast_gemm``): the weight matrix's last row holds the offset, matched by a column of ones
        in the im2col matrix. Other groups (depthwise): torch's float32 kernels under the same bound
        (``tconv``)."""
        if self._centred is None:
            return
        (w_c, colsum), w2 = self._centred, self.w4
        self.imm = self._int8_gemm(w_c, colsum) if self.group == 1 else None
        self.fast_gemm = self.imm is None and self.group == 1 and \
            torchconv.exact_bound(self.bound_x, w_c, self.acc_offset)
        if self.fast_gemm:
            kk = int(np.prod(self.kernel))
            wk = w2.transpose(2, 3, 1, 0).reshape(kk * self.cg, self.m)  # K ordered (kh, kw, c) as NHWC windows
            off32 = np.broadcast_to(np.asarray(self.acc_offset, np.float32), (self.m,)).reshape(1, -1)
            self.wk = np.ascontiguousarray(np.concatenate([wk, off32], axis=0))
        x_bound = float(max(abs(v - self.zp_x) for v in quant.qrange(self.x_dtype)))
        self.tconv = None
        if self.imm is None and not self.fast_gemm and torchconv.exact_bound(x_bound, w_c, self.bias):
            raw_ok = torchconv.exact_bound(self.bound_x, w_c, self.acc_offset)
            self.tconv = torchconv.ExactConv(w2, self.bias, self.acc_offset if raw_ok else None,
                                             ((1,) * (2 - self.nd)) + self.strides,
                                             ((1,) * (2 - self.nd)) + self.dilations, self.group)
        self._centred = None

    def _int8_gemm(self, w_c: np.ndarray, colsum: np.ndarray):
        """(int8 weight (K, M), int32 offset, input shift) of the exact int8 GEMM path, or None.

        uint8 inputs are shifted to int8 (x - 128, the zero point with them); the path needs int8
        centred weights and every accumulator within int32 (``int8mm.fits_int32``)."""
        if self.x_dtype not in (np.dtype(np.int8), np.dtype(np.uint8)) or w_c.size == 0 or \
                w_c.min() < -128 or w_c.max() > 127 or not int8mm.available():
            return None
        shift = 128 if self.x_dtype == np.dtype(np.uint8) else 0
        offset = (0 if self.bias is None else self.bias) - (self.zp_x - shift) * colsum
        wk = w_c.reshape(self.m, self.cg, -1).transpose(2, 1, 0).reshape(-1, self.m)  # K ordered (kh, kw, c)
        if not int8mm.fits_int32(128, wk, offset):
            return None
        return int8mm.weight(wk), np.broadcast_to(np.asarray(offset, np.int32), (self.m,)).copy(), shift

    # ------------------------------------------------------------------ geometry
    def _geometry(self, x_shape: tuple[int, ...]):
        """(kernel, strides, dilations, pads (top, left, bottom, right), (OH, OW)) as 2-D, for the
        spatial size of ``x_shape`` (computed once per size)."""
        sp = tuple(x_shape[2:])
        geo = self._geo.get(sp)
        if geo is None:
            pads = resolve_pads(self.auto_pad, sp, self.kernel, self.strides, self.dilations, self.pads_attr)
            if self.nd == 1:
                k2, s2, d2 = (1,) + self.kernel, (1,) + self.strides, (1,) + self.dilations
                p2 = (0, pads[0], 0, pads[1])
                sp2 = (1,) + sp
            else:
                k2, s2, d2, p2, sp2 = self.kernel, self.strides, self.dilations, pads, sp
            out = tuple(conv_output_size(sp2[i], k2[i], s2[i], d2[i], p2[i], p2[i + 2]) for i in range(2))
            geo = self._geo[sp] = (k2, s2, d2, p2, out)
        return geo

    def output_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        *_, out = self._geometry(x_shape)
        return (x_shape[0], self.m) + (out[1:] if self.nd == 1 else out)

    # ------------------------------------------------------------------ compute
    def accumulate(self, x: np.ndarray) -> tuple[np.ndarray, int, tuple[int, ...]]:
        """Exact int32 accumulators as float32/float64 integers.

        Returns (acc, channel_axis, nchw_shape): depthwise gives (N, C, OH, OW) with channels on
        axis 1; the GEMM path gives (M, N*OH*OW) with channels on axis 0.
        """
        if x.ndim != self.nd + 2 or x.shape[1] != self.cg * self.group:
            raise ValueError(f"input shape {tuple(x.shape)} does not fit weights {tuple(self.w.shape)}")
        k2, s2, d2, p2, (oh, ow) = self._geometry(x.shape)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"input spatial size {tuple(x.shape[2:])} too small for kernel {self.kernel}")
        n, c = x.shape[:2]
        x4 = x.reshape(n, c, 1, -1) if self.nd == 1 else x
        kk = k2[0] * k2[1]
        off = self.acc_offset
        if self.depthwise:
            # channel-major (C, N, H, W) copy: each tap is one multiply-add with a per-row scalar
            xt = np.ascontiguousarray(intgemm.pad_nchw(x4, p2, self.zp_x).transpose(1, 0, 2, 3), dtype=np.float32)
            acc = np.zeros((c, n, oh, ow), dtype=np.float32)
            tmp = np.empty_like(acc)
            for i in range(k2[0]):
                for j in range(k2[1]):
                    h0, w0 = i * d2[0], j * d2[1]
                    tap = xt[:, :, h0:h0 + s2[0] * (oh - 1) + 1:s2[0], w0:w0 + s2[1] * (ow - 1) + 1:s2[1]]
                    np.multiply(tap, self.w4[:, 0, i, j].reshape(c, 1, 1, 1), out=tmp)
                    acc += tmp
            acc = acc.reshape(c, n * oh * ow)
            bound = kk * self.bound_x * self.bound_w + np.abs(off).max(initial=0)
            acc = acc.astype(np.float64) if bound >= 2**24 else acc
            acc += off.reshape(-1, 1).astype(acc.dtype)
            return acc, 0, (n, c, oh, ow)
        if k2 == (1, 1) and s2 == (1, 1) and not any(p2):
            cols = x4.reshape(n, c, oh * ow).transpose(1, 0, 2).astype(np.float32).reshape(c, n * oh * ow)
        else:
            xp = intgemm.pad_nchw(x4, p2, self.zp_x)
            cols = intgemm.im2col_2d(xp, k2, s2, d2, (oh, ow)).astype(np.float32)  # (K, N*L)
        kg = self.cg * kk
        if self.group == 1:
            acc = intgemm.exact_matmul(self.wmat[0], cols, self.bound_x, self.bound_w, float(np.abs(off).max(initial=0)))
        else:
            acc = intgemm.exact_matmul(self.wmat, cols.reshape(self.group, kg, n * oh * ow), self.bound_x, self.bound_w,
                                       float(np.abs(off).max(initial=0))).reshape(self.m, n * oh * ow)
        acc += off.reshape(-1, 1).astype(acc.dtype)
        return acc, 0, (n, self.m, oh, ow)

    def _check(self, x: np.ndarray):
        if x.ndim != self.nd + 2 or x.shape[1] != self.cg * self.group:
            raise ValueError(f"input shape {tuple(x.shape)} does not fit weights {tuple(self.w.shape)}")
        geo = self._geometry(x.shape)
        oh, ow = geo[-1]
        if oh <= 0 or ow <= 0:
            raise ValueError(f"input spatial size {tuple(x.shape[2:])} too small for kernel {self.kernel}")
        return geo

    def _run_torch(self, x: np.ndarray, mode: str) -> np.ndarray:
        """Exact accumulators from ``torchconv`` (channel-last), requantized in place into an
        (N, OH, OW, M) array; returns its (N, M, *spatial) view."""
        _, _, _, p2, (oh, ow) = self._check(x)
        n = x.shape[0]
        acc = self.tconv(x[:, :, None, :] if self.nd == 1 else x, self.zp_x, p2).numpy()
        a2 = intgemm.as_nhwc(acc).reshape(-1, self.m)  # a view: the tensor is channel-last
        q = np.empty((n * oh * ow, self.m), dtype=np.int32 if self.rq is None else self.rq.out_dtype)
        if self.rq is None:
            np.copyto(q, a2, casting="unsafe")
        else:
            self.rq.apply_last(a2, mode, q)
        return self._to_nchw(q, n, oh, ow)

    def _to_nchw(self, q, n, oh, ow):
        q = q.reshape(n, oh * ow if self.nd == 1 else oh, *(() if self.nd == 1 else (ow,)), self.m)
        return intgemm.as_nchw(q)

    def _gemm_nhwc(self, xh, n, c, k2, s2, d2, pads, oh, ow, mode):
        """im2col + GEMM + requantization, a few images at a time so that the float32 columns
        (written once, read once by the GEMM) stay in cache instead of streaming through memory."""
        kdim = k2[0] * k2[1] * c
        if k2 == (1, 1) and not any(pads):
            win = xh[:, ::s2[0], ::s2[1]][:, :oh, :ow]
            wshape = (oh, ow, c)
        else:
            xp = intgemm.pad_nhwc(xh, pads, self.zp_x, xh.dtype, "pad") if any(pads) else xh
            win = intgemm.windows_nhwc(xp, k2, s2, d2, (oh, ow))
            wshape = (oh, ow, k2[0], k2[1], c)
        per_image = oh * ow * (kdim + 1) * 4
        nb = intgemm.images_per_call(n, per_image, intgemm.CHUNK_BYTES)
        cols_buf = intgemm.scratch("cols", (nb * oh * ow, kdim + 1))
        cols_buf[:, kdim] = 1.0
        acc_buf = intgemm.scratch("acc", (nb * oh * ow, self.m))
        dt = np.int32 if self.rq is None else self.rq.out_dtype
        q = np.empty((n * oh * ow, self.m), dtype=dt)
        for n0 in range(0, n, nb):
            b = min(nb, n - n0)
            r = b * oh * ow
            cols = cols_buf[:r]
            np.copyto(intgemm.split_view(cols[:, :kdim], (b,) + wshape), win[n0:n0 + b], casting="unsafe")
            acc = acc_buf[:r]
            np.matmul(cols, self.wk, out=acc)
            qc = q[n0 * oh * ow:n0 * oh * ow + r]
            if self.rq is None:
                np.copyto(qc, acc, casting="unsafe")
            else:
                self.rq.apply_last(acc, mode, qc)
        return self._to_nchw(q, n, oh, ow)

    def _run_int8(self, x: np.ndarray, mode: str) -> np.ndarray:
        """Exact int8 GEMM (``int8mm``) on NHWC int8 columns (im2col copies int8, a 1×1 conv none), a
        few images at a time; requantized from the int32 accumulators into an (N, OH, OW, M) array."""
        k2, s2, d2, pads, (oh, ow) = self._check(x)
        n, c = x.shape[:2]
        w, off, shift = self.imm
        xh = intgemm.as_nhwc(x[:, :, None, :] if self.nd == 1 else x)  # (N, H, W, C) view
        if shift:
            xh = np.bitwise_xor(xh.view(np.int8), np.int8(-128))  # x - 128 as int8 (layout kept)
        kdim = k2[0] * k2[1] * c
        direct = k2 == (1, 1) and s2 == (1, 1) and not any(pads) and xh.flags.c_contiguous
        if not direct:  # a 1×1 conv reads its NHWC input in place; others copy int8 windows (im2col)
            xp = intgemm.pad_nhwc(xh, pads, self.zp_x - shift, np.int8, "pad") if any(pads) else xh
        per_image = oh * ow * (kdim + 5 * self.m)  # int8 columns, int32 accumulators (in place), int8 output
        nb = n if direct and self.rq is None else intgemm.images_per_call(n, per_image, intgemm.INT8_CHUNK_BYTES)
        cols_buf = None if direct else intgemm.scratch("cols8", (nb * oh * ow, kdim), np.int8)
        acc_buf = intgemm.scratch("acc32", (nb * oh * ow, self.m), np.int32) if self.rq is not None else None
        q = np.empty((n * oh * ow, self.m), dtype=np.int32 if self.rq is None else self.rq.out_dtype)
        for n0 in range(0, n, nb):
            b = min(nb, n - n0)
            r = b * oh * ow
            if direct:
                cols = xh[n0:n0 + b].reshape(r, kdim)
            else:
                cols = intgemm.im2col_nhwc(xp[n0:n0 + b], k2, s2, d2, (oh, ow), cols_buf[:r])
            qc = q[n0 * oh * ow:n0 * oh * ow + r]
            if self.rq is None:
                qc[...] = int8mm.matmul(cols, w, off)
            else:  # the offset is added by the requantization (in its fused pass when compiled)
                self.rq.apply_last(int8mm.matmul(cols, w, None, acc_buf[:r]), mode, qc, off)
        return self._to_nchw(q, n, oh, ow)

    def _run_gemm(self, x: np.ndarray, mode: str) -> np.ndarray:
        k2, s2, d2, p2, (oh, ow) = self._check(x)
        n, c = x.shape[:2]
        xh = intgemm.as_nhwc(x[:, :, None, :] if self.nd == 1 else x)  # (N, H, W, C) view
        return self._gemm_nhwc(xh, n, c, k2, s2, d2, p2, oh, ow, mode)

    def run(self, values, mode):
        self.prepare()
        x = values[0]
        if self.imm is not None:
            return [self._run_int8(x, mode)]
        if self.fast_gemm:
            with intgemm.single_threaded_blas:
                return [self._run_gemm(x, mode)]
        if self.tconv is not None:
            return [self._run_torch(x, mode)]
        acc, axis, (n, m, oh, ow) = self.accumulate(x)
        out_shape = self.output_shape(x.shape)
        if self.rq is None:
            q = acc.astype(np.int32)
        else:
            q = self.rq.apply(acc, mode, axis)
        if axis == 0:
            q = np.ascontiguousarray(q.reshape(m, n, oh, ow).transpose(1, 0, 2, 3))
        return [q.reshape(out_shape)]
