/* ReduceMean / ReduceSum / ReduceMax / ReduceMin / ReduceProd / ReduceL1 / ReduceL2 /
 * ReduceSumSquare over any set of axes (ops/reduce.py).
 *
 * Build options: -DREDUCE_OP=REDUCE_SUM|REDUCE_SUM_SQUARE|REDUCE_L1|REDUCE_L2|
 *                            REDUCE_MAX|REDUCE_MIN|REDUCE_PROD
 * (ReduceMean is REDUCE_SUM with scale = 1 / count.)
 *
 * The output is written in its keepdims=1 shape: every reduced stored axis has
 * size 1 there. One work-item owns one output float4 and loops over the reduced
 * extents (reduce_n, reduce_h, reduce_w) of N, H and W. If the channel axis is
 * reduced too (reduce_channels != 0), it also loops over all channel blocks and
 * folds the four lanes at the end into lane 0.
 * Global size (C4, W, N*H) of the keepdims output.
 *
 * reduce_wg computes the same with work-group reductions, for GPUs: a work-group of
 * L = get_local_size(0) work-items (a power of two) per output float4; item s folds
 * the reduced elements t = s, s + L, ... (t enumerates (i, j, k, block), block
 * fastest), then the L partials are folded in local memory. Global size
 * (L * C4, W, N*H), local size (L, 1, 1), scratch L float4 (local memory: float
 * whatever the storage).
 *
 * in and out are data_t (common.h: half with -DSTORAGE_HALF), indexed here in whole
 * vectors of 4. out is the node's output or, when the keepdims=1 shape is stored
 * differently from the output, a scratch buffer that copy.cl reshapes into it: the
 * result is rounded to data_t once, on this store, as copy.cl copies it unchanged. */
#include "common.h"

#define REDUCE_SUM 0
#define REDUCE_SUM_SQUARE 1
#define REDUCE_L1 2
#define REDUCE_L2 3
#define REDUCE_MAX 4
#define REDUCE_MIN 5
#define REDUCE_PROD 6

#ifndef REDUCE_OP
#error "reduce.cl needs -DREDUCE_OP"
#endif

/* IDENTITY: the fold's neutral value (also what padding lanes are masked to);
 * MAP: applied to each element; FOLD: combines; FINISH: applied to the result. */
#if REDUCE_OP == REDUCE_MAX
#define IDENTITY (-INFINITY)
#define FOLD(a, b) fmax(a, b)
#elif REDUCE_OP == REDUCE_MIN
#define IDENTITY INFINITY
#define FOLD(a, b) fmin(a, b)
#elif REDUCE_OP == REDUCE_PROD
#define IDENTITY 1.0f
#define FOLD(a, b) ((a) * (b))
#else
#define IDENTITY 0.0f
#define FOLD(a, b) ((a) + (b))
#endif

#if REDUCE_OP == REDUCE_SUM_SQUARE || REDUCE_OP == REDUCE_L2
#define MAP(x) ((x) * (x))
#elif REDUCE_OP == REDUCE_L1
#define MAP(x) fabs(x)
#else
#define MAP(x) (x)
#endif

#if REDUCE_OP == REDUCE_L2
#define FINISH(x) sqrt(x)
#else
#define FINISH(x) (x)
#endif

/* Padding lanes hold 0, which is not neutral for max/min/prod. */
inline float4 mask_padding(float4 v, int c4, int channels) {
  const int valid = channels - (c4 << 2);
  if (valid >= 4) return v;
  return (float4)(v.x, valid > 1 ? v.y : IDENTITY, valid > 2 ? v.z : IDENTITY, IDENTITY);
}

__kernel void reduce(__global data_t *out, __global const data_t *in, int in_h,
                     int in_w, int in_c, int out_h, int out_w, int out_c,
                     int reduce_n, int reduce_h, int reduce_w,
                     int reduce_channels, float scale) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int n = get_global_id(2) / out_h;
  const int h = get_global_id(2) - n * out_h;
  const int in_blocks = channel_blocks(in_c);
  const int first_block = reduce_channels ? 0 : c4;
  const int end_block = reduce_channels ? in_blocks : c4 + 1;
  float4 acc = (float4)(IDENTITY);
  for (int i = 0; i < reduce_n; ++i)
    for (int j = 0; j < reduce_h; ++j)
      for (int k = 0; k < reduce_w; ++k) {
        const int pixel = (((n + i) * in_h + h + j) * in_w + w + k) * in_blocks;
        for (int b = first_block; b < end_block; ++b) {
          const float4 x = LOAD4(pixel + b, in);
          acc = FOLD(acc, mask_padding(MAP(x), b, in_c));
        }
      }
  if (reduce_channels) acc = (float4)(FOLD(FOLD(acc.x, acc.y), FOLD(acc.z, acc.w)), 0.0f, 0.0f, 0.0f);
  const float4 result = FINISH(acc) * scale;
  const int index = (get_global_id(2) * out_w + w) * channel_blocks(out_c) + c4;
  STORE4(zero_padding_lanes(result, c4, out_c), index, out);
}

__kernel void reduce_wg(__global data_t *out, __global const data_t *in, int in_h,
                        int in_w, int in_c, int out_h, int out_w, int out_c,
                        int reduce_n, int reduce_h, int reduce_w,
                        int reduce_channels, float scale,
                        __local float4 *scratch) {
  const int lane = get_local_id(0);
  const int lanes = get_local_size(0);
  const int c4 = get_group_id(0);
  const int w = get_global_id(1);
  const int n = get_global_id(2) / out_h;
  const int h = get_global_id(2) - n * out_h;
  const int in_blocks = channel_blocks(in_c);
  const int blocks = reduce_channels ? in_blocks : 1;
  const int first_block = reduce_channels ? 0 : c4;
  const int total = reduce_n * reduce_h * reduce_w * blocks;
  float4 acc = (float4)(IDENTITY);
  for (int t = lane; t < total; t += lanes) {
    int rest = t / blocks;
    const int b = first_block + (t - rest * blocks);
    const int k = rest % reduce_w;
    rest /= reduce_w;
    const int j = rest % reduce_h;
    const int i = rest / reduce_h;
    const float4 x = LOAD4((((n + i) * in_h + h + j) * in_w + w + k) * in_blocks + b, in);
    acc = FOLD(acc, mask_padding(MAP(x), b, in_c));
  }
  scratch[lane] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int step = lanes >> 1; step > 0; step >>= 1) {
    if (lane < step) scratch[lane] = FOLD(scratch[lane], scratch[lane + step]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lane == 0) {
    acc = scratch[0];
    if (reduce_channels) acc = (float4)(FOLD(FOLD(acc.x, acc.y), FOLD(acc.z, acc.w)), 0.0f, 0.0f, 0.0f);
    const float4 result = FINISH(acc) * scale;
    const int index = (get_global_id(2) * out_w + w) * channel_blocks(out_c) + c4;
    STORE4(zero_padding_lanes(result, c4, out_c), index, out);
  }
}
