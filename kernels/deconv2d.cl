/* 2-D transposed convolution (ONNX ConvTranspose) over NHWC4 tensors.
 *
 * Build options: -DACTIVATION=ACT_* (optional fused activation, common.h).
 *
 * Gather form: output pixel (oh, ow) receives input pixel (ih, iw) through tap
 * (kh, kw) when oh + pad_top - kh * dilation_h == ih * stride_h (same along w).
 * The filter is packed exactly like conv2d's "blocked" layout (ops/conv.py,
 * pack_blocked_filter) after ops/deconv.py regroups ConvTranspose weights
 * [C_in][C_out/group][KH][KW] into Conv order [C_out][C_in/group][KH][KW].
 *
 * One work-item computes 4 horizontally adjacent outputs of one float4 output
 * channel block: global size (OC4, ceil(OW / 4), N * OH). bias is data_t[OC4 * 4];
 * tensors, filter and bias are data_t (common.h: half with -DSTORAGE_HALF). */
#include "common.h"
#include "blocked_filter.h"

/* The input column feeding output column offset t (= ow + pad_left - kw * dilation_w),
 * or zeros when no input column lands there. */
inline float4 load_source_column(__global const data_t *row, int t, int stride_w,
                                 int in_w, int in_c4) {
  if (t < 0) return (float4)(0.0f);
  const int iw = t / stride_w;
  if (iw * stride_w != t || iw >= in_w) return (float4)(0.0f);
  return LOAD4(0, row + iw * in_c4 * 4);
}


__kernel void deconv2d(__global data_t *out, __global const data_t *in,
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
  const int first_group = (ob * 4) / group_out_c;
  const int in_block0 = min((first_group * group_in_c) >> 2, in_c4 - span);

  const float4 b = LOAD4(ob, bias);
  float4 acc0 = b, acc1 = b, acc2 = b, acc3 = b;
  __global const data_t *w = filter + ob * filter_h * filter_w * span * 16;
  for (int kh = 0; kh < filter_h; ++kh) {
    const int th = oh + pad_top - kh * dilation_h;
    if (th < 0) break; /* th only decreases with kh */
    const int ih = th / stride_h;
    if (ih * stride_h != th || ih >= in_h) continue;
    __global const data_t *row = in + ((n * in_h + ih) * in_w) * in_c4 * 4 + in_block0 * 4;
    for (int kw = 0; kw < filter_w; ++kw) {
      const int t0 = ow0 + pad_left - kw * dilation_w;
      __global const data_t *wt = w + (kh * filter_w + kw) * span * 16;
      for (int ib = 0; ib < span; ++ib) {
        __global const data_t *wb = wt + ib * 16;
        __global const data_t *rb = row + ib * 4;
        acc0 = dot_lanes(acc0, load_source_column(rb, t0, stride_w, in_w, in_c4), wb);
        acc1 = dot_lanes(acc1, load_source_column(rb, t0 + 1, stride_w, in_w, in_c4), wb);
        acc2 = dot_lanes(acc2, load_source_column(rb, t0 + 2, stride_w, in_w, in_c4), wb);
        acc3 = dot_lanes(acc3, load_source_column(rb, t0 + 3, stride_w, in_w, in_c4), wb);
      }
    }
  }

  const int base = (nh * out_w + ow0) * out_c4 + ob;
  store_block(out, acc0, base, ob, out_c, act_alpha, act_beta);
  if (ow0 + 1 < out_w) store_block(out, acc1, base + out_c4, ob, out_c, act_alpha, act_beta);
  if (ow0 + 2 < out_w) store_block(out, acc2, base + 2 * out_c4, ob, out_c, act_alpha, act_beta);
  if (ow0 + 3 < out_w) store_block(out, acc3, base + 3 * out_c4, ob, out_c, act_alpha, act_beta);
}
