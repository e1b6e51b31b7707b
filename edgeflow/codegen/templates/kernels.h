/* edgeflow portable int8 reference kernels (generated project; do not edit).
 *
 * Tensors are row-major NCHW without the batch dimension (1-D tensors: H = 1). Requantization
 * follows TFLite Micro / CMSIS-NN ("tflm" mode of edgeflow.runtime.quant): a Q31 multiplier and a
 * shift, double rounding (saturating rounding doubling high multiply, then rounding divide by a
 * power of two). Relies on arithmetic right shifts of negative integers, as gcc and clang do.
 */
#ifndef EF_KERNELS_H
#define EF_KERNELS_H

#include <stdint.h>

/* One convolution (groups, depthwise, stride, dilation, zero padding) or pooling window geometry. */
typedef struct {
    int32_t in_c, in_h, in_w;
    int32_t out_c, out_h, out_w;
    int32_t k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
    int32_t groups;
} ef_geom;

/* Output quantization: zero point and activation clamp [act_min, act_max]. */
typedef struct {
    int32_t in_zp, out_zp, act_min, act_max;
} ef_quant;

int32_t ef_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);

/* Weights as an (M, K) matrix, w_bits (8, 4 or 2) bits each: 8 -> int8 row-major; 4 or 2 -> two or four
 * values a byte (two's complement, row m + j of a group of 8 / w_bits rows in bits j * w_bits up of
 * byte (m / group) * K + k), the last M mod group rows one flat stream (value i in bits (i mod group)
 * * w_bits of byte i / group); ceil(M * K * w_bits / 8) bytes in all. */

/* Weights (M, C/groups, KH, KW) as above (K = C/groups * KH * KW); single_rounding: LiteRT's
 * FULLY_CONNECTED rounding (once, half away). Cortex-M4 (__ARM_FEATURE_DSP): SIMD kernels for groups == 1
 * and depthwise convolutions. */
void ef_conv(const int8_t *x, int8_t *y, const ef_geom *g, const ef_quant *q, const int8_t *w, int32_t w_bits,
             const int32_t *bias, const int32_t *mult, const int32_t *shift, int32_t per_channel,
             int32_t single_rounding);
/* Weights stored (N, K) as above. */
void ef_fully_connected(const int8_t *x, int8_t *y, int32_t rows, int32_t k, int32_t n, const ef_quant *q,
                        const int8_t *w, int32_t w_bits, const int32_t *bias, const int32_t *mult, const int32_t *shift,
                        int32_t per_channel, int32_t single_rounding);
/* rq: {m_a, shift_a, m_b, shift_b, m_out, shift_out}, zp: {zp_a, zp_b, zp_out}. */
void ef_add(const int8_t *a, const int8_t *b, int8_t *y, int32_t size, const int32_t *rq, const int32_t *zp,
            int32_t act_min, int32_t act_max);
/* t: {d0..d3, a0..a3, b0..b3}: y (dims d, row-major)[i0][i1][i2][i3] = a[sum i_k a_k] * b[sum i_k b_k]
 * (stride 0: a broadcast dimension), requantized: q = {zp_a, zp_y, act_min, act_max}, rq = {multiplier, shift}. */
void ef_mul(const int8_t *a, const int8_t *b, int8_t *y, const int32_t *t, const ef_quant *q, int32_t b_zp,
            const int32_t *rq);
void ef_max_pool(const int8_t *x, int8_t *y, const ef_geom *g);
/* rq: {multiplier, shift} applied after the rounded mean (NULL: same input and output scale). */
void ef_avg_pool(const int8_t *x, int8_t *y, const ef_geom *g, const ef_quant *q, int32_t count_include_pad,
                 const int32_t *rq);
void ef_global_avg_pool(const int8_t *x, int8_t *y, int32_t channels, int32_t size, const ef_quant *q,
                        const int32_t *rq);
void ef_clamp(const int8_t *x, int8_t *y, int32_t size, int32_t lo, int32_t hi);
/* y = clamp(out_zp + MultiplyByQuantizedMultiplier(x - in_zp, rq[0], rq[1])). */
void ef_rescale(const int8_t *x, int8_t *y, int32_t size, const ef_quant *q, const int32_t *rq);
/* TFLite's int8 SOFTMAX (gemmlowp fixed point, output scale 1/256, zero point -128) over n values
 * `inner` apart, for each of outer x inner rows. */
void ef_int_softmax(const int8_t *x, int8_t *y, int32_t outer, int32_t n, int32_t inner, int32_t mult,
                    int32_t left_shift, int32_t diff_min);
/* t: {d0, d1, d2, d3, s0, s1, s2, s3}: y (dims d, row-major) [i0][i1][i2][i3] = x[sum i_k * s_k]. */
void ef_transpose(const int8_t *x, int8_t *y, const int32_t *t);
/* p: {x dims d0..d3, y dims d0..d3, leading pads b0..b3}: y filled with `value`, x copied in at b. */
void ef_pad(const int8_t *x, int8_t *y, const int32_t *p, int32_t value);
/* y = table[x + 128]: a 256-entry int8 table activation (logistic, tanh). */
void ef_lut(const int8_t *x, int8_t *y, int32_t size, const int8_t *table);
/* TFLite's int8 HARD_SWISH (reference_ops::HardSwish, 16-bit fixed point). hs: {zp_x, zp_y, output Q15
 * multiplier, output exponent (<= 0), relu-ish Q15 multiplier, relu-ish exponent}. */
void ef_hard_swish(const int8_t *x, int8_t *y, int32_t size, const int32_t *hs);
/* Copies `inner` elements of x per `outer` block into y at a stride of `out_inner`; rq (NULL: copy)
 * rescales them. */
void ef_concat_part(const int8_t *x, int8_t *y, int32_t outer, int32_t inner, int32_t out_inner,
                    const ef_quant *q, const int32_t *rq);

#endif
