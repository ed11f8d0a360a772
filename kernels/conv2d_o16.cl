/* Convolutions vectorised over 16 channels (ONNX Conv, NHWC4 tensors).
 *
 * conv2d.cl gives each work-item one float4 of output channels. On a CPU OpenCL
 * device (PoCL) a work-item is a scalar thread of SIMD code, so the float4 becomes a
 * 128-bit vector and most of a 512-bit (or 256-bit) FMA unit idles. These kernels
 * give each work-item 16 channels (four NHWC4 blocks, one float16: one zmm register
 * with AVX-512, two ymm with AVX2) times several output pixels, kept in registers,
 * so that every loaded weight vector and every broadcast input value feeds several
 * FMAs (register blocking). ops/conv.py picks them and launches them with one
 * work-item per work-group on CPU devices (see there why).
 *
 * Build options (all optional):
 *   -DFILTER_H=<kh> -DFILTER_W=<kw>  filter size known at compile time, so the tap
 *                                    loops unroll (used for 3x3)
 *   -DACTIVATION=ACT_*               fused activation (common.h)
 *   -DRESIDUAL                       conv1x1_o32, depthwise_conv1x1_o32: one more argument,
 *                                    `residual` (after out_c), a tensor shaped like
 *                                    the output that is added before the activation
 *                                    (a residual Add fused by the converter)
 *   -DGROUPED                        conv1x1_o32 only: a grouped convolution; takes
 *                                    two more arguments, `group_in_c` and
 *                                    `group_out_c` (after out_c, before `residual`).
 *                                    Each work-item computes up to 32 output channels
 *                                    of one group (its chunk), reading only the input
 *                                    blocks of that group; chunks start at any channel
 *                                    (see conv1x1_o32). Global size (groups * chunks
 *                                    per group, pixel blocks)
 *   -DBATCHED                        conv1x1_o32 only: global dimension 2 picks one of
 *                                    several products of the same shape, stored one
 *                                    after another in `in`, `filter` and `out` (the 16
 *                                    per-point products of winograd.cl)
 *   -DSHUFFLE_GROUPS=<g>             depthwise_o16 only (g = 2, 4 or 8): the input is
 *                                    read through a channel shuffle of g groups
 *                                    (ShuffleNet's Reshape -> Transpose -> Reshape):
 *                                    channel c of the convolved tensor is channel
 *                                    (c % g) * (C / g) + c / g of `in`, so the shuffled
 *                                    tensor is never stored
 *   -DDEPTHWISE_INPUT                depthwise_conv1x1_o32 exists only with it;
 *                                    -DDW_ACTIVATION=ACT_* is its depthwise
 *                                    convolution's activation
 *
 * Kernels (output channel group og = channels 16*og .. 16*og+15):
 *   conv1x1_o32        1x1, stride 1, no padding, group 1: NHWC4 pixels are
 *                      independent rows of a matrix product, so the N*H*W pixels are
 *                      one flat range. Each work-item computes 32 output channels
 *                      (groups 2*g and 2*g+1) of 7 consecutive pixels: 14 float16
 *                      accumulators plus 8 weight vectors fit AVX-512's 32 registers,
 *                      and each broadcast input value feeds two FMAs. 7 because
 *                      224x224 CNNs have 112, 56, 28, 14 and 7 pixel rows (multiples
 *                      of 7: no partial blocks). Global size (ceil(OC16 / 2),
 *                      ceil(pixels / 7)).
 *   conv1x1_o16_single the same with 16 channels of 1 pixel per work-item, for fewer
 *                      than 7 pixels (fully-connected layers: bound by reading the
 *                      weights once). Global size (OC16, pixels).
 *   conv2d_o32         any KH x KW, stride, padding, dilation, group 1, more than 16
 *                      output channels: 32 channels (groups 2*g, 2*g+1, sharing each
 *                      input load) times 7 horizontally adjacent outputs per
 *                      work-item (as conv1x1_o32: 7 divides the row widths of 224x224
 *                      CNNs), for output rows strided by the global size. Global size
 *                      (ceil(OC16 / 2), ceil(OW / 7), at most N * OH); takes two
 *                      more arguments after dilation_w: `out_rows` = N * OH, and
 *                      `centre_pairs`, the number of leading pairs whose weights
 *                      are zero outside the centre tap (odd filters), which run that
 *                      tap alone.
 *   conv2d_o16         the same for at most 16 output channels (no idle second
 *                      group): 16 channels times 4 outputs per work-item. Global size
 *                      (OC16, ceil(OW / 4), N * OH).
 *   depthwise_o16      group == C_in == C_out: 16 channels times 8 horizontally
 *                      adjacent outputs per work-item (a last group of fewer than 4
 *                      blocks reads only those). Global size (C16, ceil(OW / 8),
 *                      N * OH). With -DSHUFFLE_GROUPS=g, `in` holds the convolved
 *                      tensor as g runs of R = C / g channels: a work-item takes 16
 *                      adjacent channels of every run (g output groups) times 16 / g
 *                      outputs, and puts the lanes in channel order before the store.
 *                      Global size (ceil(R / 16), ceil(OW / (16 / g)), N * OH).
 *   depthwise_conv1x1_o32  conv1x1_o32 over the output of a depthwise convolution of
 *                      `in` (SeparableConv), computed as it is read, 16 channels times
 *                      the work-item's 7 pixels at a time (a 7-pixel block within one
 *                      output row shares its input rows and loads): the depthwise output
 *                      is never stored, at the price of computing it again for each 32
 *                      output channels. Arguments: out, in, filter, bias, pixels,
 *                      in_c4, out_c[, residual] as conv1x1_o32's (`pixels` and `in_c4`
 *                      those of the depthwise output), then dw_filter and dw_bias
 *                      (depthwise_o16's layouts), in_h, in_w (`in`'s), out_h, out_w
 *                      (the depthwise output's), the eight window arguments, dw_alpha,
 *                      dw_beta, act_alpha, act_beta. Global size as conv1x1_o32's.
 *
 * Filter layouts (ops/conv.py packs them; zero for channels past C):
 *   o16 (conv1x1_*, conv2d_o*, depthwise_conv1x1_o32's 1x1): data_t
 *       filter[OC16][KH][KW][IC4 * 4][16], the 16 weights of output channels 16*og..
 *       from input channel i at tap (kh, kw); OC16 is rounded up to even so the *_o32
 *       kernels may read a pair of groups.
 *   depthwise o16 (depthwise_o16, depthwise_conv1x1_o32's depthwise):
 *       data_t filter[C16][KH][KW][16].
 *       With -DSHUFFLE_GROUPS=g, [Q][g][KH][KW][16] (Q = ceil(C / g / 16)): lane t
 *       of work-item q and run r holds channel (16 * q + t) * g + r, and so does the
 *       bias, [Q][g][16].
 *   grouped o32 (conv1x1_o32 -DGROUPED): per chunk (up to 32 output channels of one
 *       group), data_t filter[2][B][4][16] from the block holding the group's first input
 *       channel, B = ceil(C_in / G / 4) + 1 (see pack_grouped_pointwise).
 * bias: data_t[OC16 * 16] (OC16 rounded up to even), zero past C; with -DGROUPED
 *       data_t[chunks][32], each chunk's channels from lane 0. */
