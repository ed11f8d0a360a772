/* Local response normalization across channels (ONNX LRN):
 *   y[n, c, h, w] = x[n, c, h, w] / (bias + alpha / size * square_sum) ^ beta
 *   square_sum = sum of x[n, i, h, w]^2 for i in [c - floor((size - 1) / 2),
 *                c + ceil((size - 1) / 2)], clamped to [0, C - 1].
 *
 * lrn: one work-item per (channel block, w, n * h); it writes the 4 channels of its
 * block, reading the window's inputs one at a time from the pixel's [C4 * 4] row.
 * global size (C4, W, N * H). */
#include "common.h"

/* The window's sum of squares for channel c (zero for channels past the last). */
inline float square_sum(__global const data_t *row, int c, int channels, int lo_off,
                        int hi_off) {
  const int lo = max(c - lo_off, 0);
  const int hi = min(c + hi_off, channels - 1);
  float sum = 0.0f;
  for (int i = lo; i <= hi; ++i) {
    const float x = LOAD1(i, row);
    sum += x * x;
  }
  return sum;
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
  const float4 sums = (float4)(square_sum(row, c, channels, lo_off, hi_off),
                               square_sum(row, c + 1, channels, lo_off, hi_off),
                               square_sum(row, c + 2, channels, lo_off, hi_off),
                               square_sum(row, c + 3, channels, lo_off, hi_off));
  /* base^-beta as exp2(-beta * log2(base)), on the whole float4 at once: PoCL's pow() cost
   * most of an LRN's time, and a scalar exp2 and log2 per channel still did (the vector
   * forms are one call each); the two agree for base > 0 (bias > 0, as ONNX's default 1). */
  const float4 scale = exp2(-beta * log2(bias + alpha_over_size * sums));
  const float4 y = zero_padding_lanes(LOAD4(c4, row) * scale, c4, channels);
  STORE4(y, pixel * blocks + c4, out);
}
