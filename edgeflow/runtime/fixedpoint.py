"""gemmlowp fixed-point arithmetic on int32 raw values held in int64 numpy arrays.

What TFLite's reference int8 SOFTMAX (``reference_ops::Softmax``, also TFLite Micro's) computes
with: ``FixedPoint<int32, I>`` raw values (``I`` integer bits, ``31 - I`` fractional bits), the
saturating rounding doubling high multiply of ``edgeflow.runtime.quant``, power-of-two rescales,
``exp_on_negative_values`` and the Newton-Raphson reciprocal ``one_over_one_plus_x_for_x_in_0_1``.
Every function takes and returns exact int32 values (in int64 arrays), bit for bit gemmlowp's.
"""

from __future__ import annotations

import numpy as np

from edgeflow.runtime.quant import INT32_MAX, INT32_MIN, rounding_divide_by_pot
from edgeflow.runtime.quant import saturating_rounding_doubling_high_mul as mul

# exp(-2**k) for k = -2 .. 4 as FixedPoint<int32, 0> (gemmlowp GEMMLOWP_EXP_BARREL_SHIFTER)
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401),
               (4, 242))


def shift_left_saturating(x: np.ndarray, exponent: int) -> np.ndarray:
    """``SaturatingRoundingMultiplyByPOT<exponent>`` for exponent > 0: x·2**exponent saturated to int32."""
    return np.clip(np.asarray(x, dtype=np.int64) << exponent, INT32_MIN, INT32_MAX)


def exp_on_interval_between_negative_one_quarter_and_0_excl(a: np.ndarray) -> np.ndarray:
    """exp(a) for a in [-1/4, 0): FixedPoint<0> in and out (Taylor series around -1/8)."""
    constant_term = 1895147668  # exp(-1/8)
    one_third = 715827883
    x = a + (1 << 28)  # a + 1/8
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    x4_over_4 = rounding_divide_by_pot(x4, 2)
    poly = rounding_divide_by_pot(mul(x4_over_4 + x3, np.int64(one_third)) + x2, 1)
    return constant_term + mul(np.int64(constant_term), x + poly)


def exp_on_negative_values(a: np.ndarray, integer_bits: int = 5) -> np.ndarray:
    """exp(a) for a ≤ 0: ``a`` FixedPoint<integer_bits> (≤ 5), result FixedPoint<0>."""
    frac = 31 - integer_bits
    quarter = 1 << (frac - 2)
    a_mod = (a & (quarter - 1)) - quarter
    result = exp_on_interval_between_negative_one_quarter_and_0_excl(shift_left_saturating(a_mod, integer_bits))
    remainder = a_mod - a
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            hit = (remainder & (1 << (frac + exponent))) != 0
            result = np.where(hit, mul(result, np.int64(multiplier)), result)
    return np.where(a == 0, np.int64(INT32_MAX), result)


def one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """1 / (1 + a) for a in [0, 1): FixedPoint<0> in and out (three Newton-Raphson steps)."""
    s = a + INT32_MAX
    half_denominator = np.where(s >= 0, s + 1, s - 1)
    half_denominator = np.where(half_denominator >= 0, half_denominator >> 1, -((-half_denominator) >> 1))
    x = 1515870810 + mul(half_denominator, np.int64(-1010580540))  # 48/17 - 32/17 d, FixedPoint<2>
    for _ in range(3):
        one_minus = (1 << 29) - mul(half_denominator, x)
        x = x + shift_left_saturating(mul(x, one_minus), 2)
    return shift_left_saturating(x, 1)


def reciprocal(x: np.ndarray, integer_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLite ``GetReciprocal``: (FixedPoint<0> scale, num_bits_over_unit) with
    1/x = scale · 2**-num_bits_over_unit for x > 0 in FixedPoint<integer_bits>."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = 32 - np.frexp(x.astype(np.float64))[1].astype(np.int64)  # count leading zeros
    bits_over_unit = integer_bits - headroom_plus_one
    shifted_minus_one = ((x << headroom_plus_one) & 0xFFFFFFFF) - (1 << 31)
    return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), bits_over_unit