#include "common.h"
#include "o16.h"

#ifdef FILTER_H
#define KH FILTER_H
#define KW FILTER_W
#define UNROLL_TAPS _Pragma("unroll")
#else
#define KH filter_h
#define KW filter_w
#define UNROLL_TAPS
#endif

#define PW_PIXELS 7   /* pixels per work-item of conv1x1_o32 */
#define ROW_PIXELS 4  /* outputs along W per work-item of conv2d_o16 */
#define PAIR_PIXELS 7 /* outputs along W per work-item of conv2d_o32 */
#define DW_PIXELS 8   /* outputs along W per work-item of depthwise_o16 */

#ifdef GROUPED
#define GROUPED_PARAM , int group_in_c, int group_out_c
#else
#define GROUPED_PARAM
#endif

/* The end of a conv1x1_o32-style work-item's block of PW_PIXELS pixels from p0: the
 * residual (-DRESIDUAL) added before store16, which applies the activation (act(conv +
 * residual), the order of a Conv -> Add -> activation chain), for groups og and og + 1
 * (`second`: whether og + 1 has channels); pixels past the end are not stored. */
static inline __attribute__((always_inline)) void store_pixels32(
    __global data_t *out, float16 *acc_a, float16 *acc_b, int p0, int pixels, int og, int out_c,
    bool second RESIDUAL_PARAM, float act_alpha, float act_beta) {
  const int out_stride = channel_blocks(out_c) * 4;
  const int valid = min(PW_PIXELS, pixels - p0);
  #pragma unroll
  for (int i = 0; i < PW_PIXELS; ++i) {
    if (i < valid) {
      __global data_t *o = out + (p0 + i) * out_stride;
#ifdef RESIDUAL
      __global const data_t *r = residual + (p0 + i) * out_stride;
      acc_a[i] += load16(r, og, out_c);
      if (second) acc_b[i] += load16(r, og + 1, out_c);
#endif
      store16(o, acc_a[i], og, out_c, act_alpha, act_beta);
      if (second) store16(o, acc_b[i], og + 1, out_c, act_alpha, act_beta);
    }
  }
}

/* acc += x[c] * w[c] over the 4 lanes c of one input block; w points at 4 x 16 weights. */
inline float16 dot_block16(float16 acc, float4 x, __global const data_t *w) {
  acc = fma((float16)(x.x), LOAD16(0, w), acc);
  acc = fma((float16)(x.y), LOAD16(1, w), acc);
  acc = fma((float16)(x.z), LOAD16(2, w), acc);
  return fma((float16)(x.w), LOAD16(3, w), acc);
}

/* acc_a (and acc_b if `pair`, a constant after inlining) += the products of input blocks
 * [first_block, end_block) of the PW_PIXELS pixels x[i] with the weights from wa (wb):
 * 4 x 16 per block, one block after another. */
static inline __attribute__((always_inline)) void pointwise_blocks32(
    float16 *acc_a, float16 *acc_b, __global const data_t **x, __global const data_t *wa,
    __global const data_t *wb, int first_block, int end_block, const bool pair) {
  for (int ib = first_block; ib < end_block; ++ib) {
    const float16 a0 = LOAD16(0, wa), a1 = LOAD16(1, wa), a2 = LOAD16(2, wa), a3 = LOAD16(3, wa);
    float16 b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
    if (pair) {
      b0 = LOAD16(0, wb);
      b1 = LOAD16(1, wb);
      b2 = LOAD16(2, wb);
      b3 = LOAD16(3, wb);
    }
    #pragma unroll
    for (int i = 0; i < PW_PIXELS; ++i) {
      const float4 v = LOAD4(ib, x[i]);
      const float16 s0 = (float16)(v.x), s1 = (float16)(v.y), s2 = (float16)(v.z), s3 = (float16)(v.w);
      acc_a[i] = fma(s0, a0, acc_a[i]);
      if (pair) acc_b[i] = fma(s0, b0, acc_b[i]);
      acc_a[i] = fma(s1, a1, acc_a[i]);
      if (pair) acc_b[i] = fma(s1, b1, acc_b[i]);
      acc_a[i] = fma(s2, a2, acc_a[i]);
      if (pair) acc_b[i] = fma(s2, b2, acc_b[i]);
      acc_a[i] = fma(s3, a3, acc_a[i]);
      if (pair) acc_b[i] = fma(s3, b3, acc_b[i]);
    }
    wa += 64;
    wb += 64;
  }
}

