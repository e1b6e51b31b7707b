"""Shared quantization and requantization helpers — the arithmetic spec of the runtime.

Integer tensors hold ``q`` with ``real = scale * (q - zero_point)``; activations are int8
(or uint8 in QOperator files) per tensor; weights int8 (per output channel or per tensor),
biases int32 with scale ``s_in * s_w[c]`` and zero point 0.

Two rounding modes share one integer accumulator ``acc = sum (x - zp_x) * (w - zp_w) + bias``
(exact: int32 on a microcontroller, exact integers in float BLAS here, see ``intgemm``):

``onnx`` — what onnxruntime's CPU integer kernels compute (MLAS ``MlasRequantizeOutput``)::

    M_c   = float32(float32(s_x * s_w[c]) / s_y)        # float32, in this order (qlinearconv.cc)
    y     = clamp(float32(acc) * M_c, qmin - zp_y, qmax - zp_y)
    q_out = round_half_to_even(y) + zp_y

  QuantizeLinear is ``saturate(round_half_to_even(x / s) + zp)`` with a true float32 division;
  DequantizeLinear is ``float32(q - zp) * s``.

``tflm`` — what TFLite Micro / CMSIS-NN compute on the device (``MultiplyByQuantizedMultiplier``)::

    (m, shift) = QuantizeMultiplier(double(s_x) * s_w[c] / s_y)   # Q31 multiplier, frexp
    q_out = clamp(zp_y + RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(
                     acc << max(shift, 0), m), max(-shift, 0)), act_min, act_max)

  i.e. "double rounding": the high multiply rounds half away from zero (nudge), the shift rounds
  half up. Activation clamps (ReLU, ReLU6, Clip) become ``act_min/act_max`` in the output's
  integer domain (``zp + round(limit / s)``), as ``CalculateActivationRangeQuantized``.
"""

from __future__ import annotations

import numpy as np

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

DTYPE_RANGE = {
    np.dtype(np.int8): (-128, 127),
    np.dtype(np.uint8): (0, 255),
    np.dtype(np.int16): (-32768, 32767),
    np.dtype(np.uint16): (0, 65535),
    np.dtype(np.int32): (INT32_MIN, INT32_MAX),
}

MODES = ("onnx", "tflm")


def qrange(dtype: np.dtype) -> tuple[int, int]:
    """Integer range [qmin, qmax] of a quantized element type."""
    return DTYPE_RANGE[np.dtype(dtype)]


# ------------------------------------------------------------------------------------ onnx mode
def quantize_linear(x: np.ndarray, scale: np.ndarray | float, zp: np.ndarray | int, dtype: np.dtype) -> np.ndarray:
    """ONNX QuantizeLinear as onnxruntime computes it: saturate(rne(x / scale) + zp) in float32."""
    qmin, qmax = qrange(dtype)
    zp_f = np.asarray(zp, dtype=np.float32)
    v = np.asarray(np.divide(np.asarray(x, dtype=np.float32), np.asarray(scale, dtype=np.float32)))  # then in place
    np.clip(v, np.float32(qmin) - zp_f, np.float32(qmax) - zp_f, out=v)
    np.rint(v, out=v)
    return np.add(v, zp_f, out=np.empty(v.shape, dtype), casting="unsafe")


def dequantize_linear(q: np.ndarray, scale: np.ndarray | float, zp: np.ndarray | int) -> np.ndarray:
    """ONNX DequantizeLinear: float32(q - zp) * scale."""
    d = (q.astype(np.int32) - np.asarray(zp, dtype=np.int32)).astype(np.float32)
    return d * np.asarray(scale, dtype=np.float32)


def onnx_multiplier(s_x: float, s_w: np.ndarray, s_y: float) -> np.ndarray:
    """onnxruntime's requantization multiplier: float32((s_x * s_w) / s_y), evaluated in float32."""
    sx = np.float32(s_x)
    sw = np.asarray(s_w, dtype=np.float32)
    return ((sx * sw) / np.float32(s_y)).astype(np.float32)


