/* edgeflow portable int8 reference kernels (generated project; do not edit). See kernels.h. */
#include "kernels.h"

#include <string.h>

static int32_t ef_sat32(int64_t v) {
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

static int32_t ef_clip(int64_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : (int32_t)v);
}

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2**31), half away from zero. */
static int32_t ef_srdhm(int32_t a, int32_t b) {
    int64_t ab;
    int64_t nudge;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2**exponent, rounding half away from zero. */
static int32_t ef_rdbpot(int32_t x, int32_t exponent) {
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

int32_t ef_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return ef_rdbpot(ef_srdhm(ef_sat32((int64_t)x * ((int64_t)1 << left)), multiplier), right);
}

/* Single rounding (LiteRT's FULLY_CONNECTED): x * m / 2**(31 - shift), rounded once, half away from
 * zero, in 64 bits (shift <= 30). */
static int64_t ef_multiply_single(int32_t x, int32_t multiplier, int32_t shift) {
    const int32_t total = 31 - shift;
    const int64_t p = (int64_t)x * (int64_t)multiplier;
    const int64_t r = ((p < 0 ? -p : p) + ((int64_t)1 << (total - 1))) >> total;
    return p < 0 ? -r : r;
}

static int8_t ef_requantize(int32_t acc, int32_t m, int32_t s, int32_t single_rounding, const ef_quant *q) {
    const int64_t v = single_rounding ? ef_multiply_single(acc, m, s) : ef_multiply_by_quantized_multiplier(acc, m, s);
    return (int8_t)ef_clip(q->out_zp + v, q->act_min, q->act_max);
}

/* sum over n of (x[i * x_step] - x_zp) * w[i * w_step]. Kept out of line (like ef_window) so that
 * its loop gets registers of its own under -Os. */
__attribute__((noinline)) static int32_t ef_dot(const int8_t *x, int32_t x_step, const int8_t *w, int32_t w_step,
                                                int32_t n, int32_t x_zp) {
    int32_t acc = 0;
    for (; n > 0; --n) {
        acc += ((int32_t)*x - x_zp) * (int32_t)*w;
        x += x_step;
        w += w_step;
    }
    return acc;
}

/* sum over a rows x cols window of (x - x_zp) * w; x rows x_row apart, columns x_col apart; w rows w_row apart. */
__attribute__((noinline)) static int32_t ef_window(const int8_t *x, int32_t x_row, int32_t x_col, const int8_t *w,
                                                   int32_t w_row, int32_t rows, int32_t cols, int32_t x_zp) {
    int32_t acc = 0;
    int32_t r, c;
    for (r = 0; r < rows; ++r) {
        const int8_t *xr = x + r * x_row;
        const int8_t *wr = w + r * w_row;
        for (c = 0; c < cols; ++c) {
            acc += ((int32_t)xr[c * x_col] - x_zp) * (int32_t)wr[c];
        }
    }
    return acc;
}

/* First and one-past-last kernel tap whose input index base + k * dil lies in [0, size). */
static void ef_valid_taps(int32_t base, int32_t dil, int32_t k, int32_t size, int32_t *first, int32_t *end) {
    *first = base < 0 ? (-base + dil - 1) / dil : 0;
    *end = base > size - 1 ? 0 : (size - 1 - base) / dil + 1;
    if (*end > k) {
        *end = k;
    }
    if (*end < *first) {
        *end = *first;
    }
}

/* Padding taps hold the input zero point, i.e. real 0: only the taps inside the input are summed. */
void ef_conv(const int8_t *x, int8_t *y, const ef_geom *g, const ef_quant *q, const int8_t *w,
             const int32_t *bias, const int32_t *mult, const int32_t *shift, int32_t per_channel,
             int32_t single_rounding) {
    const int32_t cg = g->in_c / g->groups;
    const int32_t mg = g->out_c / g->groups;
    const int32_t in_w = g->in_w, plane = g->in_h * g->in_w, taps = g->k_h * g->k_w;
    int32_t m, oy, ox, c, ky, kx, ky0, ky1, kx0, kx1;
    for (m = 0; m < g->out_c; ++m) {
        const int8_t *xg = x + (m / mg) * cg * plane;
        const int8_t *wm = w + m * cg * taps;
        const int32_t rm = per_channel ? mult[m] : mult[0];
        const int32_t rs = per_channel ? shift[m] : shift[0];
        int8_t *ym = y + m * g->out_h * g->out_w;
        for (oy = 0; oy < g->out_h; ++oy) {
            const int32_t by = oy * g->stride_h - g->pad_top;
            ef_valid_taps(by, g->dil_h, g->k_h, g->in_h, &ky0, &ky1);
            for (ox = 0; ox < g->out_w; ++ox) {
                const int32_t bx = ox * g->stride_w - g->pad_left;
                const int8_t *xo;
                const int8_t *wo;
                int32_t acc = bias ? bias[m] : 0;
                ef_valid_taps(bx, g->dil_w, g->k_w, in_w, &kx0, &kx1);
                xo = xg + (by + ky0 * g->dil_h) * in_w + bx + kx0 * g->dil_w;
                wo = wm + ky0 * g->k_w + kx0;
                if (taps == 1) { /* pointwise: one dot product over the input channels */
                    acc += ky1 > ky0 && kx1 > kx0 ? ef_dot(xo, plane, wo, 1, cg, q->in_zp) : 0;
                } else if (cg >= taps) { /* many channels: per tap, a dot product over the input channels */
                    for (ky = 0; ky < ky1 - ky0; ++ky) {
                        for (kx = 0; kx < kx1 - kx0; ++kx) {
                            acc += ef_dot(xo + ky * g->dil_h * in_w + kx * g->dil_w, plane, wo + ky * g->k_w + kx, taps,
                                          cg, q->in_zp);
                        }
                    }
                } else { /* large kernels (depthwise, first layers): per channel, the window */
                    for (c = 0; c < cg; ++c) {
                        acc += ef_window(xo + c * plane, g->dil_h * in_w, g->dil_w, wo + c * taps, g->k_w, ky1 - ky0,
                                         kx1 - kx0, q->in_zp);
                    }
                }
                ym[oy * g->out_w + ox] = ef_requantize(acc, rm, rs, single_rounding, q);
            }
        }
    }
}

void ef_fully_connected(const int8_t *x, int8_t *y, int32_t rows, int32_t k, int32_t n, const ef_quant *q,
                        const int8_t *w, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                        int32_t per_channel, int32_t single_rounding) {
    int32_t r, j, i;
    for (r = 0; r < rows; ++r) {
        const int8_t *xr = x + r * k;
        for (j = 0; j < n; ++j) {
            const int8_t *wj = w + j * k; /* weights stored (N, K) */
            int32_t acc = bias ? bias[j] : 0;
            for (i = 0; i < k; ++i) {
                acc += ((int32_t)xr[i] - q->in_zp) * (int32_t)wj[i];
            }
            y[r * n + j] = ef_requantize(acc, per_channel ? mult[j] : mult[0], per_channel ? shift[j] : shift[0],
                                         single_rounding, q);
        }
    }
}

void ef_add(const int8_t *a, const int8_t *b, int8_t *y, int32_t size, const int32_t *rq, const int32_t *zp,
            int32_t act_min, int32_t act_max) {
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t xa = ((int32_t)a[i] - zp[0]) * (1 << 20);
        const int32_t xb = ((int32_t)b[i] - zp[1]) * (1 << 20);
        const int32_t sa = ef_multiply_by_quantized_multiplier(xa, rq[0], rq[1]);
        const int32_t sb = ef_multiply_by_quantized_multiplier(xb, rq[2], rq[3]);
        y[i] = (int8_t)ef_clip((int64_t)zp[2] + ef_multiply_by_quantized_multiplier(sa + sb, rq[4], rq[5]), act_min,
                               act_max);
    }
}