#ifdef GROUPED
/* -DGROUPED: the 16 values from `p` (any channel), or the first `count` of them (1 to
 * 15) value by value. */
inline float16 load_lanes16(__global const data_t *p, int count) {
  if (count >= 16) return LOADU(16, p);
  float lanes[16];
  for (int l = 0; l < 16; ++l) lanes[l] = l < count ? LOAD1(l, p) : 0.0f;
  return vload16(0, lanes);
}

inline void store_lanes16(__global data_t *p, float16 v, int count) {
  if (count >= 16) {
    STOREU16(v, p);
    return;
  }
  float lanes[16];
  vstore16(v, 0, lanes);
  for (int l = 0; l < count; ++l) STORE1(lanes[l], l, p);
}

/* A grouped work-item's PW_PIXELS pixels from p0: its `count` channels from `first_c`
 * (acc_a's, then acc_b's), plus the residual, through the activation. The last channel's
 * work-item also zeroes the padding lanes of the last block. */
static inline __attribute__((always_inline)) void store_chunk32(
    __global data_t *out, float16 *acc_a, float16 *acc_b, int p0, int pixels, int first_c,
    int count, int out_c RESIDUAL_PARAM, float act_alpha, float act_beta) {
  const int out_stride = channel_blocks(out_c) * 4;
  const int valid = min(PW_PIXELS, pixels - p0);
  const bool pads = first_c + count == out_c && out_c < out_stride;
  #pragma unroll
  for (int i = 0; i < PW_PIXELS; ++i) {
    if (i < valid) {
      __global data_t *o = out + (p0 + i) * out_stride + first_c;
      float16 a = acc_a[i], b = acc_b[i];
#ifdef RESIDUAL
      __global const data_t *r = residual + (p0 + i) * out_stride + first_c;
      a += load_lanes16(r, count);
      if (count > 16) b += load_lanes16(r + 16, count - 16);
#endif
      store_lanes16(o, apply_activation16(a, act_alpha, act_beta), count);
      if (count > 16) store_lanes16(o + 16, apply_activation16(b, act_alpha, act_beta), count - 16);
      if (pads)
        for (int c = out_c; c < out_stride; ++c) STORE1(0.0f, c - first_c, o);
    }
  }
}
#endif

__kernel void conv1x1_o32(__global data_t *out, __global const data_t *in,
                          __global const data_t *filter, __global const data_t *bias,
                          int pixels, int in_c4, int out_c GROUPED_PARAM RESIDUAL_PARAM,
                          float act_alpha, float act_beta) {
  const int in_stride = in_c4 * 4;
#ifdef GROUPED
  /* Work-item column = one chunk of up to 32 output channels of one group (a group's
   * channels from 0 in chunks of 32), reading only that group's input blocks; the
   * weights of a chunk are [2][group_blocks][4][16] and its bias [32]
   * (ops/conv_kernels.py's pack_grouped_pointwise), zero outside the group's channels. */
  const int chunk = get_global_id(0);
  const int group_chunks = (group_out_c + 31) / 32;
  const int group = chunk / group_chunks;
  const int first_c = group * group_out_c + (chunk - group * group_chunks) * 32;
  const int count = min(32, (group + 1) * group_out_c - first_c);
  const int first_block = group * group_in_c / 4;
  const int end_block = channel_blocks((group + 1) * group_in_c);
  const int group_blocks = channel_blocks(group_in_c) + 1; /* what any group's channels span, at most */
  __global const data_t *w0 = filter + chunk * 2 * group_blocks * 64;
  __global const data_t *w1 = w0 + group_blocks * 64;
  const float16 bias_a = LOAD16(2 * chunk, bias), bias_b = LOAD16(2 * chunk + 1, bias);
#else
  const int og = get_global_id(0) * 2;
  const bool second = (og + 1) * 16 < out_c;  /* group og+1 may be packing only */
#ifdef BATCHED
  const int product = get_global_id(2);
  in += product * pixels * in_stride;
  out += product * pixels * channel_blocks(out_c) * 4;
  filter += product * ((out_c + 31) / 32) * 32 * in_stride; /* OC16 rounded up to even */
#endif
  const int first_block = 0, end_block = in_c4;
  __global const data_t *w0 = filter + og * in_stride * 16;
  __global const data_t *w1 = w0 + in_stride * 16;
  const float16 bias_a = LOAD16(og, bias), bias_b = LOAD16(og + 1, bias);
#endif
  /* Blocks of PW_PIXELS pixels, strided by the global size: the plan launches fewer
   * work-items than blocks when the weights outweigh the pixels, so that a work-item
   * reuses its weight columns from cache for several blocks. */
  for (int p0 = get_global_id(1) * PW_PIXELS; p0 < pixels; p0 += get_global_size(1) * PW_PIXELS) {
    float16 acc_a[PW_PIXELS], acc_b[PW_PIXELS];
    __global const data_t *x[PW_PIXELS];
    /* Pixels past the end read the last pixel instead (in bounds) and are not stored. */
    #pragma unroll
    for (int i = 0; i < PW_PIXELS; ++i) {
      acc_a[i] = bias_a;
      acc_b[i] = bias_b;
      x[i] = in + min(p0 + i, pixels - 1) * in_stride;
    }
#ifdef GROUPED
    /* A chunk of at most 16 channels (a group's last) computes acc_a alone. */
    if (count > 16)
      pointwise_blocks32(acc_a, acc_b, x, w0, w1, first_block, end_block, true);
    else
      pointwise_blocks32(acc_a, acc_b, x, w0, w1, first_block, end_block, false);
    store_chunk32(out, acc_a, acc_b, p0, pixels, first_c, count, out_c RESIDUAL_ARG, act_alpha, act_beta);
#else
    pointwise_blocks32(acc_a, acc_b, x, w0, w1, first_block, end_block, true);
    store_pixels32(out, acc_a, acc_b, p0, pixels, og, out_c, second RESIDUAL_ARG, act_alpha, act_beta);
#endif
  }
}