def requantize_onnx(acc: np.ndarray, multiplier: np.ndarray, zp: int, dtype: np.dtype,
                    act_min: int | None = None, act_max: int | None = None,
                    out: np.ndarray | None = None) -> np.ndarray:
    """MLAS requantization: rne(clamp(float32(acc) * M)) + zp, then the activation clamp — the one
    onnx-mode requantization of the runtime (``Requant.apply`` and the fast paths' ``apply_last``).

    ``acc`` holds exact integers (int32/int64, or float32/float64 holding integers). Clamping
    to integer bounds commutes with rounding, so the activation clamp is folded into one clip.
    With ``out`` (``dtype``, acc's shape) and a float32 ``acc``, works in place: overwrites ``acc``
    and writes ``out`` (4 passes, no temporaries); other accumulators are converted within the
    multiply (one float32 temporary, 4 passes).
    """
    qmin, qmax = qrange(dtype)
    lo = qmin if act_min is None else max(qmin, act_min)
    hi = qmax if act_max is None else min(qmax, act_max)
    if out is not None and acc.dtype == np.float32:
        v = np.multiply(acc, multiplier, out=acc, casting="unsafe")
    else:  # float32(acc) * M in one pass: the int32 -> float conversion of MLAS (round to nearest even)
        v = np.multiply(acc, multiplier, dtype=np.float32, casting="unsafe")
    np.clip(v, np.float32(lo - zp), np.float32(hi - zp), out=v)
    np.rint(v, out=v)  # round half to even, as MLAS (nearbyint in the default rounding mode)
    if out is None:
        v += np.float32(zp)
        return v.astype(dtype)
    np.add(v, np.float32(zp), out=out, casting="unsafe")
    return out


# ------------------------------------------------------------------------------------ tflm mode
def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """TfLiteRound / std::round: round half away from zero."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_tflm(x: np.ndarray, scale: np.ndarray | float, zp: np.ndarray | int, dtype: np.dtype) -> np.ndarray:
    """TFLite ``AffineQuantize``: saturate(TfLiteRound(float32(x) / float32(scale)) + zp)."""
    qmin, qmax = qrange(dtype)
    v = np.asarray(x, dtype=np.float32) / np.asarray(scale, dtype=np.float32)
    v = round_half_away(v) + np.asarray(zp, dtype=np.float64)
    return np.clip(v, qmin, qmax).astype(dtype)


def quantize_multiplier(m: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """TFLM ``QuantizeMultiplier``: real multiplier -> (Q31 int32 multiplier, shift).

    ``m = q * 2**shift`` with q in [0.5, 1) written as round(q * 2**31); shift > 0 is a left shift.
    """
    m = np.atleast_1d(np.asarray(m, dtype=np.float64))
    q, shift = np.frexp(m)
    q_fixed = round_half_away(q * float(1 << 31)).astype(np.int64)
    over = q_fixed == (1 << 31)
    q_fixed = np.where(over, q_fixed // 2, q_fixed)
    shift = np.where(over, shift + 1, shift).astype(np.int64)
    tiny = shift < -31
    q_fixed = np.where(tiny | (m == 0), 0, q_fixed)
    shift = np.where(tiny | (m == 0), 0, shift)
    return q_fixed, shift


def _trunc_div_pow2(x: np.ndarray, n: int) -> np.ndarray:
    """C-style integer division by 2**n (truncates toward zero)."""
    a = np.abs(x) >> n
    return np.where(x < 0, -a, a)


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values held in int64."""
    ab = a * b
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    res = _trunc_div_pow2(ab + nudge, 31)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, np.int64(INT32_MAX), res)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp ``RoundingDivideByPOT``: x / 2**exponent, rounding half away from zero."""
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0).astype(np.int64)
    return (x >> exponent) + (remainder > threshold).astype(np.int64)


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """TFLM ``MultiplyByQuantizedMultiplier`` (double rounding), vectorized; int64 in and out.

    ``multiplier`` (≥ 0, as ``quantize_multiplier`` makes them) and ``shift`` broadcast against ``x``
    (per-channel arrays shaped for it). The same arithmetic as ``rounding_divide_by_pot(
    saturating_rounding_doubling_high_mul(clip(x << left), m), right)``, written branch-free in place
    (two int64 buffers): the truncating division by 2**31 adds 2**31 - 1 to negative values first.
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    multiplier = np.asarray(multiplier, dtype=np.int64)
    shape = np.broadcast_shapes(x.shape, shift.shape, multiplier.shape)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    v = np.atleast_1d(np.left_shift(x, left))  # a fresh array (0-d inputs: one element)
    np.clip(v, INT32_MIN, INT32_MAX, out=v)  # int32 arithmetic on the device
    np.multiply(v, multiplier, out=v, casting="unsafe")
    low31 = np.int64((1 << 31) - 1)
    t = np.right_shift(v, 63)  # -1 where the product is negative
    np.bitwise_and(t, low31, out=t)
    v += np.int64(1 << 30)
    v -= t  # + nudge: 2**30, or 1 - 2**30 for a negative product
    np.right_shift(v, 63, out=t)
    np.bitwise_and(t, low31, out=t)
    v += t
    np.right_shift(v, 31, out=v)  # SaturatingRoundingDoublingHighMul (m ≥ 0: no INT32_MIN² overflow)
    if not right.any():
        return v.reshape(shape)
    mask = (np.int64(1) << right) - 1  # RoundingDivideByPOT: half away from zero
    np.right_shift(v, 63, out=t)
    np.bitwise_and(t, np.int64(1), out=t)
    t += mask >> 1  # threshold
    remainder = np.bitwise_and(v, mask)
    np.right_shift(v, right, out=v)
    v += remainder > t
    return v.reshape(shape)


