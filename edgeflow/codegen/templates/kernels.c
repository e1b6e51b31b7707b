/* edgeflow portable int8 reference kernels (generated project; do not edit). See kernels.h. */
#include "kernels.h"

#include <string.h>

static int32_t ef_sat32(int64_t v) {
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

static int32_t ef_clip(int64_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : (int32_t)v);
}

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2**31), half away from zero. gemmlowp adds
 * 2**30 (1 - 2**30 below zero) and divides, truncating; for a negative product that is the floor of
 * (ab + 2**30) / 2**31 too, so one arithmetic shift serves both signs. */
static int32_t ef_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
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

/* ef_multiply_by_quantized_multiplier inlined for its usual case, a right shift (shift <= 0; shifts
 * are >= -31, as quant.quantize_multiplier makes them): the same arithmetic without the calls. */
static inline __attribute__((always_inline)) int32_t ef_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
    int32_t v, mask;
    if (shift > 0 || multiplier == INT32_MIN) {
        return ef_multiply_by_quantized_multiplier(x, multiplier, shift);
    }
    v = (int32_t)(((int64_t)x * multiplier + ((int64_t)1 << 30)) >> 31); /* ef_srdhm */
    mask = (int32_t)((1u << -shift) - 1u);                                 /* ef_rdbpot */
    return (v >> -shift) + ((v & mask) > (mask >> 1) + (v < 0));
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

/* Weight k of row m of an (rows, k_len) weight matrix stored at `bits` bits (see kernels.h). */
static int32_t ef_weight(const int8_t *w, int32_t bits, int32_t rows, int32_t k_len, int32_t m, int32_t k) {
    const int32_t per_byte = 8 / bits;
    const int32_t full = rows - rows % per_byte; /* rows packed in groups of per_byte, interleaved per k */
    int32_t byte, sh, i;
    if (bits == 8) {
        return w[m * k_len + k];
    }
    if (m < full) {
        byte = (m / per_byte) * k_len + k;
        sh = (m % per_byte) * bits;
    } else { /* the last rows % per_byte rows: one flat stream, per_byte values a byte */
        i = (m - full) * k_len + k;
        byte = (full / per_byte) * k_len + i / per_byte;
        sh = (i % per_byte) * bits;
    }
    return (int32_t)(int8_t)(uint8_t)((uint32_t)(uint8_t)w[byte] << (8 - bits - sh)) >> (8 - bits);
}

/* Row m of a packed (rows, k_len) weight matrix as int8 values in out[k_len]. */
static void ef_unpack_row(const int8_t *w, int32_t bits, int32_t rows, int32_t k_len, int32_t m, int8_t *out) {
    int32_t k;
    for (k = 0; k < k_len; ++k) {
        out[k] = (int8_t)ef_weight(w, bits, rows, k_len, m, k);
    }
}

/* Padding taps hold the input zero point, i.e. real 0: only the taps inside the input are summed. */
static void ef_conv_portable(const int8_t *x, int8_t *y, const ef_geom *g, const ef_quant *q, const int8_t *w,
                             int32_t w_bits, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                             int32_t per_channel, int32_t single_rounding) {
    const int32_t cg = g->in_c / g->groups;
    const int32_t mg = g->out_c / g->groups;
    const int32_t in_w = g->in_w, plane = g->in_h * g->in_w, taps = g->k_h * g->k_w;
    int8_t row[w_bits == 8 ? 1 : cg * taps]; /* packed weights: one output channel's, unpacked */
    int32_t m, oy, ox, c, ky, kx, ky0, ky1, kx0, kx1;
    for (m = 0; m < g->out_c; ++m) {
        const int8_t *xg = x + (m / mg) * cg * plane;
        const int8_t *wm = w + m * cg * taps;
        if (w_bits != 8) {
            ef_unpack_row(w, w_bits, g->out_c, cg * taps, m, row);
            wm = row;
        }
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

#if defined(__ARM_FEATURE_DSP)
/* ------------------------------------------------------------------ Cortex-M4 DSP extension (SIMD32)
 * int8 values widened to int16 lanes with SXTB16 (bytes 0 and 2; rotated by 8: bytes 1 and 3), two
 * multiply-accumulates per SMLAD into int32 accumulators. Only the order of the (exact) integer sums
 * differs from the portable kernels; the requantization is the same, so the outputs are equal.
 * Scratch lives on the stack: 4 * C * KH * KW bytes for a conv (two im2col columns), 2 * K for a fully
 * connected layer, 2 * (padded plane) for a depthwise conv (model.h: MODEL_DSP_STACK_BYTES). */
#include <arm_acle.h>

#define EF_DW_MAX_TAPS 64 /* depthwise kernels up to 8x8 take the SIMD path */

static uint32_t ef_ld32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4); /* one LDR: the M4 loads unaligned words */
    return v;
}

