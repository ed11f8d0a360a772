/* Numerically stable softmax (or log-softmax with -DLOG_SOFTMAX) over one axis.
 *
 * softmax_channel: axis is the channel axis; one work-item per (n, h, w) pixel
 *   walks its C4 blocks. global size N*H*W.
 * softmax_axis: axis is N, H or W. In float4 units the tensor is
 *   [outer][axis_len][inner]; each work-item owns one (outer, inner) float4 lane
 *   group, so 4 channels are reduced independently. global size (inner, outer).
 *
 * in and out are data_t (common.h: half with -DSTORAGE_HALF), indexed here in whole
 * vectors of 4; the arithmetic is float either way. */
#include "common.h"

inline float max4(float4 v) { return fmax(fmax(v.x, v.y), fmax(v.z, v.w)); }
inline float sum4(float4 v) { return (v.x + v.y) + (v.z + v.w); }

/* Padding lanes of the last block: -inf so they never win the max. */
inline float4 mask_padding_neg_inf(float4 v, int c4, int channels) {
  const int valid = channels - (c4 << 2);
  if (valid >= 4) return v;
  return (float4)(v.x, valid > 1 ? v.y : -INFINITY, valid > 2 ? v.z : -INFINITY, -INFINITY);
}

inline float4 softmax_value(float4 x, float4 max_value, float4 sum) {
#ifdef LOG_SOFTMAX
  return x - max_value - log(sum);
#else
  return exp(x - max_value) / sum;
#endif
}

__kernel void softmax_channel(__global data_t *out, __global const data_t *in,
                              int channels) {
  const int blocks = channel_blocks(channels);
  const int base = get_global_id(0) * blocks;
  float m = -INFINITY;
  for (int c4 = 0; c4 < blocks; ++c4)
    m = fmax(m, max4(mask_padding_neg_inf(LOAD4(base + c4, in), c4, channels)));
  float s = 0.0f;
  for (int c4 = 0; c4 < blocks; ++c4)  /* exp(-inf - m) = 0 for padding lanes */
    s += sum4(exp(mask_padding_neg_inf(LOAD4(base + c4, in), c4, channels) - m));
  for (int c4 = 0; c4 < blocks; ++c4) {
    const float4 y = softmax_value(LOAD4(base + c4, in), (float4)(m), (float4)(s));
    STORE4(zero_padding_lanes(y, c4, channels), base + c4, out);
  }
}

__kernel void softmax_axis(__global data_t *out, __global const data_t *in,
                           int axis_len, int channels) {
  const int inner_index = get_global_id(0);
  const int inner = get_global_size(0);
  const int base = get_global_id(1) * axis_len * inner + inner_index;
  float4 m = (float4)(-INFINITY);
  for (int i = 0; i < axis_len; ++i) m = fmax(m, LOAD4(base + i * inner, in));
  float4 s = (float4)(0.0f);
  for (int i = 0; i < axis_len; ++i) s += exp(LOAD4(base + i * inner, in) - m);
  const int c4 = inner_index % channel_blocks(channels);
  for (int i = 0; i < axis_len; ++i) {
    const float4 y = softmax_value(LOAD4(base + i * inner, in), m, s);
    STORE4(zero_padding_lanes(y, c4, channels), base + i * inner, out);
  }
}