void ef_mul(const int8_t *a, const int8_t *b, int8_t *y, const int32_t *t, const ef_quant *q, int32_t b_zp,
            const int32_t *rq) {
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < t[0]; ++i0) {
        for (i1 = 0; i1 < t[1]; ++i1) {
            for (i2 = 0; i2 < t[2]; ++i2) {
                const int8_t *ar = a + i0 * t[4] + i1 * t[5] + i2 * t[6];
                const int8_t *br = b + i0 * t[8] + i1 * t[9] + i2 * t[10];
                for (i3 = 0; i3 < t[3]; ++i3) { /* |product| <= 255 * 255: int32 */
                    const int32_t prod = ((int32_t)ar[i3 * t[7]] - q->in_zp) * ((int32_t)br[i3 * t[11]] - b_zp);
                    *y++ = ef_requantize(prod, rq[0], rq[1], 0, q);
                }
            }
        }
    }
}

void ef_max_pool(const int8_t *x, int8_t *y, const ef_geom *g) {
    int32_t c, oy, ox, ky, kx;
    for (c = 0; c < g->in_c; ++c) {
        const int8_t *xc = x + c * g->in_h * g->in_w;
        for (oy = 0; oy < g->out_h; ++oy) {
            for (ox = 0; ox < g->out_w; ++ox) {
                int32_t best = -128; /* padded taps count as the type's minimum */
                for (ky = 0; ky < g->k_h; ++ky) {
                    const int32_t iy = oy * g->stride_h - g->pad_top + ky * g->dil_h;
                    if (iy < 0 || iy >= g->in_h) {
                        continue;
                    }
                    for (kx = 0; kx < g->k_w; ++kx) {
                        const int32_t ix = ox * g->stride_w - g->pad_left + kx * g->dil_w;
                        if (ix >= 0 && ix < g->in_w && xc[iy * g->in_w + ix] > best) {
                            best = xc[iy * g->in_w + ix];
                        }
                    }
                }
                y[(c * g->out_h + oy) * g->out_w + ox] = (int8_t)best;
            }
        }
    }
}