/* SXTB16 of v rotated right by 8 (bytes 1 and 3): one instruction; ACLE has no rotated form. */
static int32_t ef_sxtb16_ror8(uint32_t v) {
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

static int32_t ef_pack16(int32_t lo, int32_t hi) {
    return (int32_t)(((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16));
}

/* ef_requantize for a right shift (-31 <= shift <= 0; multiplier >= 0, as every Q31 multiplier here), inlined.
 * The result is clamped to 10 bits before the zero point is added (beyond that every int8 saturates). */
static inline __attribute__((always_inline)) int8_t ef_requant_rshift(int32_t acc, int32_t m, int32_t s,
                                                                       const ef_quant *q) {
    const int32_t mask = (int32_t)((1u << -s) - 1u);
    int32_t v = (int32_t)(((int64_t)acc * m + ((int64_t)1 << 30)) >> 31); /* ef_srdhm */
    v = (v >> -s) + ((v & mask) > (mask >> 1) + (v < 0));                 /* ef_rdbpot */
    v = __ssat(v, 10) + q->out_zp;
    return (int8_t)(v < q->act_min ? q->act_min : (v > q->act_max ? q->act_max : v));
}

/* 1 when every output channel's requantization is a right shift with double rounding (ef_requant_rshift). */
static int32_t ef_rshift_only(const int32_t *mult, const int32_t *shift, int32_t n, int32_t single_rounding) {
    int32_t i;
    for (i = 0; i < n && !single_rounding; ++i) {
        if (shift[i] > 0 || mult[i] < 0) {
            return 0;
        }
    }
    return !single_rounding;
}

/* Reorders each full group of 4 int16 values (0, 1, 2, 3) -> (0, 2, 1, 3): the lanes SXTB16 gives a
 * word of 4 int8 weights (bytes 0 and 2, then bytes 1 and 3). */
static void ef_reorder(int16_t *col, int32_t n) {
    int32_t k;
    for (k = 0; k + 4 <= n; k += 4) {
        const int16_t t = col[k + 1];
        col[k + 1] = col[k + 2];
        col[k + 2] = t;
    }
}

/* Position of value k in a column reordered by ef_reorder (n4: values in full groups of 4). */
static int32_t ef_reordered(int32_t k, int32_t n4) {
    return k < n4 ? (k & ~3) | ((k & 1) << 1) | ((k >> 1) & 1) : k;
}

/* acc[2j + i] = sum over 4 * n4 values of weight row j (j = 0, 1) times column i (i = 0, 1; one column
 * when c1 is NULL). int8 rows w0, w1 (mask 0), or one packed group w0 whose rows are the bits under
 * `mask` of each byte shifted left by sh0 / sh1 (values scaled by 2**(8 - bits)). Inlined into ef_mac
 * for each case, so that the loop has no branches. */
static inline __attribute__((always_inline)) void ef_mac_loop(const int16_t *c0, const int16_t *c1,
                                                              const int8_t *w0, const int8_t *w1, int32_t n4,
                                                              int32_t sh0, int32_t sh1, uint32_t mask,
                                                              int32_t packed, int32_t two, int32_t *acc) {
    const int16_t *end = c0 + 4 * n4;
    int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
    while (c0 < end) {
        uint32_t u, v;
        int32_t u02, u13, v02, v13, lo, hi;
        if (packed) {
            const uint32_t b = ef_ld32(w0);
            u = (b << sh0) & mask;
            v = (b << sh1) & mask;
        } else {
            u = ef_ld32(w0);
            v = ef_ld32(w1);
            w1 += 4;
        }
        w0 += 4;
        u02 = __sxtb16((int32_t)u);
        u13 = ef_sxtb16_ror8(u);
        v02 = __sxtb16((int32_t)v);
        v13 = ef_sxtb16_ror8(v);
        lo = (int32_t)ef_ld32(c0);
        hi = (int32_t)ef_ld32(c0 + 2);
        c0 += 4;
        a00 = __smlad(u02, lo, a00);
        a00 = __smlad(u13, hi, a00);
        a10 = __smlad(v02, lo, a10);
        a10 = __smlad(v13, hi, a10);
        if (two) {
            lo = (int32_t)ef_ld32(c1);
            hi = (int32_t)ef_ld32(c1 + 2);
            c1 += 4;
            a01 = __smlad(u02, lo, a01);
            a01 = __smlad(u13, hi, a01);
            a11 = __smlad(v02, lo, a11);
            a11 = __smlad(v13, hi, a11);
        }
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

__attribute__((noinline)) static void ef_mac(const int16_t *c0, const int16_t *c1, const int8_t *w0,
                                             const int8_t *w1, int32_t n4, int32_t sh0, int32_t sh1, uint32_t mask,
                                             int32_t *acc) {
    if (mask == 0) {
        if (c1) {
            ef_mac_loop(c0, c1, w0, w1, n4, 0, 0, 0, 0, 1, acc);
        } else {
            ef_mac_loop(c0, c0, w0, w1, n4, 0, 0, 0, 0, 0, acc);
        }
    } else if (c1) {
        ef_mac_loop(c0, c1, w0, w0, n4, sh0, sh1, mask, 1, 1, acc);
    } else {
        ef_mac_loop(c0, c0, w0, w0, n4, sh0, sh1, mask, 1, 0, acc);
    }
}

/* acc[2j + i] = sum over k of weight (m + j, k) times column i at ef_reordered(k) (row m + 1 = rows:
 * row m again; one column when c1 is NULL: acc[1], acc[3] undefined). */
__attribute__((noinline)) static void ef_dot_pair(const int16_t *c0, const int16_t *c1, const int8_t *w,
                                                  int32_t w_bits, int32_t rows, int32_t k_len, int32_t m,
                                                  int32_t *acc) {
    const int32_t n4 = k_len & ~3, per_byte = 8 / w_bits, full = rows - rows % per_byte;
    const int32_t m1 = m + 1 < rows ? m + 1 : m;
    int32_t k, j;
    if (w_bits == 8) {
        ef_mac(c0, c1, w + m * k_len, w + m1 * k_len, n4 / 4, 0, 0, 0, acc);
    } else if (m1 < full && m1 == m + 1) { /* rows m, m + 1 share bytes (m is even) */
        const int32_t sh0 = 8 - w_bits - (m % per_byte) * w_bits;
        const uint32_t mask = ((0xFFu << (8 - w_bits)) & 0xFFu) * 0x01010101u;
        ef_mac(c0, c1, w + (m / per_byte) * k_len, 0, n4 / 4, sh0, sh0 - w_bits, mask, acc);
        for (j = 0; j < 4; ++j) {
            acc[j] >>= 8 - w_bits; /* exact: every product was scaled by 2**(8 - bits) */
        }
    } else { /* the last rows of a packed matrix, not in a group */
        acc[0] = acc[1] = acc[2] = acc[3] = 0;
        for (k = 0; k < n4; ++k) {
            const int32_t p = ef_reordered(k, n4);
            const int32_t wa = ef_weight(w, w_bits, rows, k_len, m, k), wb = ef_weight(w, w_bits, rows, k_len, m1, k);
            acc[0] += wa * c0[p];
            acc[2] += wb * c0[p];
            if (c1) {
                acc[1] += wa * c1[p];
                acc[3] += wb * c1[p];
            }
        }
    }
    for (k = n4; k < k_len; ++k) { /* the tail: K mod 4 values */
        const int32_t wa = w_bits == 8 ? w[m * k_len + k] : ef_weight(w, w_bits, rows, k_len, m, k);
        const int32_t wb = w_bits == 8 ? w[m1 * k_len + k] : ef_weight(w, w_bits, rows, k_len, m1, k);
        acc[0] += wa * c0[k];
        acc[2] += wb * c0[k];
        if (c1) {
            acc[1] += wa * c1[k];
            acc[3] += wb * c1[k];
        }
    }
}

/* im2col: col[k] = x - in_zp (0 on padding) for the taps k = (c, ky, kx) of output pixel (oy, ox), reordered. */
static void ef_im2col(const int8_t *x, const ef_geom *g, int32_t in_zp, int32_t oy, int32_t ox, int16_t *col) {
    const int32_t by = oy * g->stride_h - g->pad_top, bx = ox * g->stride_w - g->pad_left;
    const int32_t plane = g->in_h * g->in_w, taps = g->k_h * g->k_w, dil_w = g->dil_w;
    int32_t c, ky, n, ky0, ky1, kx0, kx1;
    ef_valid_taps(by, g->dil_h, g->k_h, g->in_h, &ky0, &ky1);
    ef_valid_taps(bx, dil_w, g->k_w, g->in_w, &kx0, &kx1);
    if (ky1 - ky0 < g->k_h || kx1 - kx0 < g->k_w) { /* a window over the padding */
        memset(col, 0, (size_t)(g->in_c * taps) * sizeof(int16_t));
    }
    if (taps == 1 && ky1 > ky0 && kx1 > kx0) { /* pointwise: one value per channel */
        const int8_t *xp = x + by * g->in_w + bx;
        for (c = 0; c < g->in_c; ++c, xp += plane) {
            col[c] = (int16_t)(*xp - in_zp);
        }
    } else if (ky1 > ky0 && kx1 > kx0) {
        const int32_t nx = kx1 - kx0, rows = ky1 - ky0, row_step = g->dil_h * g->in_w;
        const int8_t *xr = x + (by + ky0 * g->dil_h) * g->in_w + bx + kx0 * dil_w; /* first valid tap */
        int16_t *o = col + ky0 * g->k_w + kx0;
        for (c = 0; c < g->in_c; ++c, xr += plane - rows * row_step, o += taps - rows * g->k_w) {
            for (ky = 0; ky < rows; ++ky, xr += row_step, o += g->k_w) {
                if (nx == 3 && dil_w == 1) { /* the common 3-wide row */
                    o[0] = (int16_t)(xr[0] - in_zp);
                    o[1] = (int16_t)(xr[1] - in_zp);
                    o[2] = (int16_t)(xr[2] - in_zp);
                } else {
                    for (n = 0; n < nx; ++n) {
                        o[n] = (int16_t)(xr[n * dil_w] - in_zp);
                    }
                }
            }
        }
    }
    ef_reorder(col, g->in_c * taps);
}

/* All output channels (rows of w, w_bits each) of one or two columns (c1 NULL: one), two channels at a
 * time, requantized into y[r * stride + i] for column i; the right-shift requantization inlined when
 * every channel has one. */
__attribute__((noinline)) static void ef_cols(const int16_t *c0, const int16_t *c1, const int8_t *w, int32_t w_bits,
                                              int32_t k_len, int32_t rows, int8_t *y, int32_t stride,
                                              const ef_quant *q, const int32_t *bias, const int32_t *mult,
                                              const int32_t *shift, int32_t per_channel, int32_t single_rounding) {
    const int32_t rshift = ef_rshift_only(mult, shift, per_channel ? rows : 1, single_rounding), cols = c1 ? 2 : 1;
    const int32_t n4 = k_len & ~3;
    int32_t acc[4];
    int32_t m, j, i, k;
    for (m = 0; m < rows; m += 2) {
        if (w_bits == 8 && c1) { /* the common case without ef_dot_pair's generality */
            const int8_t *w0 = w + m * k_len, *w1 = m + 1 < rows ? w0 + k_len : w0;
            ef_mac(c0, c1, w0, w1, n4 / 4, 0, 0, 0, acc);
            for (k = n4; k < k_len; ++k) {
                acc[0] += w0[k] * c0[k];
                acc[1] += w0[k] * c1[k];
                acc[2] += w1[k] * c0[k];
                acc[3] += w1[k] * c1[k];
            }
        } else {
            ef_dot_pair(c0, c1, w, w_bits, rows, k_len, m, acc);
        }
        for (j = 0; j < 2 && m + j < rows; ++j) {
            const int32_t r = m + j, b = bias ? bias[r] : 0;
            const int32_t rm = per_channel ? mult[r] : mult[0], rs = per_channel ? shift[r] : shift[0];
            if (rshift) {
                y[r * stride] = ef_requant_rshift(acc[2 * j] + b, rm, rs, q);
                if (c1) {
                    y[r * stride + 1] = ef_requant_rshift(acc[2 * j + 1] + b, rm, rs, q);
                }
            } else {
                for (i = 0; i < cols; ++i) {
                    y[r * stride + i] = ef_requantize(acc[2 * j + i] + b, rm, rs, single_rounding, q);
                }
            }
        }
    }
}

/* groups == 1: two output pixels at a time as im2col columns, two output channels at a time. */
static void ef_conv_im2col(const int8_t *x, int8_t *y, const ef_geom *g, const ef_quant *q, const int8_t *w,
                           int32_t w_bits, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                           int32_t per_channel, int32_t single_rounding) {
    const int32_t k_len = g->in_c * g->k_h * g->k_w, pixels = g->out_h * g->out_w;
    int16_t col[2 * k_len];
    int32_t p;
    for (p = 0; p < pixels; p += 2) {
        const int32_t two = p + 1 < pixels;
        ef_im2col(x, g, q->in_zp, p / g->out_w, p % g->out_w, col);
        if (two) {
            ef_im2col(x, g, q->in_zp, (p + 1) / g->out_w, (p + 1) % g->out_w, col + k_len);
        }
        ef_cols(col, two ? col + k_len : 0, w, w_bits, k_len, g->out_c, y + p, pixels, q, bias, mult, shift,
                per_channel, single_rounding);
    }
}

/* Channel xc as a zero-padded int16 plane of x - in_zp: ph x pw values, plus one zero (read by the odd
 * last tap pair). */
static void ef_dw_plane(const int8_t *xc, const ef_geom *g, int32_t in_zp, int32_t ph, int32_t pw, int16_t *plane) {
    const int32_t px0 = g->pad_left, px1 = g->pad_left + g->in_w < pw ? g->pad_left + g->in_w : pw;
    int32_t py, px;
    memset(plane, 0, (size_t)(ph * pw + 1) * sizeof(int16_t));
    for (py = 0; py < ph; ++py) {
        const int32_t iy = py - g->pad_top;
        if (iy >= 0 && iy < g->in_h) {
            const int8_t *xr = xc + iy * g->in_w - g->pad_left;
            for (px = px0; px < px1; ++px) {
                plane[py * pw + px] = (int16_t)(xr[px] - in_zp);
            }
        }
    }
}

/* Depthwise (one input channel per group): each input channel as a zero-padded int16 plane, then per
 * output pixel and kernel row, pairs of taps by SMLAD (an odd last tap paired with a zero weight); 3x3
 * kernels without horizontal dilation keep their six weight pairs in registers. */
static void ef_conv_depthwise(const int8_t *x, int8_t *y, const ef_geom *g, const ef_quant *q, const int8_t *w,
                              int32_t w_bits, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                              int32_t per_channel, int32_t single_rounding) {
    const int32_t mg = g->out_c / g->in_c, taps = g->k_h * g->k_w, pairs = (g->k_w + 1) / 2;
    const int32_t ph = (g->out_h - 1) * g->stride_h + (g->k_h - 1) * g->dil_h + 1;
    const int32_t pw = (g->out_w - 1) * g->stride_w + (g->k_w - 1) * g->dil_w + 1;
    const int32_t dw = g->dil_w, row = g->dil_h * pw;
    const int32_t rshift = ef_rshift_only(mult, shift, per_channel ? g->out_c : 1, single_rounding);
    int16_t plane[ph * pw + 1];
    int32_t wp[EF_DW_MAX_TAPS];
    int32_t m, ky, j, oy, ox;
    for (m = 0; m < g->out_c; ++m) {
        const int32_t b = bias ? bias[m] : 0;
        const int32_t rm = per_channel ? mult[m] : mult[0], rs = per_channel ? shift[m] : shift[0];
        int8_t *ym = y + m * g->out_h * g->out_w;
        if (m % mg == 0) {
            ef_dw_plane(x + (m / mg) * g->in_h * g->in_w, g, q->in_zp, ph, pw, plane);
        }
        for (ky = 0; ky < g->k_h; ++ky) { /* (w[ky][2j], w[ky][2j + 1]) pairs, 0 past the row */
            for (j = 0; j < pairs; ++j) {
                const int32_t k = ky * g->k_w + 2 * j;
                wp[ky * pairs + j] = ef_pack16(ef_weight(w, w_bits, g->out_c, taps, m, k),
                                               2 * j + 1 < g->k_w ? ef_weight(w, w_bits, g->out_c, taps, m, k + 1) : 0);
            }
        }
        for (oy = 0; oy < g->out_h; ++oy) {
            const int16_t *r = plane + oy * g->stride_h * pw;
            if (g->k_h == 3 && g->k_w == 3 && dw == 1) {
                const int32_t a0 = wp[0], a1 = wp[1], a2 = wp[2], a3 = wp[3], a4 = wp[4], a5 = wp[5];
                for (ox = 0; ox < g->out_w; ++ox, r += g->stride_w) {
                    int32_t acc = __smlad(a0, (int32_t)ef_ld32(r), b);
                    acc = __smlad(a1, (int32_t)ef_ld32(r + 2), acc);
                    acc = __smlad(a2, (int32_t)ef_ld32(r + row), acc);
                    acc = __smlad(a3, (int32_t)ef_ld32(r + row + 2), acc);
                    acc = __smlad(a4, (int32_t)ef_ld32(r + 2 * row), acc);
                    acc = __smlad(a5, (int32_t)ef_ld32(r + 2 * row + 2), acc);
                    ym[oy * g->out_w + ox] = rshift ? ef_requant_rshift(acc, rm, rs, q)
                                                : ef_requantize(acc, rm, rs, single_rounding, q);
                }
                continue;
            }
            for (ox = 0; ox < g->out_w; ++ox, r += g->stride_w) {
                int32_t acc = b;
                for (ky = 0; ky < g->k_h; ++ky) {
                    const int16_t *rk = r + ky * row;
                    for (j = 0; j < pairs; ++j) {
                        const int32_t odd_end = 2 * j + 1 == g->k_w; /* the zero-weight half */
                        const int32_t v = dw == 1 ? (int32_t)ef_ld32(rk + 2 * j)
                                                  : ef_pack16(rk[2 * j * dw], odd_end ? 0 : rk[(2 * j + 1) * dw]);
                        acc = __smlad(wp[ky * pairs + j], v, acc);
                    }
                }
                ym[oy * g->out_w + ox] = rshift ? ef_requant_rshift(acc, rm, rs, q)
                                                : ef_requantize(acc, rm, rs, single_rounding, q);
            }
        }
    }
}

void ef_conv(const int8_t *x, int8_t *y, const ef_geom *g, const ef_quant *q, const int8_t *w, int32_t w_bits,
             const int32_t *bias, const int32_t *mult, const int32_t *shift, int32_t per_channel,
             int32_t single_rounding) {
    if (g->groups == 1) {
        ef_conv_im2col(x, y, g, q, w, w_bits, bias, mult, shift, per_channel, single_rounding);
    } else if (g->groups == g->in_c && g->k_h * g->k_w <= EF_DW_MAX_TAPS) {
        ef_conv_depthwise(x, y, g, q, w, w_bits, bias, mult, shift, per_channel, single_rounding);
    } else {
        ef_conv_portable(x, y, g, q, w, w_bits, bias, mult, shift, per_channel, single_rounding);
    }
}

void ef_fully_connected(const int8_t *x, int8_t *y, int32_t rows, int32_t k, int32_t n, const ef_quant *q,
                        const int8_t *w, int32_t w_bits, const int32_t *bias, const int32_t *mult,
                        const int32_t *shift, int32_t per_channel, int32_t single_rounding) {
    int16_t col[k];
    int32_t r, i;
    for (r = 0; r < rows; ++r) {
        for (i = 0; i < k; ++i) {
            col[i] = (int16_t)(x[r * k + i] - q->in_zp);
        }
        ef_reorder(col, k);
        ef_cols(col, 0, w, w_bits, k, n, y + r * n, 1, q, bias, mult, shift, per_channel, single_rounding);
    }
}
#else
void ef_conv(const int8_t *x, int8_t *y, const ef_geom *g, const ef_quant *q, const int8_t *w, int32_t w_bits,
             const int32_t *bias, const int32_t *mult, const int32_t *shift, int32_t per_channel,
             int32_t single_rounding) {
    ef_conv_portable(x, y, g, q, w, w_bits, bias, mult, shift, per_channel, single_rounding);
}

void ef_fully_connected(const int8_t *x, int8_t *y, int32_t rows, int32_t k, int32_t n, const ef_quant *q,
                        const int8_t *w, int32_t w_bits, const int32_t *bias, const int32_t *mult,
                        const int32_t *shift, int32_t per_channel, int32_t single_rounding) {
    int8_t row[w_bits == 8 ? 1 : k]; /* packed weights: one output's, unpacked */
    int32_t r, j, i;
    for (r = 0; r < rows; ++r) {
        const int8_t *xr = x + r * k;
        for (j = 0; j < n; ++j) {
            const int8_t *wj = w + j * k; /* weights stored (N, K) */
            int32_t acc = bias ? bias[j] : 0;
            if (w_bits != 8) {
                ef_unpack_row(w, w_bits, n, k, j, row);
                wj = row;
            }
            for (i = 0; i < k; ++i) {
                acc += ((int32_t)xr[i] - q->in_zp) * (int32_t)wj[i];
            }
            y[r * n + j] = ef_requantize(acc, per_channel ? mult[j] : mult[0], per_channel ? shift[j] : shift[0],
                                         single_rounding, q);
        }
    }
}
#endif

void ef_add(const int8_t *a, const int8_t *b, int8_t *y, int32_t size, const int32_t *rq, const int32_t *zp,
            int32_t act_min, int32_t act_max) {
    int32_t i;
    for (i = 0; i < size; ++i) {
        const int32_t xa = ((int32_t)a[i] - zp[0]) * (1 << 20);
        const int32_t xb = ((int32_t)b[i] - zp[1]) * (1 << 20);
        const int32_t sa = ef_mbqm(xa, rq[0], rq[1]);
        const int32_t sb = ef_mbqm(xb, rq[2], rq[3]);
        y[i] = (int8_t)ef_clip((int64_t)zp[2] + ef_mbqm(sa + sb, rq[4], rq[5]), act_min,
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