__kernel void conv1x1_o16_single(__global data_t *out, __global const data_t *in,
                                 __global const data_t *filter,
                                 __global const data_t *bias, int pixels, int in_c4,
                                 int out_c, float act_alpha, float act_beta) {
  const int og = get_global_id(0);
  const int p = get_global_id(1);
  __global const data_t *w = filter + og * in_c4 * 64;
  __global const data_t *x = in + p * in_c4 * 4;
  float16 acc = LOAD16(og, bias);
  for (int ib = 0; ib < in_c4; ++ib) {
    acc = dot_block16(acc, LOAD4(ib, x), w);
    w += 64;
  }
  store16(out + p * channel_blocks(out_c) * 4, acc, og, out_c, act_alpha, act_beta);
}

/* The taps of one filter row for ROW_PIXELS outputs of conv2d_o16. `checked` (a
 * constant after inlining) adds the column bounds checks that only work-items at the
 * left and right edges need; interior ones run the check-free copy. */
static inline __attribute__((always_inline)) void conv_row(
    float16 *acc, __global const data_t *row, __global const data_t *w, int iw0,
    int in_w, int in_c4, int filter_w, int stride_w, int dilation_w, const bool checked) {
  const int in_stride = in_c4 * 4;
  UNROLL_TAPS
  for (int kw = 0; kw < KW; ++kw) {
    const int iw = iw0 + kw * dilation_w;
    for (int ib = 0; ib < in_c4; ++ib) {
      #pragma unroll
      for (int i = 0; i < ROW_PIXELS; ++i) {
        const int col = iw + i * stride_w;
        float4 v = (float4)(0.0f);
        if (!checked || (col >= 0 && col < in_w)) v = LOAD4(0, row + col * in_stride + ib * 4);
        acc[i] = dot_block16(acc[i], v, w);
      }
      w += 64;
    }
  }
}

/* Whether all input columns of a work-item's `outputs` outputs lie inside the row. */
inline bool interior(int iw0, int in_w, int filter_w, int stride_w, int dilation_w, int outputs) {
  return iw0 >= 0 && iw0 + (outputs - 1) * stride_w + (KW - 1) * dilation_w < in_w;
}

__kernel void conv2d_o16(__global data_t *out, __global const data_t *in,
                         __global const data_t *filter, __global const data_t *bias,
                         int in_h, int in_w, int in_c4, int out_h, int out_w,
                         int out_c, int filter_h, int filter_w, int stride_h,
                         int stride_w, int pad_top, int pad_left, int dilation_h,
                         int dilation_w, float act_alpha, float act_beta) {
  const int og = get_global_id(0);
  const int ow0 = get_global_id(1) * ROW_PIXELS;
  const int nh = get_global_id(2);
  const int n = nh / out_h;
  const int oh = nh - n * out_h;
  const int in_stride = in_c4 * 4;

  const float16 b = LOAD16(og, bias);
  float16 acc[ROW_PIXELS];
  #pragma unroll
  for (int i = 0; i < ROW_PIXELS; ++i) acc[i] = b;
  const int ih0 = oh * stride_h - pad_top;
  const int iw0 = ow0 * stride_w - pad_left;
  const bool inside = interior(iw0, in_w, filter_w, stride_w, dilation_w, ROW_PIXELS);
  const int tap_row = KW * in_stride * 16;  /* filter values per kh */
  __global const data_t *w = filter + og * KH * tap_row;
  UNROLL_TAPS
  for (int kh = 0; kh < KH; ++kh) {
    const int ih = ih0 + kh * dilation_h;
    if (ih >= 0 && ih < in_h) {
      __global const data_t *row = in + (n * in_h + ih) * in_w * in_stride;
      if (inside)
        conv_row(acc, row, w + kh * tap_row, iw0, in_w, in_c4, filter_w, stride_w, dilation_w, false);
      else
        conv_row(acc, row, w + kh * tap_row, iw0, in_w, in_c4, filter_w, stride_w, dilation_w, true);
    }
  }
  const int out_stride = channel_blocks(out_c) * 4;
  #pragma unroll
  for (int i = 0; i < ROW_PIXELS; ++i) {
    if (ow0 + i < out_w)
      store16(out + (nh * out_w + ow0 + i) * out_stride, acc[i], og, out_c, act_alpha, act_beta);
  }
}

/* conv_row for conv2d_o32: two channel groups share every input load. `taps` (a
 * constant after inlining) is KW, or 1 for the centre tap alone. */
