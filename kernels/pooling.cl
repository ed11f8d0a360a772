/* Max / average pooling over NHWC4 tensors (ONNX MaxPool, AveragePool and the
 * Global* variants).
 *
 * Build options:
 *   -DPOOL_MAX or -DPOOL_AVG   which reduction (one is required)
 *   -DACTIVATION=ACT_*         optional fused activation (common.h)
 *
 * pool2d:      one work-item per output float4; global size (C4, OW, N * OH).
 *              Taps outside the input are skipped. Average pooling divides by
 *              the taps inside the input, or with count_include_pad by the taps
 *              inside the padded input [-pad, size + pad_end) (so ceil_mode
 *              windows that run past the end padding do not count those taps).
 * pool2d_o16:  the same for CPU devices, 16 channels (one float16) times
 *              POOL_PIXELS horizontally adjacent outputs per work-item, as the
 *              conv2d_o16.cl kernels do (a float4 work-item uses a quarter of a
 *              512-bit vector unit); launched with one work-item per work-group.
 *              Global size (ceil(C4 / 4), ceil(OW / POOL_PIXELS), N * OH).
 * global_pool: one work-item per (channel block, batch) reduces all H * W
 *              pixels; global size (C4, N).
 * global_pool_wg: the same with work-group reductions, for GPUs: a work-group of
 *              (L0, S) work-items covers L0 channel blocks of one batch; item
 *              (c, s) folds pixels s, s + S, ... of its block, then the S partials
 *              are folded in local memory (S = get_local_size(1), a power of two).
 *              Global size (C4 rounded up to L0, S, N), local size (L0, S, 1),
 *              scratch L0 * S float4 (local memory: float whatever the storage).
 *              -DPOOL_PARTIAL: the pixels are cut into `parts` (one more argument,
 *              last) ranges, one per index of the third dimension (global size
 *              (.., S, N * parts)), and each work-group writes its range's raw
 *              max / sum to `out`, then a float4 buffer [N][parts][C4], for
 *              global_pool_finish. For large inputs, where C4 / L0 work-groups alone
 *              would leave a GPU nearly idle (96 channels at 112x112: two).
 * global_pool_finish: folds those parts, divides (average), activates and stores;
 *              global size (C4, N), either rounded up (work-items past the end return).
 * squeeze_excite: a global average pool and the two 1x1 Convs of a squeeze-excite
 *              gate in one work-group per batch item (see the kernel).
 * se_squeeze, se_excite: the same gate over many work-groups, for GPUs, in two
 *              launches (see the kernels).
 *
 * in and out are data_t (common.h: half with -DSTORAGE_HALF). */
#include "common.h"
#include "o16.h"
#include "se_gate.h"

#if defined(POOL_MAX) == defined(POOL_AVG)
#error "pooling.cl needs exactly one of -DPOOL_MAX and -DPOOL_AVG"
#endif

#ifdef POOL_MAX
#define POOL_INIT ((float4)(-INFINITY))
#define POOL_INIT16 ((float16)(-INFINITY))
#define POOL_ADD(acc, v) fmax(acc, v)
#else
#define POOL_INIT ((float4)(0.0f))
#define POOL_INIT16 ((float16)(0.0f))
#define POOL_ADD(acc, v) ((acc) + (v))
#endif

#define POOL_PIXELS 4 /* outputs along W per work-item of pool2d_o16 */

/* Taps k in [0, taps) whose position start + k * dilation lies in [low, high). */
inline int taps_within(int start, int taps, int dilation, int low, int high) {
  int count = 0;
  for (int k = 0; k < taps; ++k) {
    const int p = start + k * dilation;
    count += (p >= low && p < high) ? 1 : 0;
  }
  return count;
}

