/* Conversions between user arrays (NCHW or NHWC, plain float whatever the storage) and
 * NHWC4 tensors (data_t): a half model's inputs are rounded, and its outputs widened, here.
 * Rank < 4 arrays use their 4-D NCHW view (docs/memory_layout.md). */
#include "common.h"

/* global size (C4, W, N*H): one float4 channel block per work-item */
__kernel void nchw_to_nhwc4(__global const float *src, __global data_t *dst,
                            int height, int width, int channels) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int nh = get_global_id(2);
  const int n = nh / height;
  const int h = nh - n * height;
  const int c = c4 << 2;
  const int plane = height * width;
  const int base = ((n * channels + c) * height + h) * width + w;
  const float4 v = (float4)(src[base],
                            c + 1 < channels ? src[base + plane] : 0.0f,
                            c + 2 < channels ? src[base + 2 * plane] : 0.0f,
                            c + 3 < channels ? src[base + 3 * plane] : 0.0f);
  STORE4(v, (nh * width + w) * channel_blocks(channels) + c4, dst);
}

/* global size (W, H, N*C): one output element per work-item, consecutive w */
__kernel void nhwc4_to_nchw(__global const data_t *src, __global float *dst,
                            int height, int width, int channels) {
  const int w = get_global_id(0);
  const int h = get_global_id(1);
  const int nc = get_global_id(2);
  const int n = nc / channels;
  const int c = nc - n * channels;
  const int padded = channel_blocks(channels) << 2;
  dst[(nc * height + h) * width + w] = LOAD1(((n * height + h) * width + w) * padded + c, src);
}

/* global size (C4, W, N*H) */
__kernel void nhwc_to_nhwc4(__global const float *src, __global data_t *dst,
                            int height, int width, int channels) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int nh = get_global_id(2);
  const int c = c4 << 2;
  const int base = (nh * width + w) * channels + c;
  const float4 v = (float4)(src[base],
                            c + 1 < channels ? src[base + 1] : 0.0f,
                            c + 2 < channels ? src[base + 2] : 0.0f,
                            c + 3 < channels ? src[base + 3] : 0.0f);
  STORE4(v, (nh * width + w) * channel_blocks(channels) + c4, dst);
}

/* global size (C, W, N*H) */
__kernel void nhwc4_to_nhwc(__global const data_t *src, __global float *dst,
                            int height, int width, int channels) {
  const int c = get_global_id(0);
  const int w = get_global_id(1);
  const int nh = get_global_id(2);
  const int padded = channel_blocks(channels) << 2;
  dst[(nh * width + w) * channels + c] = LOAD1((nh * width + w) * padded + c, src);
}