void ef_avg_pool(const int8_t *x, int8_t *y, const ef_geom *g, const ef_quant *q, int32_t count_include_pad,
                 const int32_t *rq) {
    int32_t c, oy, ox, ky, kx;
    for (c = 0; c < g->in_c; ++c) {
        const int8_t *xc = x + c * g->in_h * g->in_w;
        for (oy = 0; oy < g->out_h; ++oy) {
            for (ox = 0; ox < g->out_w; ++ox) {
                int32_t sum = 0;
                int32_t count = 0;
                int32_t avg = 0;
                for (ky = 0; ky < g->k_h; ++ky) {
                    const int32_t iy = oy * g->stride_h - g->pad_top + ky;
                    for (kx = 0; kx < g->k_w; ++kx) {
                        const int32_t ix = ox * g->stride_w - g->pad_left + kx;
                        if (iy >= 0 && iy < g->in_h && ix >= 0 && ix < g->in_w) {
                            sum += (int32_t)xc[iy * g->in_w + ix] - q->in_zp;
                            ++count;
                        }
                    }
                }
                if (count_include_pad) {
                    count = g->k_h * g->k_w;
                }
                if (count > 0) { /* TFLM: divide rounding half away from zero */
                    avg = sum > 0 ? (sum + count / 2) / count : -((-sum + count / 2) / count);
                }
                if (rq) {
                    avg = ef_multiply_by_quantized_multiplier(avg, rq[0], rq[1]);
                }
                y[(c * g->out_h + oy) * g->out_w + ox] = (int8_t)ef_clip((int64_t)avg + q->out_zp, q->act_min, q->act_max);
            }
        }
    }
}

void ef_global_avg_pool(const int8_t *x, int8_t *y, int32_t channels, int32_t size, const ef_quant *q,
                        const int32_t *rq) {
    int32_t c, i;
    for (c = 0; c < channels; ++c) {
        int32_t acc = -q->in_zp * size;
        for (i = 0; i < size; ++i) {
            acc += x[c * size + i];
        }
        y[c] = ef_requantize(acc, rq[0], rq[1], 0, q);
    }
}

void ef_clamp(const int8_t *x, int8_t *y, int32_t size, int32_t lo, int32_t hi) {
    int32_t i;
    for (i = 0; i < size; ++i) {
        y[i] = (int8_t)ef_clip(x[i], lo, hi);
    }
}

void ef_rescale(const int8_t *x, int8_t *y, int32_t size, const ef_quant *q, const int32_t *rq) {
    int32_t i;
    for (i = 0; i < size; ++i) {
        y[i] = ef_requantize((int32_t)x[i] - q->in_zp, rq[0], rq[1], 0, q);
    }
}

