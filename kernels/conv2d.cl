/* 2-D convolution (ONNX Conv) over NHWC4 tensors.
 *
 * Build options (all optional):
 *   -DFILTER_H=<kh> -DFILTER_W=<kw>  filter size known at compile time, so the
 *                                    tap loops unroll (used for 3x3)
 *   -DCONV_1X1                       1x1 filter without padding: no tap loops and
 *                                    no bounds checks (stride still applies)
 *   -DACTIVATION=ACT_*               fused activation (common.h)
 *
 * Kernels:
 *   conv2d            any group count. Filter layout "blocked" (ops/conv.py):
 *                     data_t filter[OC4][KH][KW][SPAN*4][4]: for output block ob
 *                     and tap (kh, kw), 4 output-channel lanes per input channel
 *                     of the SPAN input blocks starting at in_block0(ob).
 *   depthwise_conv2d  group == C_in == C_out. Filter layout data_t
 *                     filter[C4][KH][KW][4]: one vector of 4 channels per tap.
 *
 * Both compute 4 horizontally adjacent outputs of one float4 channel block per
 * work-item (filter values are loaded once for the 4): global size
 * (OC4, ceil(OW / 4), N * OH). bias is data_t[OC4 * 4] with zero padding lanes. */
#include "common.h"
#include "blocked_filter.h"

#ifdef FILTER_H
#define KH FILTER_H
#define KW FILTER_W
#else
#define KH filter_h
#define KW filter_w
#endif

/* Reads one float4 input block, or zeros when column iw lies in the padding. */
inline float4 load_column(__global const data_t *row, int iw, int in_w, int in_c4) {
  return (iw >= 0 && iw < in_w) ? LOAD4(0, row + iw * in_c4 * 4) : (float4)(0.0f);
}


__kernel void conv2d(__global data_t *out, __global const data_t *in,
                     __global const data_t *filter, __global const data_t *bias,
                     int in_h, int in_w, int in_c4, int out_h, int out_w,
                     int out_c, int filter_h, int filter_w, int stride_h,
                     int stride_w, int pad_top, int pad_left, int dilation_h,
                     int dilation_w, int group_in_c, int group_out_c,
                     int span, float act_alpha, float act_beta) {
  const int ob = get_global_id(0);
  const int ow0 = get_global_id(1) * 4;
  const int nh = get_global_id(2);
  const int n = nh / out_h;
  const int oh = nh - n * out_h;
  const int out_c4 = channel_blocks(out_c);

  /* The input blocks this output block reads: those of the group of its first
   * channel onwards, clamped so that all `span` blocks exist (ops/conv.py packs
   * the filter with the same rule). */
  const int first_group = (ob * 4) / group_out_c;
  const int in_block0 = min((first_group * group_in_c) >> 2, in_c4 - span);

  const float4 b = LOAD4(ob, bias);
  float4 acc0 = b, acc1 = b, acc2 = b, acc3 = b;
  __global const data_t *w = filter + ob * KH * KW * span * 16;

#ifdef CONV_1X1
  /* Every tap is inside the input: (out - 1) * stride <= in - 1 without padding. */
  __global const data_t *row =
      in + ((n * in_h + oh * stride_h) * in_w) * in_c4 * 4 + in_block0 * 4;
  const int step = stride_w * in_c4 * 4;
  __global const data_t *x0 = row + ow0 * step;
  const int valid = out_w - ow0;
  for (int ib = 0; ib < span; ++ib) {
    __global const data_t *wb = w + ib * 16;
    acc0 = dot_lanes(acc0, LOAD4(ib, x0), wb);
    if (valid > 1) acc1 = dot_lanes(acc1, LOAD4(ib, x0 + step), wb);
    if (valid > 2) acc2 = dot_lanes(acc2, LOAD4(ib, x0 + 2 * step), wb);
    if (valid > 3) acc3 = dot_lanes(acc3, LOAD4(ib, x0 + 3 * step), wb);
  }
#else
  const int ih0 = oh * stride_h - pad_top;
  const int iw0 = ow0 * stride_w - pad_left;
  for (int kh = 0; kh < KH; ++kh) {
    const int ih = ih0 + kh * dilation_h;
    if (ih < 0 || ih >= in_h) continue;
    __global const data_t *row = in + ((n * in_h + ih) * in_w) * in_c4 * 4 + in_block0 * 4;
    for (int kw = 0; kw < KW; ++kw) {
      const int iw = iw0 + kw * dilation_w;
      __global const data_t *wt = w + (kh * KW + kw) * span * 16;
      for (int ib = 0; ib < span; ++ib) {
        __global const data_t *wb = wt + ib * 16;
        __global const data_t *rb = row + ib * 4;
        acc0 = dot_lanes(acc0, load_column(rb, iw, in_w, in_c4), wb);
        acc1 = dot_lanes(acc1, load_column(rb, iw + stride_w, in_w, in_c4), wb);
        acc2 = dot_lanes(acc2, load_column(rb, iw + 2 * stride_w, in_w, in_c4), wb);
        acc3 = dot_lanes(acc3, load_column(rb, iw + 3 * stride_w, in_w, in_c4), wb);
      }
    }
  }
#endif

  const int base = (nh * out_w + ow0) * out_c4 + ob;
  store_block(out, acc0, base, ob, out_c, act_alpha, act_beta);
  if (ow0 + 1 < out_w) store_block(out, acc1, base + out_c4, ob, out_c, act_alpha, act_beta);
  if (ow0 + 2 < out_w) store_block(out, acc2, base + 2 * out_c4, ob, out_c, act_alpha, act_beta);
  if (ow0 + 3 < out_w) store_block(out, acc3, base + 3 * out_c4, ob, out_c, act_alpha, act_beta);
}