__kernel void pool2d(__global data_t *out, __global const data_t *in, int in_h,
                     int in_w, int out_h, int out_w, int channels, int kernel_h,
                     int kernel_w, int stride_h, int stride_w, int pad_top,
                     int pad_left, int dilation_h, int dilation_w,
                     int pad_bottom, int pad_right, int count_include_pad,
                     float act_alpha, float act_beta) {
  const int c4 = get_global_id(0);
  const int ow = get_global_id(1);
  const int nh = get_global_id(2);
  const int n = nh / out_h;
  const int oh = nh - n * out_h;
  const int blocks = channel_blocks(channels);
  const int ih0 = oh * stride_h - pad_top;
  const int iw0 = ow * stride_w - pad_left;

  float4 acc = POOL_INIT;
  for (int kh = 0; kh < kernel_h; ++kh) {
    const int ih = ih0 + kh * dilation_h;
    if (ih < 0 || ih >= in_h) continue;
    __global const data_t *row = in + ((n * in_h + ih) * in_w) * blocks * 4 + c4 * 4;
    for (int kw = 0; kw < kernel_w; ++kw) {
      const int iw = iw0 + kw * dilation_w;
      if (iw < 0 || iw >= in_w) continue;
      acc = POOL_ADD(acc, LOAD4(0, row + iw * blocks * 4));
    }
  }
#ifdef POOL_AVG
  const int count =
      count_include_pad
          ? taps_within(ih0, kernel_h, dilation_h, -pad_top, in_h + pad_bottom) *
                taps_within(iw0, kernel_w, dilation_w, -pad_left, in_w + pad_right)
          : taps_within(ih0, kernel_h, dilation_h, 0, in_h) *
                taps_within(iw0, kernel_w, dilation_w, 0, in_w);
  acc /= (float)count;
#endif
  acc = zero_padding_lanes(apply_activation(acc, act_alpha, act_beta), c4, channels);
  STORE4(acc, (nh * out_w + ow) * blocks + c4, out);
}

__kernel void pool2d_o16(__global data_t *out, __global const data_t *in, int in_h,
                         int in_w, int out_h, int out_w, int channels, int kernel_h,
                         int kernel_w, int stride_h, int stride_w, int pad_top,
                         int pad_left, int dilation_h, int dilation_w,
                         int pad_bottom, int pad_right, int count_include_pad,
                         float act_alpha, float act_beta) {
  const int og = get_global_id(0);
  const int ow0 = get_global_id(1) * POOL_PIXELS;
  const int nh = get_global_id(2);
  const int n = nh / out_h;
  const int oh = nh - n * out_h;
  const int pixel_stride = channel_blocks(channels) * 4;
  const int blocks = min(4, channel_blocks(channels) - og * 4);
  const int ih0 = oh * stride_h - pad_top;
  const int iw0 = ow0 * stride_w - pad_left;

  float16 acc[POOL_PIXELS];
  #pragma unroll
  for (int i = 0; i < POOL_PIXELS; ++i) acc[i] = POOL_INIT16;
  /* Work-items whose taps all lie inside the row (most of them) skip the column checks. */
  const bool inside = blocks == 4 && iw0 >= 0 &&
                      iw0 + (POOL_PIXELS - 1) * stride_w + (kernel_w - 1) * dilation_w < in_w;
  for (int kh = 0; kh < kernel_h; ++kh) {
    const int ih = ih0 + kh * dilation_h;
    if (ih < 0 || ih >= in_h) continue;
    __global const data_t *row = in + (n * in_h + ih) * in_w * pixel_stride + og * 16;
    if (inside) {
      for (int kw = 0; kw < kernel_w; ++kw) {
        __global const data_t *p = row + (iw0 + kw * dilation_w) * pixel_stride;
        #pragma unroll
        for (int i = 0; i < POOL_PIXELS; ++i)
          acc[i] = POOL_ADD(acc[i], LOAD16(0, p + i * stride_w * pixel_stride));
      }
      continue;
    }
    for (int kw = 0; kw < kernel_w; ++kw) {
      #pragma unroll
      for (int i = 0; i < POOL_PIXELS; ++i) {
        const int iw = iw0 + i * stride_w + kw * dilation_w;
        if (iw >= 0 && iw < in_w) acc[i] = POOL_ADD(acc[i], load_blocks16(row + iw * pixel_stride, blocks));
      }
    }
  }
  const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const int16 past_end = (int16)(og * 16) + lane >= (int16)(channels);
  #pragma unroll
  for (int i = 0; i < POOL_PIXELS; ++i) {
    if (ow0 + i >= out_w) break;
    float16 v = acc[i];
#ifdef POOL_AVG
    const int iw = iw0 + i * stride_w;
    const int count =
        count_include_pad
            ? taps_within(ih0, kernel_h, dilation_h, -pad_top, in_h + pad_bottom) *
                  taps_within(iw, kernel_w, dilation_w, -pad_left, in_w + pad_right)
            : taps_within(ih0, kernel_h, dilation_h, 0, in_h) *
                  taps_within(iw, kernel_w, dilation_w, 0, in_w);
    v /= (float)count;
#endif
    v = select(apply_activation16(v, act_alpha, act_beta), (float16)(0.0f), past_end);
    __global data_t *o = out + (nh * out_w + ow0 + i) * pixel_stride + og * 16;
    if (blocks >= 4) {
      STORE16(v, 0, o);
    } else {
      STORE4(v.lo.lo, 0, o);
      if (blocks > 1) STORE4(v.lo.hi, 1, o);
      if (blocks > 2) STORE4(v.hi.lo, 2, o);
    }
  }
}