void ef_transpose(const int8_t *x, int8_t *y, const int32_t *t) {
    int32_t a, b, c, d;
    for (a = 0; a < t[0]; ++a) {
        for (b = 0; b < t[1]; ++b) {
            for (c = 0; c < t[2]; ++c) {
                const int8_t *xr = x + a * t[4] + b * t[5] + c * t[6];
                for (d = 0; d < t[3]; ++d) {
                    *y++ = xr[d * t[7]];
                }
            }
        }
    }
}

void ef_pad(const int8_t *x, int8_t *y, const int32_t *p, int32_t value) {
    int32_t a, b, c;
    memset(y, value, (size_t)(p[4] * p[5] * p[6] * p[7]));
    for (a = 0; a < p[0]; ++a) {
        for (b = 0; b < p[1]; ++b) {
            for (c = 0; c < p[2]; ++c) {
                memcpy(y + (((a + p[8]) * p[5] + b + p[9]) * p[6] + c + p[10]) * p[7] + p[11], x, (size_t)p[3]);
                x += p[3];
            }
        }
    }
}

void ef_lut(const int8_t *x, int8_t *y, int32_t size, const int8_t *table) {
    int32_t i;
    for (i = 0; i < size; ++i) {
        y[i] = table[(int32_t)x[i] + 128];
    }
}

/* ------------------------------------------------------------------ hard-swish: gemmlowp int16 fixed point */
/* SaturatingRoundingDoublingHighMul of int16 values: round(a * b / 2**15), half away from zero; 32-bit
 * arithmetic (|a * b| <= 2**30). */
static int32_t ef_srdhm16(int32_t a, int32_t b) {
    const int32_t ab = a * b;
    if (a == INT16_MIN && b == INT16_MIN) {
        return INT16_MAX;
    }
    return (ab + (ab >= 0 ? (1 << 14) : 1 - (1 << 14))) / (1 << 15);
}

/* SaturatingDoublingHighMul (no rounding: truncates toward zero) of int16 values. */
static int32_t ef_sdhm16(int32_t a, int32_t b) {
    return ef_clip((a * b) / 32768, INT16_MIN, INT16_MAX);
}

/* SaturatingLeftShift of an int16 value (exponent >= 0; from 15 on every non-zero value saturates, so
 * the shift stops there: |x * 2**15| <= 2**30). */
static int32_t ef_shl_sat16(int32_t x, int32_t exponent) {
    return ef_clip(x * ((int32_t)1 << (exponent > 15 ? 15 : exponent)), INT16_MIN, INT16_MAX);
}

void ef_hard_swish(const int8_t *x, int8_t *y, int32_t size, const int32_t *hs) {
    const int32_t zp_x = hs[0], zp_y = hs[1], out_m = hs[2], out_e = hs[3], relu_m = hs[4], relu_e = hs[5];
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t hires = ((int32_t)x[i] - zp_x) * 128; /* |.| <= 255 * 128: an int16 */
        const int32_t pre = ef_srdhm16(hires, out_m);       /* scaled to the output */
        int32_t relu = relu_e > 0 ? ef_shl_sat16(hires, relu_e - 1) : hires;
        relu = ef_srdhm16(relu, relu_m); /* relu-ish value in [-1, 1] (Q15) */
        relu = relu_e > 0 ? ef_shl_sat16(relu, 1) : ef_rdbpot(relu, -relu_e);
        relu = (relu + 32768) >> 1; /* to [0, 1] */
        y[i] = (int8_t)ef_clip((int64_t)ef_rdbpot(ef_sdhm16(relu, pre), -out_e) + zp_y, -128, 127);
    }
}

/* ------------------------------------------------------------------ int8 softmax (TFLite reference)
 * gemmlowp fixed point: FixedPoint<int32, I> raw values; see edgeflow.runtime.fixedpoint. */
static int32_t ef_add32(int64_t a, int64_t b) {
    return (int32_t)(a + b);
}

static int32_t ef_shl_sat(int32_t x, int32_t exponent) {
    return ef_sat32((int64_t)x * ((int64_t)1 << exponent));
}

