"""The integer op interface shared by every kernel (one op kind per module, TFLM style)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from edgeflow.runtime import intgemm, native, quant
from edgeflow.runtime.ir import Node


_TILE = 4096


def tiled(a: np.ndarray, vec: np.ndarray, cache: dict) -> tuple[np.ndarray, np.ndarray]:
    """(a viewed as (R, L*C), vec tiled L times) for a contiguous ``a`` (..., C) and ``vec`` (C,).

    Broadcasting a short per-channel vector along the last axis makes numpy's inner loop only C
    long (8-64 elements: loop overhead dominates); tiling it to ~``_TILE`` elements keeps the same
    element-wise arithmetic with long inner loops. ``cache`` keeps the tiled vectors by length.
    """
    c = vec.shape[0]
    rows = a.size // c
    reps = max(1, min(rows, _TILE // c))
    while rows % reps:
        reps -= 1
    t = cache.get((reps, vec.dtype))
    if t is None:
        t = cache[(reps, vec.dtype)] = np.tile(vec, reps)
    return a.reshape(rows // reps, reps * c), t


@dataclass
class Requant:
    """Per-output-channel requantization of an int32 accumulator, precomputed for both modes.

    ``s_x * s_w[c] / s_y`` → onnx float32 multiplier and tflm (Q31 multiplier, shift); activation
    clamp bounds per mode; ``out_dtype`` and ``zp`` of the output. ``single_rounding``: tflm mode
    rounds once, half away from zero (LiteRT's FULLY_CONNECTED) instead of twice.
    """

    s_x: float
    s_w: np.ndarray
    s_y: float
    zp: int
    out_dtype: np.dtype
    act: tuple[str | None, float | None, float | None] = (None, None, None)
    single_rounding: bool = False
    onnx_mult: np.ndarray = field(init=False)
    tflm_mult: np.ndarray = field(init=False)
    tflm_shift: np.ndarray = field(init=False)
    act_range: dict[str, tuple[int, int]] = field(init=False)

    def __post_init__(self) -> None:
        self._tiles: dict = {}
        self.s_w = np.atleast_1d(np.asarray(self.s_w, dtype=np.float32))
        self.onnx_mult = quant.onnx_multiplier(self.s_x, self.s_w, self.s_y)
        real = np.float64(np.float32(self.s_x)) * self.s_w.astype(np.float64) / np.float64(np.float32(self.s_y))
        self.tflm_mult, self.tflm_shift = quant.quantize_multiplier(real)
        kind, lo, hi = self.act
        self.act_range = {m: quant.activation_range(kind, lo, hi, self.s_y, self.zp, self.out_dtype, m)
                          for m in quant.MODES}

    @property
    def channels(self) -> int:
        return int(self.s_w.size)

    def apply(self, acc: np.ndarray, mode: str, channel_axis: int) -> np.ndarray:
        """Requantize ``acc`` (exact integers, any numeric dtype) with channels along ``channel_axis``."""
        shape = [1] * acc.ndim
        if self.channels > 1:
            shape[channel_axis] = self.channels
        lo, hi = self.act_range[mode]
        if mode == "onnx":
            return quant.requantize_onnx(acc, self.onnx_mult.reshape(shape), self.zp, self.out_dtype, lo, hi)
        return quant.requantize_tflm(acc, self.tflm_mult.reshape(shape), self.tflm_shift.reshape(shape),
                                     self.zp, self.out_dtype, lo, hi, self.single_rounding)

    def apply_last(self, acc: np.ndarray, mode: str, out: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
        """Requantize contiguous ``acc`` (float32 holding exact integers below 2**24, or int32;
        channels on the last axis) plus ``offset`` (int32 per channel, with an int32 ``acc`` only;
        None: 0) into ``out`` (``out_dtype``, same shape). May overwrite ``acc``. The same
        requantization as ``apply``: onnx mode in one fused pass (``edgeflow.runtime.native``, when
        compiled), else on torch's vector kernels when torch is loaded (``_onnx_torch``, the
        arithmetic of ``quant.requantize_onnx``), else ``quant.requantize_onnx`` in place with the
        per-channel multipliers tiled along the rows; ``quant.requantize_tflm``."""
        lo, hi = self.act_range[mode]
        if mode == "onnx":
            rq = native.kernels()
            a2, o2 = acc.reshape(-1, acc.shape[-1]), out.reshape(-1, out.shape[-1])
            if rq is not None and rq.supports(a2, o2) and (self.channels == 1 or self.channels == a2.shape[1]):
                cols = a2.shape[1]
                tiled = self._tiles.get("native")  # (cols, offset, tiled multipliers, tiled offsets)
                if tiled is None or tiled[0] != cols or tiled[1] is not offset:
                    tiled = self._tiles["native"] = (cols, offset, native.tile(self.onnx_mult, np.float32, cols),
                                                     native.tile(0 if offset is None else offset, np.int32, cols))
                rq.requantize(a2, tiled[3], tiled[2], lo, hi, self.zp, o2)
                return out
        if offset is not None:
            acc += offset
        if mode == "onnx" and acc.dtype in (np.float32, np.int32) and out.flags.c_contiguous \
                and acc.shape == out.shape and acc.flags.writeable and "torch" in sys.modules:
            self._onnx_torch(acc, lo, hi, out)
            return out
        if mode == "onnx":
            acc2, mult = tiled(acc, self.onnx_mult, self._tiles) if self.channels > 1 else (acc, self.onnx_mult[0])
            quant.requantize_onnx(acc2, mult, self.zp, self.out_dtype, lo, hi, out=out.reshape(acc2.shape))
            return out
        out[...] = self.apply(acc, mode, acc.ndim - 1)
        return out

    def _onnx_torch(self, acc: np.ndarray, lo: int, hi: int, out: np.ndarray) -> None:
        """``quant.requantize_onnx`` on torch's single-threaded vector kernels, the same float32
        operations: float32(acc) * M[c], round half to even, clamp to [lo - zp, hi - zp], + zp, one
        cast into ``out``. A float32 ``acc`` (exact integers, e.g. torchconv's accumulators) is
        overwritten in place; an int32 one is converted to float32 in place, in its own memory (round
        to nearest even, as numpy and MLAS; a separate float32 buffer costs more than the whole
        requantization saves).

        For 1-byte outputs, rounding, clamping and the zero point take two passes instead of four:
        ``y + c`` with ``c = 1.5·2**23 + zp`` (zp made even, so ties still round to even) is
        ``round(y) + c`` exactly in the binade [2**23, 2**24) where the float32 step is 1; clamping
        there to [c + lo - zp, c + hi - zp] saturates every y (those beyond the binade too); the low
        byte of that float's bits is then round(y) + zp (mod 256), which a wrapping int32 → int8 cast
        writes into ``out`` (+1 for an odd zp). ``_wrapping_cast`` checks that torch's cast wraps."""
        torch = sys.modules["torch"]
        mult = self._tiles.get("torch")
        if mult is None:
            mult = self._tiles["torch"] = torch.from_numpy(self.onnx_mult.copy())
        with intgemm.single_threaded_torch:
            t = torch.from_numpy(acc)
            if t.dtype != torch.float32:  # int32 -> float32 in place (same elements, same memory)
                t = t.view(torch.float32).copy_(t)
            t.mul_(mult if self.channels > 1 else float(self.onnx_mult[0]))
            o = torch.from_numpy(out)
            if out.itemsize == 1 and _wrapping_cast(torch):
                c = _MAGIC + (self.zp - (self.zp & 1))
                t.add_(c)
                t.clamp_(c + (lo - self.zp), c + (hi - self.zp))
                o.copy_(t.view(torch.int32))
                if self.zp & 1:
                    o.add_(1)
                return
            t.clamp_(float(lo - self.zp), float(hi - self.zp))
            t.round_()
            if self.zp:
                t.add_(float(self.zp))
            o.copy_(t)


_MAGIC = 12582912.0  # 1.5 * 2**23
_CAST: dict[str, bool] = {}


def _wrapping_cast(torch) -> bool:
    """Whether torch's int32 → int8 / uint8 casts keep the low byte (checked once per process, on
    vector-sized tensors)."""
    if "ok" not in _CAST:
        bits = torch.tensor([0x4B400000 + v for v in (200, -3, 127, -128, 255, 0)] * 16, dtype=torch.int32)
        want8 = torch.tensor([-56, -3, 127, -128, -1, 0] * 16, dtype=torch.int8)
        wantu8 = torch.tensor([200, 253, 127, 128, 255, 0] * 16, dtype=torch.uint8)
        _CAST["ok"] = bool(torch.equal(bits.to(torch.int8), want8) and torch.equal(bits.to(torch.uint8), wantu8))
    return _CAST["ok"]


def requant_of(node: Node) -> Requant | None:
    """The requantization of a conv / fully connected node (None: int32 accumulator output)."""
    at = node.attrs
    if "out_scale" not in at:
        return None
    return Requant(at["in_scale"], node.params["weight_scale"], at["out_scale"], at["out_zero_point"],
                   np.dtype(at["out_dtype"]), tuple(at["activation"]), bool(at.get("single_rounding", False)))


class Op:
    """The kernel of one IR node (TFLite Micro style: Prepare in ``__init__``, Eval in ``run``).

    ``__init__(node)`` reads the node's params and attrs once and precomputes what ``run`` needs;
    ``run(values, mode)`` maps the input arrays (in ``node.inputs`` order) to the output arrays.
    Costs and shapes are rules of the node (``edgeflow.runtime.costs``, ``.shapes``), not kernel
    state.
    """

    kind: str = "op"

    def __init__(self, node: Node) -> None:
        self.node = node
        self.name = node.name
        self.inputs = list(node.inputs)
        self.outputs = list(node.outputs)

    def run(self, values: list[np.ndarray], mode: str) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}: {self.inputs} -> {self.outputs})"
