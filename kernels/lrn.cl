/* Local response normalization across channels (ONNX LRN):
 *   y[n, c, h, w] = x[n, c, h, w] / (bias + alpha / size * square_sum) ^ beta
 *   square_sum = sum of x[n, i, h, w]^2 for i in [c - floor((size - 1) / 2),
 *                c + ceil((size - 1) / 2)], clamped to [0, C - 1].
 *
 * lrn: one work-item per (channel block, w, n * h); it writes the 4 channels of its
 * block, reading the window's inputs one at a time from the pixel's [C4 * 4] row.
 * global size (C4, W, N * H). */
#include "common.h"

inline float lrn_one(__global const data_t *row, int c, int channels, int lo_off,
                     int hi_off, float alpha_over_size, float beta, float bias) {
  const int lo = max(c - lo_off, 0);
  const int hi = min(c + hi_off, channels - 1);
  float square_sum = 0.0f;
  for (int i = lo; i <= hi; ++i) {
    const float x = LOAD1(i, row);
    square_sum += x * x;
  }
  /* base^-beta as exp2(-beta * log2(base)): PoCL's pow() cost most of an LRN's time; the two agree
   * for base > 0 (bias > 0, as ONNX's default 1). */
  return LOAD1(c, row) * exp2(-beta * log2(bias + alpha_over_size * square_sum));
}

__kernel void lrn(__global data_t *out, __global const data_t *in, int width,
                  int channels, int lo_off, int hi_off, float alpha_over_size,
                  float beta, float bias) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int nh = get_global_id(2);
  const int blocks = get_global_size(0);
  const int pixel = nh * width + w;
  __global const data_t *row = in + pixel * blocks * 4;
  const int c = c4 << 2;
  float4 y = (float4)(0.0f);
  y.x = lrn_one(row, c, channels, lo_off, hi_off, alpha_over_size, beta, bias);
  if (c + 1 < channels)
    y.y = lrn_one(row, c + 1, channels, lo_off, hi_off, alpha_over_size, beta, bias);
  if (c + 2 < channels)
    y.z = lrn_one(row, c + 2, channels, lo_off, hi_off, alpha_over_size, beta, bias);
  if (c + 3 < channels)
    y.w = lrn_one(row, c + 3, channels, lo_off, hi_off, alpha_over_size, beta, bias);
  STORE4(y, pixel * blocks + c4, out);
}
