"""Exact integer convolution on torch's float32 convolution kernels (oneDNN, channels-last).

A conv whose every partial sum stays below 2**24 in magnitude — ``max|x - zp_x| · Σ|w[m]| +
|bias[m]| < 2**24`` per output channel, true of every depthwise 3×3 and of most int8 layers — is
computed exactly by any float32 summation order. ``ExactConv`` runs such a conv as
``conv2d(float32(x) - zp_x, w - zp_w) + bias`` (centred input, so zero padding is the real zero),
with NNPACK off (its Winograd/FFT algorithms are not exact sums); the result holds the int32
accumulators as float32 integers, in channels-last memory (an (N, M, OH, OW) view of an
(N, OH, OW, M) array, the layout the runtime's kernels pass along). torch is imported on first use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeflow.runtime import intgemm, native

EXACT_LIMIT = 2**24


def exact_bound(x_bound: float, w_centred: np.ndarray, bias: np.ndarray | None) -> bool:
    """True when ``x_bound · Σ_k |w[m, k]| + |bias[m]| < 2**24`` for every output channel m."""
    l1 = np.abs(w_centred.astype(np.int64)).reshape(w_centred.shape[0], -1).sum(axis=1)
    b = 0 if bias is None else np.abs(np.asarray(bias, dtype=np.int64))
    return bool((x_bound * l1 + b).max(initial=0) < EXACT_LIMIT)


class ExactConv:
    """Prepare once: centred weights (M, Cg, KH, KW) as a float32 torch tensor, and the per-channel
    offsets: ``bias`` for the centred input; ``raw_offset`` = bias - zp_x · Σ_k w[m, k] for the raw
    input of an unpadded conv (one pass less; None when that sum could reach 2**24)."""

    def __init__(self, w_centred: np.ndarray, bias: np.ndarray | None, raw_offset: np.ndarray | None,
                 strides: tuple[int, int], dilations: tuple[int, int], group: int) -> None:
        import torch

        self.torch = torch
        self.w = torch.from_numpy(np.ascontiguousarray(w_centred, dtype=np.float32))
        m = w_centred.shape[0]
        self.bias = torch.from_numpy(np.broadcast_to(np.asarray(0 if bias is None else bias, np.float32), (m,)).copy())
        self.raw_offset = None if raw_offset is None else torch.from_numpy(
            np.broadcast_to(np.asarray(raw_offset, np.float32), (m,)).copy())
        self.strides, self.dilations, self.group = tuple(strides), tuple(dilations), int(group)

    def __call__(self, x: np.ndarray, zp_x: int, pads: tuple[int, int, int, int]) -> Any:
        """Accumulators of ``x`` (N, C, H, W) integers, pads (top, left, bottom, right): a float32
        (N, M, OH, OW) torch tensor in channels-last memory."""
        torch = self.torch
        with intgemm.single_threaded_torch:  # small tensors: thread sync costs more than it saves, and stalls under load
            # x as it lies in memory (NCHW, or the NCHW view of an NHWC array): cast (and transposed) in one
            # pass into a reused channels-last buffer (a fresh multi-megabyte tensor page-faults on every call)
            n, c, h, w = x.shape
            buf = intgemm.scratch("torchconv", (n, h, w, c))
            xf = torch.from_numpy(buf).permute(0, 3, 1, 2)
            raw = not any(pads) and self.raw_offset is not None  # zp_x folded into the offset: no padding reads it
            offset = self.raw_offset if raw else self.bias
            centre = 0 if raw else zp_x
            xh, fused_kernels = intgemm.as_nhwc(x), native.kernels()
            if fused_kernels is not None and xh.flags.c_contiguous and x.dtype.itemsize == 1:
                fused_kernels.centre(xh, centre, buf)  # cast and centring in one pass
            else:
                xf.copy_(torch.from_numpy(x if x.flags.writeable else x.copy()))
                if centre:
                    xf.sub_(float(centre))
            pt, pl, pb, pr = pads
            padding: tuple[int, int] = (pt, pl)
            if (pt, pl) != (pb, pr):
                xf = torch.nn.functional.pad(xf, (pl, pr, pt, pb)).contiguous(memory_format=torch.channels_last)
                padding = (0, 0)
            # torch 2.13's oneDNN path crashes (segfault) on some channel-last grouped, strided, dilated
            # convs given a bias, never without one, nor undilated ones with one: dilated convs add it after
            fused = self.dilations == (1, 1)
            with torch.backends.nnpack.flags(enabled=False), torch.no_grad():
                acc = torch.nn.functional.conv2d(xf, self.w, offset if fused else None, self.strides, padding,
                                                 self.dilations, self.group)
            if not fused:
                acc.add_(offset.view(1, -1, 1, 1))
        return acc