__kernel void global_pool(__global data_t *out, __global const data_t *in,
                          int pixels, int channels, float act_alpha,
                          float act_beta) {
  const int c4 = get_global_id(0);
  const int n = get_global_id(1);
  const int blocks = channel_blocks(channels);
  __global const data_t *src = in + (n * pixels * blocks + c4) * 4;
  float4 acc = POOL_INIT;
  for (int p = 0; p < pixels; ++p) acc = POOL_ADD(acc, LOAD4(p * blocks, src));
#ifdef POOL_AVG
  acc /= (float)pixels;
#endif
  acc = zero_padding_lanes(apply_activation(acc, act_alpha, act_beta), c4, channels);
  STORE4(acc, n * blocks + c4, out);
}

#ifdef POOL_PARTIAL
#define GLOBAL_POOL_OUT __global float4 *out
#define PARTS_PARAM , int parts
#else
#define GLOBAL_POOL_OUT __global data_t *out
#define PARTS_PARAM
#endif

__kernel void global_pool_wg(GLOBAL_POOL_OUT, __global const data_t *in,
                             int pixels, int channels, float act_alpha,
                             float act_beta, __local float4 *scratch PARTS_PARAM) {
  const int c4 = get_global_id(0);
  const int lc = get_local_id(0);
  const int l0 = get_local_size(0);
  const int s = get_local_id(1);
  const int slices = get_local_size(1);
  const int blocks = channel_blocks(channels);
#ifdef POOL_PARTIAL
  const int n = get_global_id(2) / parts;
  const int per_part = (pixels + parts - 1) / parts;
  const int begin = (get_global_id(2) - n * parts) * per_part;
  const int end = min(begin + per_part, pixels);
#else
  const int n = get_global_id(2);
  const int begin = 0;
  const int end = pixels;
#endif
  float4 acc = POOL_INIT;
  if (c4 < blocks) {
    __global const data_t *src = in + (n * pixels * blocks + c4) * 4;
    for (int p = begin + s; p < end; p += slices) acc = POOL_ADD(acc, LOAD4(p * blocks, src));
  }
  scratch[s * l0 + lc] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int step = slices >> 1; step > 0; step >>= 1) {
    if (s < step) scratch[s * l0 + lc] = POOL_ADD(scratch[s * l0 + lc], scratch[(s + step) * l0 + lc]);
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (s == 0 && c4 < blocks) {
#ifdef POOL_PARTIAL
    out[get_global_id(2) * blocks + c4] = scratch[lc];
#else
    acc = scratch[lc];
#ifdef POOL_AVG
    acc /= (float)pixels;
#endif
    acc = zero_padding_lanes(apply_activation(acc, act_alpha, act_beta), c4, channels);
    STORE4(acc, n * blocks + c4, out);
#endif
  }
}

__kernel void global_pool_finish(__global data_t *out, __global const float4 *partial,
                                 int pixels, int channels, int parts, int batch,
                                 float act_alpha, float act_beta) {
  const int c4 = get_global_id(0);
  const int n = get_global_id(1);
  const int blocks = channel_blocks(channels);
  if (c4 >= blocks || n >= batch) return;
  float4 acc = POOL_INIT;
  for (int part = 0; part < parts; ++part) acc = POOL_ADD(acc, partial[(n * parts + part) * blocks + c4]);
#ifdef POOL_AVG
  acc /= (float)pixels;
#endif
  acc = zero_padding_lanes(apply_activation(acc, act_alpha, act_beta), c4, channels);
  STORE4(acc, n * blocks + c4, out);
}