static inline __attribute__((always_inline)) void conv_row32(
    float16 *acc_a, float16 *acc_b, __global const data_t *row, __global const data_t *wa,
    __global const data_t *wb, int iw0, int in_w, int in_c4, int filter_w, int stride_w,
    int dilation_w, const bool checked, const int taps) {
  const int in_stride = in_c4 * 4;
  UNROLL_TAPS
  for (int kw = 0; kw < taps; ++kw) {
    const int iw = iw0 + kw * dilation_w;
    for (int ib = 0; ib < in_c4; ++ib) {
      const float16 a0 = LOAD16(0, wa), a1 = LOAD16(1, wa), a2 = LOAD16(2, wa), a3 = LOAD16(3, wa);
      const float16 b0 = LOAD16(0, wb), b1 = LOAD16(1, wb), b2 = LOAD16(2, wb), b3 = LOAD16(3, wb);
      #pragma unroll
      for (int i = 0; i < PAIR_PIXELS; ++i) {
        const int col = iw + i * stride_w;
        float4 v = (float4)(0.0f);
        if (!checked || (col >= 0 && col < in_w)) v = LOAD4(0, row + col * in_stride + ib * 4);
        const float16 s0 = (float16)(v.x), s1 = (float16)(v.y), s2 = (float16)(v.z), s3 = (float16)(v.w);
        acc_a[i] = fma(s0, a0, acc_a[i]);
        acc_b[i] = fma(s0, b0, acc_b[i]);
        acc_a[i] = fma(s1, a1, acc_a[i]);
        acc_b[i] = fma(s1, b1, acc_b[i]);
        acc_a[i] = fma(s2, a2, acc_a[i]);
        acc_b[i] = fma(s2, b2, acc_b[i]);
        acc_a[i] = fma(s3, a3, acc_a[i]);
        acc_b[i] = fma(s3, b3, acc_b[i]);
      }
      wa += 64;
      wb += 64;
    }
  }
}

__kernel void conv2d_o32(__global data_t *out, __global const data_t *in,
                         __global const data_t *filter, __global const data_t *bias,
                         int in_h, int in_w, int in_c4, int out_h, int out_w,
                         int out_c, int filter_h, int filter_w, int stride_h,
                         int stride_w, int pad_top, int pad_left, int dilation_h,
                         int dilation_w, int out_rows, int centre_pairs, float act_alpha,
                         float act_beta) {
  const int og = get_global_id(0) * 2;
  const bool centre_only = get_global_id(0) < centre_pairs;
  const int ow0 = get_global_id(1) * PAIR_PIXELS;
  const int in_stride = in_c4 * 4;
  const float16 bias_a = LOAD16(og, bias), bias_b = LOAD16(og + 1, bias);
  const int tap_row = KW * in_stride * 16;
  __global const data_t *wa = filter + og * KH * tap_row;
  __global const data_t *wb = wa + KH * tap_row;
  const int out_stride = channel_blocks(out_c) * 4;
  const bool second = (og + 1) * 16 < out_c;
  /* Output rows strided by the global size: for small outputs the plan launches fewer
   * work-items than rows, so that a work-item keeps its pair's weights in cache for
   * several rows instead of each row streaming them again. */
  for (int nh = get_global_id(2); nh < out_rows; nh += get_global_size(2)) {
  const int n = nh / out_h;
  const int oh = nh - n * out_h;
  float16 acc_a[PAIR_PIXELS], acc_b[PAIR_PIXELS];
  #pragma unroll
  for (int i = 0; i < PAIR_PIXELS; ++i) {
    acc_a[i] = bias_a;
    acc_b[i] = bias_b;
  }
  const int ih0 = oh * stride_h - pad_top;
  const int iw0 = ow0 * stride_w - pad_left;
  const bool inside = interior(iw0, in_w, filter_w, stride_w, dilation_w, PAIR_PIXELS);
  if (!centre_only) {
  UNROLL_TAPS
  for (int kh = 0; kh < KH; ++kh) {
    const int ih = ih0 + kh * dilation_h;
    if (ih >= 0 && ih < in_h) {
      __global const data_t *row = in + (n * in_h + ih) * in_w * in_stride;
      if (inside)
        conv_row32(acc_a, acc_b, row, wa + kh * tap_row, wb + kh * tap_row, iw0, in_w, in_c4, filter_w, stride_w, dilation_w, false, KW);
      else
        conv_row32(acc_a, acc_b, row, wa + kh * tap_row, wb + kh * tap_row, iw0, in_w, in_c4, filter_w, stride_w, dilation_w, true, KW);
    }
  }
  } else {
    /* A pair whose weights are zero outside the centre tap (a 1x1 merged with a wider
     * convolution by the converter): that tap alone. */
    const int ih = ih0 + (KH / 2) * dilation_h;
    if (ih >= 0 && ih < in_h) {
      __global const data_t *row = in + (n * in_h + ih) * in_w * in_stride;
      const int iw = iw0 + (KW / 2) * dilation_w;
      const int tap = (KH / 2) * tap_row + (KW / 2) * in_stride * 16;
      if (iw >= 0 && iw + (PAIR_PIXELS - 1) * stride_w < in_w)
        conv_row32(acc_a, acc_b, row, wa + tap, wb + tap, iw, in_w, in_c4, filter_w, stride_w, dilation_w, false, 1);
      else
        conv_row32(acc_a, acc_b, row, wa + tap, wb + tap, iw, in_w, in_c4, filter_w, stride_w, dilation_w, true, 1);
    }
  }
  #pragma unroll
  for (int i = 0; i < PAIR_PIXELS; ++i) {
    if (ow0 + i < out_w) {
      __global data_t *o = out + (nh * out_w + ow0 + i) * out_stride;
      store16(o, acc_a[i], og, out_c, act_alpha, act_beta);
      if (second) store16(o, acc_b[i], og + 1, out_c, act_alpha, act_beta);
    }
  }
  }
}

