/* Unary activations and PRelu on NHWC4 tensors.
 *
 * Kernel `activation`: -DACTIVATION=ACT_* (common.h), global size = number of
 * float4 blocks of the tensor. Kernel `prelu` (only with -DSLOPE_MODE=LOAD_*): the
 * slope is broadcast to the input like an eltwise operand; global size (C4, W, N*H). */
#include "common.h"

__kernel void activation(__global data_t *out, __global const data_t *in,
                         int channels, float act_alpha, float act_beta) {
  const int i = get_global_id(0);
  const int c4 = i % channel_blocks(channels);
  const float4 x = LOAD4(i, in);
  STORE4(zero_padding_lanes(apply_activation(x, act_alpha, act_beta), c4, channels), i, out);
}

#ifdef SLOPE_MODE
__kernel void prelu(__global data_t *out, __global const data_t *in,
                    __global const data_t *slope, int height, int width,
                    int channels, int s_n, int s_c, int s_h, int s_w) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int nh = get_global_id(2);
  const int n = nh / height;
  const int h = nh - n * height;
  const int index = (nh * width + w) * channel_blocks(channels) + c4;
  const float4 x = LOAD4(index, in);
  const float4 s = load_operand(slope, n * s_n + h * s_h + w * s_w, c4, channels, s_c, SLOPE_MODE);
  STORE4(zero_padding_lanes(select(x * s, x, x >= 0.0f), c4, channels), index, out);
}
#endif