/* exp(a) for a in [-1/4, 0): FixedPoint<0> in and out. */
static int32_t ef_exp_quarter(int32_t a) {
    const int32_t constant_term = 1895147668; /* exp(-1/8) */
    const int32_t one_third = 715827883;
    const int32_t x = ef_add32(a, (int64_t)1 << 28);
    const int32_t x2 = ef_srdhm(x, x);
    const int32_t x3 = ef_srdhm(x2, x);
    const int32_t x4 = ef_srdhm(x2, x2);
    const int32_t x4_over_4 = ef_rdbpot(x4, 2);
    const int32_t poly = ef_rdbpot(ef_add32(ef_srdhm(ef_add32(x4_over_4, x3), one_third), x2), 1);
    return ef_add32(constant_term, ef_srdhm(constant_term, ef_add32(x, poly)));
}

/* exp(a) for a <= 0: a FixedPoint<5>, result FixedPoint<0>. */
static int32_t ef_exp_negative(int32_t a) {
    static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t quarter = (int32_t)1 << 24;
    const int32_t a_mod = (a & (quarter - 1)) - quarter;
    const int32_t remainder = a_mod - a;
    int32_t result = ef_exp_quarter(ef_shl_sat(a_mod, 5));
    int32_t k;
    for (k = 0; k < 7; ++k) { /* exp(-2**(k - 2)) where bit 26 + k - 2 of the remainder is set */
        if (remainder & ((int32_t)1 << (24 + k))) {
            result = ef_srdhm(result, barrel[k]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1): FixedPoint<0> in and out (Newton-Raphson). */
static int32_t ef_one_over_one_plus_x(int32_t a) {
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = ef_add32(1515870810, ef_srdhm(half_denominator, -1010580540));
    int32_t k;
    for (k = 0; k < 3; ++k) {
        const int32_t one_minus = ef_add32((int64_t)1 << 29, -(int64_t)ef_srdhm(half_denominator, x));
        x = ef_add32(x, ef_shl_sat(ef_srdhm(x, one_minus), 2));
    }
    return ef_shl_sat(x, 1);
}

void ef_int_softmax(const int8_t *x, int8_t *y, int32_t outer, int32_t n, int32_t inner, int32_t mult,
                    int32_t left_shift, int32_t diff_min) {
    int32_t o, i, k;
    for (o = 0; o < outer; ++o) {
        for (i = 0; i < inner; ++i) {
            const int8_t *xr = x + o * n * inner + i;
            int8_t *yr = y + o * n * inner + i;
            int32_t max = -128;
            int32_t total = 0;
            int32_t headroom = 0;
            int32_t bits, r;
            for (k = 0; k < n; ++k) {
                max = xr[k * inner] > max ? xr[k * inner] : max;
            }
            for (k = 0; k < n; ++k) {
                const int32_t d = xr[k * inner] - max;
                if (d >= diff_min) {
                    total += ef_rdbpot(ef_exp_negative(ef_srdhm(ef_shl_sat(d, left_shift), mult)), 12);
                }
            }
            while (headroom < 32 && !((uint32_t)total & (0x80000000u >> headroom))) {
                ++headroom; /* leading zeros of total (>= 1: the maximum contributes exp(0)) */
            }
            bits = 12 - headroom;
            r = ef_one_over_one_plus_x((int32_t)(((int64_t)((uint32_t)total << headroom)) - ((int64_t)1 << 31)));
            for (k = 0; k < n; ++k) {
                const int32_t d = xr[k * inner] - max;
                int32_t q = -128;
                if (d >= diff_min) {
                    const int32_t e = ef_exp_negative(ef_srdhm(ef_shl_sat(d, left_shift), mult));
                    q = ef_clip((int64_t)ef_rdbpot(ef_srdhm(r, e), bits + 31 - 8) - 128, -128, 127);
                }
                yr[k * inner] = (int8_t)q;
            }
        }
    }
}

void ef_concat_part(const int8_t *x, int8_t *y, int32_t outer, int32_t inner, int32_t out_inner,
                    const ef_quant *q, const int32_t *rq) {
    int32_t o;
    for (o = 0; o < outer; ++o) {
        if (rq) {
            ef_rescale(x + o * inner, y + o * out_inner, inner, q, rq);
        } else {
            memmove(y + o * out_inner, x + o * inner, (size_t)inner);
        }
    }
}