/* -DSHUFFLE_GROUPS=g: a work-item's 16-channel groups of the input are runs of 16
 * adjacent channels of `in` starting at any channel (see depthwise_o16), so their loads
 * assume one value's alignment and a last run of fewer than 16 channels (`extent`) is
 * read value by value. GROUP_EXTENT is what a full group has of what `extent` counts:
 * channels here, blocks without. */
#ifdef SHUFFLE_GROUPS
#ifdef DEPTHWISE_INPUT
#error "SHUFFLE_GROUPS is for depthwise_o16 alone"
#endif
/* RUN_PART(v, m): lanes m * SHUFFLE_RUN .. of v (m a constant after unrolling);
 * JOIN_RUNS(a, i, m): those lanes of every run's sums a[r][i], run after run. */
#if SHUFFLE_GROUPS == 2
#define RUNS_TO_CHANNELS(v) (v).s08192a3b4c5d6e7f
#define RUN_PART(v, m) ((m) == 0 ? (v).lo : (v).hi)
#define JOIN_RUNS(a, i, m) (float16)(RUN_PART(a[0][i], m), RUN_PART(a[1][i], m))
#elif SHUFFLE_GROUPS == 4
#define RUNS_TO_CHANNELS(v) (v).s048c159d26ae37bf
#define RUN_PART(v, m) \
  ((m) == 0 ? (v).s0123 : (m) == 1 ? (v).s4567 : (m) == 2 ? (v).s89ab : (v).scdef)
#define JOIN_RUNS(a, i, m) \
  (float16)(RUN_PART(a[0][i], m), RUN_PART(a[1][i], m), RUN_PART(a[2][i], m), RUN_PART(a[3][i], m))
#elif SHUFFLE_GROUPS == 8
#define RUNS_TO_CHANNELS(v) (v).s02468ace13579bdf
#define RUN_PART(v, m)                                                                     \
  ((m) == 0 ? (v).s01 : (m) == 1 ? (v).s23 : (m) == 2 ? (v).s45 : (m) == 3 ? (v).s67 \
   : (m) == 4 ? (v).s89 : (m) == 5 ? (v).sab : (m) == 6 ? (v).scd : (v).sef)
#define JOIN_RUNS(a, i, m)                                                              \
  (float16)(RUN_PART(a[0][i], m), RUN_PART(a[1][i], m), RUN_PART(a[2][i], m),         \
            RUN_PART(a[3][i], m), RUN_PART(a[4][i], m), RUN_PART(a[5][i], m),         \
            RUN_PART(a[6][i], m), RUN_PART(a[7][i], m))
#else
#error "SHUFFLE_GROUPS must be 2, 4 or 8"
#endif
#define SHUFFLE_RUN (16 / SHUFFLE_GROUPS)    /* lanes of each run in one output group */
#define SHUFFLE_PIXELS (16 / SHUFFLE_GROUPS) /* outputs along W per work-item: 16 float16 sums */
#define GROUP_EXTENT 16

inline float16 load_values16(__global const data_t *p, int count) {
  float lanes[16];
  for (int l = 0; l < 16; ++l) lanes[l] = l < count ? LOAD1(l, p) : 0.0f;
  return vload16(0, lanes);
}
#define LOAD_GROUP16(p) LOADU(16, p)
#define LOAD_PARTIAL_GROUP16(p, extent) load_values16(p, extent)
#else
#define GROUP_EXTENT 4
#define LOAD_GROUP16(p) LOADA16(0, p)
#define LOAD_PARTIAL_GROUP16(p, extent) load_blocks16(p, extent)
#endif

/* The taps of one filter row for `outputs` (a constant after inlining) horizontally
 * adjacent outputs of depthwise_o16 or depthwise_conv1x1_o32 (see conv_row).
 * `partial` (a constant after inlining) is for a last group with less than
 * GROUP_EXTENT: it reads only the group's `extent` blocks (runs' channels with
 * -DSHUFFLE_GROUPS), so that no read leaves the buffer. */
static inline __attribute__((always_inline)) void depthwise_row(
    float16 *acc, __global const data_t *row, __global const data_t *w, int iw0,
    int in_w, int pixel_stride, int filter_w, int stride_w, int dilation_w,
    const bool checked, const bool partial, int extent, const int outputs) {
  UNROLL_TAPS
  for (int kw = 0; kw < KW; ++kw) {
    const float16 wt = LOADA16(kw, w);
    const int iw = iw0 + kw * dilation_w;
    #pragma unroll
    for (int i = 0; i < outputs; ++i) {
      const int col = iw + i * stride_w;
      if (!checked || (col >= 0 && col < in_w)) {
        __global const data_t *p = row + col * pixel_stride;
        const float16 v =
            partial ? LOAD_PARTIAL_GROUP16(p, extent) : LOAD_GROUP16(p);
        acc[i] = fma(v, wt, acc[i]);
      }
    }
  }
}

/* Every filter row of `outputs` (a constant after inlining) horizontally adjacent
 * outputs of one 16-channel group: `image` points at that group's (first run's) channels
 * of the input image, ih0 / iw0 are the first output's top-left tap, `extent` the group's
 * blocks (channels with -DSHUFFLE_GROUPS). */