__kernel void depthwise_conv2d(__global data_t *out, __global const data_t *in,
                               __global const data_t *filter,
                               __global const data_t *bias, int in_h, int in_w,
                               int out_h, int out_w, int channels, int filter_h,
                               int filter_w, int stride_h, int stride_w,
                               int pad_top, int pad_left, int dilation_h,
                               int dilation_w, float act_alpha, float act_beta) {
  const int cb = get_global_id(0);
  const int ow0 = get_global_id(1) * 4;
  const int nh = get_global_id(2);
  const int n = nh / out_h;
  const int oh = nh - n * out_h;
  const int c4 = channel_blocks(channels);

  const float4 b = LOAD4(cb, bias);
  float4 acc0 = b, acc1 = b, acc2 = b, acc3 = b;
  __global const data_t *w = filter + cb * KH * KW * 4;
  const int ih0 = oh * stride_h - pad_top;
  const int iw0 = ow0 * stride_w - pad_left;
  for (int kh = 0; kh < KH; ++kh) {
    const int ih = ih0 + kh * dilation_h;
    if (ih < 0 || ih >= in_h) continue;
    __global const data_t *row = in + ((n * in_h + ih) * in_w) * c4 * 4 + cb * 4;
    for (int kw = 0; kw < KW; ++kw) {
      const int iw = iw0 + kw * dilation_w;
      const float4 wt = LOAD4(kh * KW + kw, w);
      acc0 += load_column(row, iw, in_w, c4) * wt;
      acc1 += load_column(row, iw + stride_w, in_w, c4) * wt;
      acc2 += load_column(row, iw + 2 * stride_w, in_w, c4) * wt;
      acc3 += load_column(row, iw + 3 * stride_w, in_w, c4) * wt;
    }
  }

  const int base = (nh * out_w + ow0) * c4 + cb;
  store_block(out, acc0, base, cb, channels, act_alpha, act_beta);
  if (ow0 + 1 < out_w) store_block(out, acc1, base + c4, cb, channels, act_alpha, act_beta);
  if (ow0 + 2 < out_w) store_block(out, acc2, base + 2 * c4, cb, channels, act_alpha, act_beta);
  if (ow0 + 3 < out_w) store_block(out, acc3, base + 3 * c4, cb, channels, act_alpha, act_beta);
}