def multiply_by_quantized_multiplier_single(x: np.ndarray, multiplier: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Single-rounding ``MultiplyByQuantizedMultiplier``: x·m / 2**(31 - shift) in 64 bits, rounded
    once, half away from zero — what LiteRT's FULLY_CONNECTED computes (measured against it: exact on
    .5 ties, where double rounding and round-half-up both differ)."""
    total = 31 - np.asarray(shift, dtype=np.int64)
    p = np.asarray(x, dtype=np.int64) * np.asarray(multiplier, np.int64)
    r = (np.abs(p) + (np.int64(1) << (total - 1))) >> total
    return np.where(p < 0, -r, r)


def requantize_tflm(acc: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, zp: int, dtype: np.dtype,
                    act_min: int | None = None, act_max: int | None = None, single: bool = False) -> np.ndarray:
    """acc (exact integers) -> zp + MultiplyByQuantizedMultiplier(acc), clamped to the activation range
    (``single``: the single-rounding variant)."""
    qmin, qmax = qrange(dtype)
    acc = np.clip(np.asarray(acc).astype(np.int64), INT32_MIN, INT32_MAX)
    mbqm = multiply_by_quantized_multiplier_single if single else multiply_by_quantized_multiplier
    v = mbqm(acc, multiplier, shift) + zp
    lo = qmin if act_min is None else max(qmin, act_min)
    hi = qmax if act_max is None else min(qmax, act_max)
    return np.clip(v, lo, hi).astype(dtype)


# ------------------------------------------------------------------------------ activation clamps
def activation_range(kind: str | None, lo: float | None, hi: float | None, scale: float, zp: int,
                     dtype: np.dtype, mode: str) -> tuple[int, int]:
    """Integer clamp [act_min, act_max] for a fused ReLU/Clip in the output's domain.

    ``kind`` None → full range. ``lo``/``hi`` are the real-valued limits (ReLU: 0, None).
    onnx mode rounds limit/scale half to even (as QuantizeLinear would), tflm half away (TfLiteRound of
    the float32 quotient, as ``CalculateActivationRangeQuantized``).
    """
    qmin, qmax = qrange(dtype)
    if kind is None:
        return qmin, qmax

    def q(v: float) -> int:
        if mode == "onnx":
            r = float(np.rint(np.float32(v) / np.float32(scale)))
        else:
            r = float(round_half_away(np.float32(v) / np.float32(scale)))
        return int(np.clip(r + zp, qmin, qmax))

    a = qmin if lo is None else max(qmin, q(lo))
    b = qmax if hi is None else min(qmax, q(hi))
    return a, b