static inline __attribute__((always_inline)) void depthwise_rows(
    float16 *acc, __global const data_t *image, __global const data_t *w, int ih0, int iw0,
    int in_h, int in_w, int pixel_stride, int filter_h, int filter_w, int stride_w,
    int dilation_h, int dilation_w, int extent, const int outputs) {
  const bool inside = interior(iw0, in_w, filter_w, stride_w, dilation_w, outputs);
  const bool partial = extent < GROUP_EXTENT;
  UNROLL_TAPS
  for (int kh = 0; kh < KH; ++kh) {
    const int ih = ih0 + kh * dilation_h;
    if (ih >= 0 && ih < in_h) {
      __global const data_t *row = image + ih * in_w * pixel_stride;
      __global const data_t *wr = w + kh * KW * 16;
      /* Interior rows with the common strides get constant strides, so that the loads
       * that several taps share (neighbouring outputs overlap) are issued once. */
      if (partial)
        depthwise_row(acc, row, wr, iw0, in_w, pixel_stride, filter_w, stride_w, dilation_w, true, true, extent, outputs);
      else if (inside && stride_w == 1 && dilation_w == 1)
        depthwise_row(acc, row, wr, iw0, in_w, pixel_stride, filter_w, 1, 1, false, false, extent, outputs);
      else if (inside && stride_w == 2 && dilation_w == 1)
        depthwise_row(acc, row, wr, iw0, in_w, pixel_stride, filter_w, 2, 1, false, false, extent, outputs);
      else if (inside)
        depthwise_row(acc, row, wr, iw0, in_w, pixel_stride, filter_w, stride_w, dilation_w, false, false, extent, outputs);
      else
        depthwise_row(acc, row, wr, iw0, in_w, pixel_stride, filter_w, stride_w, dilation_w, true, false, extent, outputs);
    }
  }
}

/* With -DSHUFFLE_GROUPS=g, the input through a channel shuffle of g groups: channel c of
 * the convolved tensor is channel (c % g) * R + c / g of `in`, R = C / g. Work-item x takes
 * the 16 channels from 16 * x of each of the g runs of R channels of `in` (one float16 of
 * sums per run and output: g * SHUFFLE_PIXELS = 16 of them), which are the shuffled
 * channels (16 * x + t) * g + r: the output groups g * x .. g * x + g - 1, each made of
 * SHUFFLE_RUN lanes of every run (RUNS_TO_CHANNELS orders them). Filter and bias per
 * work-item and run, [Q][g][KH][KW][16] and [Q][g][16] (ops/shuffled_depthwise.py).
 * Global size (ceil(R / 16), ceil(OW / SHUFFLE_PIXELS), N * OH). */
__kernel void depthwise_o16(__global data_t *out, __global const data_t *in,
                            __global const data_t *filter, __global const data_t *bias,
                            int in_h, int in_w, int out_h, int out_w, int channels,
                            int filter_h, int filter_w, int stride_h, int stride_w,
                            int pad_top, int pad_left, int dilation_h,
                            int dilation_w, float act_alpha, float act_beta) {
#ifdef SHUFFLE_GROUPS
  const int pixels = SHUFFLE_PIXELS;
#else
  const int pixels = DW_PIXELS;
#endif
  const int x = get_global_id(0); /* the output group, or with SHUFFLE_GROUPS the runs' 16 channels */
  const int ow0 = get_global_id(1) * pixels;
  const int nh = get_global_id(2);
  const int n = nh / out_h;
  const int oh = nh - n * out_h;
  const int stride = channel_blocks(channels) * 4;
  __global const data_t *image = in + n * in_h * in_w * stride + x * 16;
  const int ih0 = oh * stride_h - pad_top, iw0 = ow0 * stride_w - pad_left;

#ifndef SHUFFLE_GROUPS
  const float16 b = LOAD16(x, bias);
  float16 acc[DW_PIXELS];
  #pragma unroll
  for (int i = 0; i < DW_PIXELS; ++i) acc[i] = b;
  depthwise_rows(acc, image, filter + x * KH * KW * 16, ih0, iw0, in_h, in_w, stride, filter_h,
                 filter_w, stride_w, dilation_h, dilation_w, channel_blocks(channels) - x * 4, DW_PIXELS);
  #pragma unroll
  for (int i = 0; i < DW_PIXELS; ++i) {
    if (ow0 + i < out_w)
      store16(out + (nh * out_w + ow0 + i) * stride, acc[i], x, channels, act_alpha, act_beta);
  }
#else
  const int run = channels / SHUFFLE_GROUPS;
  /* A run with fewer than 16 channels left is read 16 wide all the same: the lanes past it
   * hold the next run's channels, padding or the next pixel's, whose sums are never
   * stored. Only the last run of a work-item whose taps reach the tensor's last pixel
   * could read past the buffer; it reads its channels alone. */
  const bool at_end = n == get_global_size(2) / out_h - 1 &&
                      ih0 + (KH - 1) * dilation_h >= in_h - 1 &&
                      iw0 + (SHUFFLE_PIXELS - 1) * stride_w + (KW - 1) * dilation_w >= in_w - 1;

  float16 acc[SHUFFLE_GROUPS][SHUFFLE_PIXELS];
  #pragma unroll
  for (int r = 0; r < SHUFFLE_GROUPS; ++r) {
    const float16 b = LOAD16(x * SHUFFLE_GROUPS + r, bias);
    #pragma unroll
    for (int i = 0; i < SHUFFLE_PIXELS; ++i) acc[r][i] = b;
    const int extent = r == SHUFFLE_GROUPS - 1 && at_end ? run - x * 16 : 16;
    depthwise_rows(acc[r], image + r * run, filter + (x * SHUFFLE_GROUPS + r) * KH * KW * 16, ih0,
                   iw0, in_h, in_w, stride, filter_h, filter_w, stride_w, dilation_h, dilation_w,
                   extent, SHUFFLE_PIXELS);
  }
  #pragma unroll
  for (int i = 0; i < SHUFFLE_PIXELS; ++i) {
    if (ow0 + i >= out_w) continue;
    __global data_t *o = out + (nh * out_w + ow0 + i) * stride;
    #pragma unroll
    for (int m = 0; m < SHUFFLE_GROUPS; ++m) {
      const int og = x * SHUFFLE_GROUPS + m;
      if (og * 16 >= channels) break;
      store16(o, RUNS_TO_CHANNELS(JOIN_RUNS(acc, i, m)), og, channels, act_alpha, act_beta);
    }
  }
#endif
}