/* squeeze_excite: a squeeze-excite gate, one work-group per batch item (the internal
 * SqueezeExcite op: GlobalAveragePool -> 1x1 Conv -> 1x1 Conv in one launch):
 *   mean   = the channel means of x, from global_pool_wg -DPOOL_PARTIAL's parts or, with
 *            -DSE_DIRECT, read from x itself
 *   hidden = ACTIVATE_AS(HIDDEN_ACTIVATION, w1 . mean + b1)   (hidden_size values)
 *   gate   = ACTIVATION(w2 . hidden + b2)                      (out_channels values)
 * written as an NHWC4 [N, out_channels, 1, 1] tensor. w1 is [hidden_size][C4 * 4] and w2
 * [hidden_size][OC4 * 4], zero-padded; b1 [hidden_size], b2 [OC4 * 4]. pool_slices work-
 * items share each channel block's pixels (or parts) and fc_slices each hidden row, so
 * that neighbouring work-items read neighbouring float4s. Local memory: pooled (C4 float4),
 * hidden (hidden_size floats), sums (a float4 per work-item). Requires -DPOOL_AVG. */
#ifdef SE_DIRECT
#define SE_SOURCE __global const data_t *x
#else
#define SE_SOURCE __global const float4 *partial
#endif
__kernel void squeeze_excite(__global data_t *out, SE_SOURCE, int pixels, int parts, int channels,
                             __global const data_t *w1, __global const data_t *b1, int hidden_size,
                             float hidden_alpha, float hidden_beta, __global const data_t *w2,
                             __global const data_t *b2, int out_channels, float act_alpha,
                             float act_beta, int pool_slices, int fc_slices,
                             __local float4 *pooled, __local float *hidden, __local float4 *sums) {
  const int n = get_group_id(0);
  const int lid = get_local_id(0);
  const int size = get_local_size(0);
  const int blocks = channel_blocks(channels);

  const int width = size / pool_slices; /* channel blocks per pass */
  for (int c0 = 0; c0 < blocks; c0 += width) {
    const int c4 = c0 + lid % width, k = lid / width;
    float4 acc = (float4)(0.0f);
    if (c4 < blocks && k < pool_slices) {
#ifdef SE_DIRECT
      for (int p = k; p < pixels; p += pool_slices) acc += LOAD4((n * pixels + p) * blocks + c4, x);
#else
      for (int p = k; p < parts; p += pool_slices) acc += partial[(n * parts + p) * blocks + c4];
#endif
    }
    sums[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (k == 0 && c4 < blocks) {
      float4 total = (float4)(0.0f);
      for (int j = 0; j < pool_slices; ++j) total += sums[j * width + lid];
      pooled[c4] = total / (float)pixels;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  const int rows = size / fc_slices; /* hidden values per pass */
  for (int r0 = 0; r0 < hidden_size; r0 += rows) {
    const int r = r0 + lid / fc_slices, k = lid % fc_slices;
    const bool active = r < hidden_size && lid < rows * fc_slices;
    float4 acc = (float4)(0.0f);
    if (active) {
      for (int c4 = k; c4 < blocks; c4 += fc_slices) acc += LOADA4(r * blocks + c4, w1) * pooled[c4];
    }
    sums[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (active && k == 0) {
      float4 total = (float4)(0.0f);
      for (int j = 0; j < fc_slices; ++j) total += sums[lid + j];
      const float h = total.x + total.y + total.z + total.w + LOAD1(r, b1);
      hidden[r] = ACTIVATE_AS(HIDDEN_ACTIVATION, h, hidden_alpha, hidden_beta);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }

  const int out_blocks = channel_blocks(out_channels);
  for (int ob = lid; ob < out_blocks; ob += size) {
    float4 acc = LOADA4(ob, b2);
    for (int r = 0; r < hidden_size; ++r) acc += hidden[r] * LOADA4(r * out_blocks + ob, w2);
    STORE4(zero_padding_lanes(apply_activation(acc, act_alpha, act_beta), ob, out_channels),
           n * out_blocks + ob, out);
  }
}

/* se_squeeze and se_excite: a squeeze-excite gate (as squeeze_excite above) spread over
 * many work-groups, for GPUs, where one work-group per image leaves all but one SM idle
 * and runs the two matrix-vector products as long serial loops. Since the first 1x1 Conv
 * is linear, it can be applied to partial sums:
 *
 * se_squeeze: work-group (g, n * parts + part) sums the pixels of its part for the
 *   channel blocks [g * group_blocks, (g + 1) * group_blocks) (group_blocks a power of
 *   two dividing the local size; the other local work-items share the pixels), then
 *   writes, for every hidden row r, sum over those blocks of w1[r] . sum:
 *     partial[(n * count + g * parts + part) * hidden_size + r],  count = groups * parts.
 *   Global size (groups * L, N * parts), local size (L, 1); sums: L float4.
 *   -DSE_LAST_GROUP: the work-group that finishes image n last (counted in arrivals[n],
 *   zero before the launch and after it) also computes its gate, as se_excite's work-group
 *   0 would with out_group_blocks (and nothing more to launch): more arguments, from
 *   `out` on, and the local buffers hidden (hidden_size floats), row_sums (L floats).
 * se_excite: work-group (g, n) adds up image n's `count` partials of every hidden row
 *   (row_slices work-items per row, a power of two dividing L), divides by the pixels,
 *   adds b1 and activates into `hidden`; then computes the gate for the output blocks
 *   [g * group_blocks, (g + 1) * group_blocks), L / group_blocks work-items sharing each
 *   block's hidden rows. Global size (groups * L, N), local size (L, 1).
 * Requires -DPOOL_AVG. */
#ifdef SE_LAST_GROUP
#define SE_GATE_PARAMS                                                                        \
  , __global data_t *out, __global const data_t *b1, float hidden_alpha, float hidden_beta,  \
      __global const data_t *w2, __global const data_t *b2, int out_channels, float act_alpha, \
      float act_beta, int row_slices, int out_group_blocks, __global int *arrivals,           \
      __local float *hidden, __local float *row_sums
#else
#define SE_GATE_PARAMS
#endif
/* -DSE_LOCAL_X: the local size L, required (the last group's tail wants all of it: the
 * compiler then keeps the kernel within the registers L work-items have); without it
 * there is no se_squeeze. */
#ifdef SE_LOCAL_X
__kernel __attribute__((reqd_work_group_size(SE_LOCAL_X, 1, 1)))
void se_squeeze(__global float *partial, __global const data_t *x, int pixels, int parts,
                         int channels, __global const data_t *w1, int hidden_size, int group_blocks,
                         __local float4 *sums SE_GATE_PARAMS) {
#ifdef SE_LAST_GROUP
  __local int arrived; /* image n's arrival count before this group's */
#endif
  const int lid = get_local_id(0);
  const int slices = get_local_size(0) / group_blocks;
  const int c = lid % group_blocks, k = lid / group_blocks;
  const int g = get_group_id(0), count = get_num_groups(0) * parts;
  const int n = get_group_id(1) / parts, part = get_group_id(1) % parts;
  const int blocks = channel_blocks(channels);
  const int first = g * group_blocks;
  const int per_part = (pixels + parts - 1) / parts;
  const int begin = part * per_part, end = min(begin + per_part, pixels);
  float4 acc = (float4)(0.0f);
  if (first + c < blocks) {
    for (int p = begin + k; p < end; p += slices) acc += LOAD4((n * pixels + p) * blocks + first + c, x);
  }
  sums[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int step = slices >> 1; step > 0; step >>= 1) {
    if (k < step) sums[lid] += sums[lid + step * group_blocks];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const int width = min(group_blocks, blocks - first);
  __global float *image = partial + n * count * hidden_size;
  se_partials(lid, get_local_size(0), image + (g * parts + part) * hidden_size, w1, blocks, first, width,
              hidden_size, sums);
#ifdef SE_LAST_GROUP
  if (!se_last_arrival(lid, arrivals, n, count, &arrived)) return; /* not the last of image n */
  /* se_hidden reads through a volatile pointer: from global memory, not a stale cache. */
  const int size = get_local_size(0);
  se_hidden(lid, size, image, count, pixels, b1, hidden_size, hidden_alpha, hidden_beta, row_slices,
            hidden, row_sums);
  se_gate_blocks(lid, size, out, n, w2, b2, hidden_size, out_channels, act_alpha, act_beta,
                 out_group_blocks, 0, 1, hidden, sums);
#endif
}

#endif /* SE_LOCAL_X */

__kernel void se_excite(__global data_t *out, __global const float *partial, int count, int pixels,
                        __global const data_t *b1, int hidden_size, float hidden_alpha,
                        float hidden_beta, __global const data_t *w2, __global const data_t *b2,
                        int out_channels, float act_alpha, float act_beta, int row_slices,
                        int group_blocks, __local float *hidden, __local float *row_sums,
                        __local float4 *sums) {
  const int lid = get_local_id(0), size = get_local_size(0), n = get_group_id(1);
  se_hidden(lid, size, partial + n * count * hidden_size, count, pixels, b1, hidden_size,
            hidden_alpha, hidden_beta, row_slices, hidden, row_sums);
  se_gate_blocks(lid, size, out, n, w2, b2, hidden_size, out_channels, act_alpha, act_beta,
                 group_blocks, get_group_id(0), get_num_groups(0), hidden, sums);
}
