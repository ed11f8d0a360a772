/* Resize / Upsample along the stored H and W axes (ops/resize.py).
 *
 * Build options: -DRESIZE_MODE=RESIZE_NEAREST|RESIZE_LINEAR
 *
 * Every ONNX coordinate_transformation_mode is, per axis and for fixed sizes,
 *   x_original = (x_resized + pre) * mul / div + post
 * so the host resolves the mode into these four floats per axis (mul / div keep
 * align_corners' (in-1)/(out-1) and sizes' in/out ratios exact where they are).
 * Nearest rounding per axis (NEAREST_*) is an argument, not a variant.
 * One work-item writes one float4 of the output: global size (C4, W, N*H). */
#include "common.h"

#define RESIZE_NEAREST 0
#define RESIZE_LINEAR 1

#define NEAREST_ROUND_PREFER_FLOOR 0
#define NEAREST_ROUND_PREFER_CEIL 1
#define NEAREST_FLOOR 2
#define NEAREST_CEIL 3

#ifndef RESIZE_MODE
#error "resize.cl needs -DRESIZE_MODE"
#endif

inline float original_coord(int x, float pre, float mul, float div, float post) {
  return ((float)x + pre) * mul / div + post;
}

/* a + (b - a) * t spelled out: OpenCL leaves mix()'s precision to the vendor. */
inline float4 lerp4(float4 a, float4 b, float t) { return a + (b - a) * t; }

inline int nearest_index(float x, int rounding, int dim) {
  float r;
  if (rounding == NEAREST_ROUND_PREFER_FLOOR) r = ceil(x - 0.5f); /* ties go down */
  else if (rounding == NEAREST_ROUND_PREFER_CEIL) r = floor(x + 0.5f);
  else if (rounding == NEAREST_FLOOR) r = floor(x);
  else r = ceil(x);
  return clamp((int)r, 0, dim - 1);
}

__kernel void resize(__global float4 *out, __global const float4 *in, int out_h,
                     int out_w, int channels, int in_h, int in_w, float h_pre,
                     float h_mul, float h_div, float h_post, float w_pre,
                     float w_mul, float w_div, float w_post, int h_round,
                     int w_round) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int n = get_global_id(2) / out_h;
  const int h = get_global_id(2) - n * out_h;
  const int blocks = channel_blocks(channels);
  const float y = original_coord(h, h_pre, h_mul, h_div, h_post);
  const float x = original_coord(w, w_pre, w_mul, w_div, w_post);
  __global const float4 *plane = in + n * in_h * in_w * blocks + c4;
#if RESIZE_MODE == RESIZE_NEAREST
  const int yi = nearest_index(y, h_round, in_h);
  const int xi = nearest_index(x, w_round, in_w);
  float4 v = plane[(yi * in_w + xi) * blocks];
#elif RESIZE_MODE == RESIZE_LINEAR
  /* Clamping the coordinate equals ONNX's edge padding of the neighbours. */
  const float yc = clamp(y, 0.0f, (float)(in_h - 1));
  const float xc = clamp(x, 0.0f, (float)(in_w - 1));
  const int y0 = (int)floor(yc), x0 = (int)floor(xc);
  const int y1 = min(y0 + 1, in_h - 1), x1 = min(x0 + 1, in_w - 1);
  const float fy = yc - (float)y0, fx = xc - (float)x0;
  const float4 top = lerp4(plane[(y0 * in_w + x0) * blocks], plane[(y0 * in_w + x1) * blocks], fx);
  const float4 bottom = lerp4(plane[(y1 * in_w + x0) * blocks], plane[(y1 * in_w + x1) * blocks], fx);
  float4 v = lerp4(top, bottom, fy);
#else
#error "unknown RESIZE_MODE"
#endif
  out[get_global_id(2) * out_w * blocks + w * blocks + c4] = zero_padding_lanes(v, c4, channels);
}