#ifdef DEPTHWISE_INPUT
#ifndef DW_ACTIVATION
#define DW_ACTIVATION ACT_NONE
#endif

/* Lane l (a constant after unrolling) of v. */
#define LANE16(v, l) (((const float *)&(v))[l])

__kernel void depthwise_conv1x1_o32(__global data_t *out, __global const data_t *in,
                                    __global const data_t *filter, __global const data_t *bias,
                                    int pixels, int in_c4, int out_c RESIDUAL_PARAM,
                                    __global const data_t *dw_filter, __global const data_t *dw_bias,
                                    int in_h, int in_w, int out_h, int out_w, int filter_h,
                                    int filter_w, int stride_h, int stride_w, int pad_top,
                                    int pad_left, int dilation_h, int dilation_w, float dw_alpha,
                                    float dw_beta, float act_alpha, float act_beta) {
  const int og = get_global_id(0) * 2;
  const int in_stride = in_c4 * 4;
  const bool second = (og + 1) * 16 < out_c; /* group og+1 may be packing only */
  const int in_c16 = (in_c4 + 3) / 4;
  const float16 bias_a = LOAD16(og, bias), bias_b = LOAD16(og + 1, bias);
  for (int p0 = get_global_id(1) * PW_PIXELS; p0 < pixels; p0 += get_global_size(1) * PW_PIXELS) {
    float16 acc_a[PW_PIXELS], acc_b[PW_PIXELS];
    #pragma unroll
    for (int i = 0; i < PW_PIXELS; ++i) {
      acc_a[i] = bias_a;
      acc_b[i] = bias_b;
    }
    /* The block's pixels in one output row (224x224 CNNs: always) share their input rows
     * and loads; otherwise each pixel is its own depthwise output. */
    const int ow0 = p0 % out_w;
    const int nh0 = p0 / out_w;
    const bool one_row = ow0 + PW_PIXELS <= out_w;
    for (int g = 0; g < in_c16; ++g) {
      const int blocks = in_c4 - g * 4;
      __global const data_t *wd = dw_filter + g * KH * KW * 16;
      const float16 b = LOAD16(g, dw_bias);
      float16 d[PW_PIXELS];
      #pragma unroll
      for (int i = 0; i < PW_PIXELS; ++i) d[i] = b;
      if (one_row) {
        const int n = nh0 / out_h;
        depthwise_rows(d, in + n * in_h * in_w * in_stride + g * 16, wd,
                       (nh0 - n * out_h) * stride_h - pad_top, ow0 * stride_w - pad_left, in_h, in_w,
                       in_stride, filter_h, filter_w, stride_w, dilation_h, dilation_w, blocks, PW_PIXELS);
      } else {
        /* Bounds-checked taps only: five copies of depthwise_rows per pixel made NVIDIA's
         * compiler take over a minute for this program. */
        const bool partial = blocks < 4;
        #pragma unroll
        for (int i = 0; i < PW_PIXELS; ++i) {
          const int p = min(p0 + i, pixels - 1);
          const int nh = p / out_w, n = nh / out_h;
          const int ih0 = (nh - n * out_h) * stride_h - pad_top;
          const int iw0 = (p - nh * out_w) * stride_w - pad_left;
          __global const data_t *image = in + n * in_h * in_w * in_stride + g * 16;
          UNROLL_TAPS
          for (int kh = 0; kh < KH; ++kh) {
            const int ih = ih0 + kh * dilation_h;
            if (ih >= 0 && ih < in_h) {
              __global const data_t *row = image + ih * in_w * in_stride;
              if (partial)
                depthwise_row(d + i, row, wd + kh * KW * 16, iw0, in_w, in_stride, filter_w, stride_w, dilation_w, true, true, blocks, 1);
              else
                depthwise_row(d + i, row, wd + kh * KW * 16, iw0, in_w, in_stride, filter_w, stride_w, dilation_w, true, false, 4, 1);
            }
          }
        }
      }
      #pragma unroll
      for (int i = 0; i < PW_PIXELS; ++i) d[i] = ACTIVATE_AS(DW_ACTIVATION, d[i], dw_alpha, dw_beta);
      /* The 1x1 over the group's channels: weight rows past in_c4 blocks do not exist
       * (their channels' depthwise outputs are never read). */
      const int lanes = min(blocks, 4) * 4;
      __global const data_t *wa = filter + (og * in_stride + g * 16) * 16;
      __global const data_t *wb = wa + in_stride * 16;
      #pragma unroll
      for (int l = 0; l < 16; ++l) {
        if (l < lanes) {
          const float16 a = LOAD16(l, wa), bw = LOAD16(l, wb);
          #pragma unroll
          for (int i = 0; i < PW_PIXELS; ++i) {
            const float16 v = (float16)(LANE16(d[i], l));
            acc_a[i] = fma(v, a, acc_a[i]);
            acc_b[i] = fma(v, bw, acc_b[i]);
          }
        }
      }
    }
    store_pixels32(out, acc_a, acc_b, p0, pixels, og, out_c, second RESIDUAL_ARG, act_alpha, act_beta);
  }
}
#endif
