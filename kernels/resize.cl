/* Resize / Upsample along the stored H and W axes (ops/resize.py).
 *
 * Build options: -DRESIZE_MODE=RESIZE_NEAREST|RESIZE_LINEAR
 *
 * The host resolves every coordinate_transformation_mode and nearest_mode in exact
 * arithmetic into one table entry per output row (rows[out_h]) and per output
 * column (cols[out_w]): float4 (i0, i1, t, 0), meaning in[i0] * (1 - t) + in[i1] * t
 * along that axis, indices already clamped to the input. Nothing here computes a
 * coordinate: OpenCL's float division may be 2.5 ulp off, which would move
 * nearest ties and floors at exact integers to another input element on some
 * devices. Indices are exact integers in float, so (int) is exact. The tables stay
 * float with -DSTORAGE_HALF (OpPlan.table_constants); only in and out are data_t.
 * One work-item writes one float4 of the output: global size (C4, W, N*H). */
#include "common.h"

#define RESIZE_NEAREST 0
#define RESIZE_LINEAR 1

#ifndef RESIZE_MODE
#error "resize.cl needs -DRESIZE_MODE"
#endif

/* a + (b - a) * t spelled out: OpenCL leaves mix()'s precision to the vendor. */
inline float4 lerp4(float4 a, float4 b, float t) { return a + (b - a) * t; }

__kernel void resize(__global data_t *out, __global const data_t *in,
                     __global const float4 *rows, __global const float4 *cols,
                     int out_h, int out_w, int channels, int in_h, int in_w) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int n = get_global_id(2) / out_h;
  const int h = get_global_id(2) - n * out_h;
  const int blocks = channel_blocks(channels);
  const float4 row = rows[h], col = cols[w];
  const int y0 = (int)row.x, x0 = (int)col.x;
  /* channel block c4 of image n; LOAD4's index counts channel blocks from there */
  __global const data_t *plane = in + (n * in_h * in_w * blocks + c4) * 4;
#if RESIZE_MODE == RESIZE_NEAREST
  float4 v = LOAD4((y0 * in_w + x0) * blocks, plane);
#elif RESIZE_MODE == RESIZE_LINEAR
  const int y1 = (int)row.y, x1 = (int)col.y;
  const float4 top = lerp4(LOAD4((y0 * in_w + x0) * blocks, plane),
                           LOAD4((y0 * in_w + x1) * blocks, plane), col.z);
  const float4 bottom = lerp4(LOAD4((y1 * in_w + x0) * blocks, plane),
                              LOAD4((y1 * in_w + x1) * blocks, plane), col.z);
  float4 v = lerp4(top, bottom, row.z);
#else
#error "unknown RESIZE_MODE"
#endif
  STORE4(zero_padding_lanes(v, c4, channels), get_global_id(2) * out_w * blocks + w * blocks + c4, out);
}
