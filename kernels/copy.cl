/* Data movement between NHWC4 tensors: Concat, Split, Slice, Transpose, the
 * reshape family, Identity, DepthToSpace / SpaceToDepth (ops/copy_kernels.py), and
 * channel permutations (a 1x1 Conv whose weights permute channels, ops/conv.py).
 *
 * No build options: sizes, offsets and strides are kernel arguments, so every
 * op above shares one program. Coordinates are those of the stored 4-D NCHW view
 * of each tensor (docs/memory_layout.md); one work-item writes one float4
 * channel block of the output. */
#include "common.h"

/* Element index (counting data_t values) of channel block c4 at (n, h, w) of an
 * NHWC4 tensor. */
inline int nhwc4_index(int n, int h, int w, int c4, int height, int width,
                       int channels) {
  return ((n * height + h) * width + w) * (channel_blocks(channels) << 2) + (c4 << 2);
}

/* copy_box: fill a box of the output from an affinely addressed source.
 *
 * The box starts at output coordinate (n0, c0, h0, w0), covers channels
 * [c0, c_end) and box_h rows; its other extents are in the global size
 * (channel blocks overlapping [c0, c_end), box width, box batch * box_h).
 * The source element of box-relative coordinate (n, c, h, w) is
 *   in[in_base + n*sn + c*sc + h*sh + w*sw]
 * so strides encode transposes, slice steps (possibly negative) and offsets.
 *
 * Lanes below c0 keep what an earlier launch wrote (channel Concat of inputs
 * whose C is not a multiple of 4 shares a block between two launches); lanes
 * at or past c_end are written as 0, which is the output's padding when the
 * box reaches the last channel and is overwritten by the next launch otherwise.
 * vec != 0 promises sc == 1 and 4-aligned c0 and in_base: one LOAD4. */
__kernel void copy_box(__global data_t *out, __global const data_t *in,
                       int out_h, int out_w, int out_c, int n0, int c0, int h0,
                       int w0, int c_end, int box_h, int in_base, int sn,
                       int sc, int sh, int sw, int vec) {
  const int c4 = (c0 >> 2) + get_global_id(0);
  const int bw = get_global_id(1);
  const int bn = get_global_id(2) / box_h;
  const int bh = get_global_id(2) - bn * box_h;
  const int dst = nhwc4_index(n0 + bn, h0 + bh, w0 + bw, c4, out_h, out_w, out_c);
  const int src = in_base + bn * sn + bh * sh + bw * sw;
  const int first = c4 << 2; /* channel of lane x */
  float4 v;
  if (vec) {
    v = zero_padding_lanes(LOAD4(0, in + src + (first - c0)), c4, c_end);
  } else {
    float lanes[4];
    for (int i = 0; i < 4; ++i) {
      const int c = first + i;
      lanes[i] = c < c0      ? LOAD1(dst + i, out)
                 : c < c_end ? LOAD1(src + (c - c0) * sc, in)
                             : 0.0f;
    }
    v = (float4)(lanes[0], lanes[1], lanes[2], lanes[3]);
  }
  STORE4(v, 0, out + dst);
}

/* reshape_copy: same elements, different shape. Reshape is defined on the
 * row-major NCHW order, which NHWC4 does not keep, so each output lane goes
 * through its flat logical index to the input coordinate.
 * global size (C4, W, N*H) of the output. */
__kernel void reshape_copy(__global data_t *out, __global const data_t *in,
                           int out_h, int out_w, int out_c, int in_h, int in_w,
                           int in_c) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int n = get_global_id(2) / out_h;
  const int h = get_global_id(2) - n * out_h;
  float lanes[4];
  for (int i = 0; i < 4; ++i) {
    const int c = (c4 << 2) + i;
    if (c >= out_c) {
      lanes[i] = 0.0f;
      continue;
    }
    int flat = ((n * out_c + c) * out_h + h) * out_w + w;
    const int wi = flat % in_w;
    flat /= in_w;
    const int hi = flat % in_h;
    flat /= in_h;
    const int ci = flat % in_c;
    const int ni = flat / in_c;
    lanes[i] = LOAD1(nhwc4_index(ni, hi, wi, 0, in_h, in_w, in_c) + ci, in);
  }
  const float4 v = (float4)(lanes[0], lanes[1], lanes[2], lanes[3]);
  STORE4(v, 0, out + nhwc4_index(n, h, w, c4, out_h, out_w, out_c));
}

/* depth_to_space: out[n, c, h, w] = in[n, ci, h / bs, w / bs] with
 *   DCR (crd == 0): ci = ((h % bs) * bs + w % bs) * out_c + c
 *   CRD (crd != 0): ci = (c * bs + h % bs) * bs + w % bs
 * global size (C4, W, N*H) of the output. */
__kernel void depth_to_space(__global data_t *out, __global const data_t *in,
                             int out_h, int out_w, int out_c, int block,
                             int crd) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int n = get_global_id(2) / out_h;
  const int h = get_global_id(2) - n * out_h;
  const int in_h = out_h / block, in_w = out_w / block, in_c = out_c * block * block;
  const int i = h % block, j = w % block;
  const int src = nhwc4_index(n, h / block, w / block, 0, in_h, in_w, in_c);
  float lanes[4];
  for (int l = 0; l < 4; ++l) {
    const int c = (c4 << 2) + l;
    const int ci = crd ? (c * block + i) * block + j : (i * block + j) * out_c + c;
    lanes[l] = c < out_c ? LOAD1(src + ci, in) : 0.0f;
  }
  const float4 v = (float4)(lanes[0], lanes[1], lanes[2], lanes[3]);
  STORE4(v, 0, out + nhwc4_index(n, h, w, c4, out_h, out_w, out_c));
}

/* space_to_depth: the inverse of depth_to_space in the same mode,
 *   out[n, co, h, w] = in[n, ci, h * bs + i, w * bs + j] with
 *   DCR (crd == 0): co = (i * bs + j) * in_c + ci  (the only order before onnx 1.23)
 *   CRD (crd != 0): co = (ci * bs + i) * bs + j
 * global size (C4, W, N*H) of the output. */
__kernel void space_to_depth(__global data_t *out, __global const data_t *in,
                             int out_h, int out_w, int out_c, int block, int crd) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int n = get_global_id(2) / out_h;
  const int h = get_global_id(2) - n * out_h;
  const int area = block * block;
  const int in_h = out_h * block, in_w = out_w * block, in_c = out_c / area;
  float lanes[4];
  for (int l = 0; l < 4; ++l) {
    const int c = (c4 << 2) + l;
    const int ij = crd ? c % area : c / in_c;
    const int ci = crd ? c / area : c - ij * in_c;
    const int hi = h * block + ij / block, wi = w * block + ij % block;
    lanes[l] = c < out_c ? LOAD1(nhwc4_index(n, hi, wi, 0, in_h, in_w, in_c) + ci, in) : 0.0f;
  }
  const float4 v = (float4)(lanes[0], lanes[1], lanes[2], lanes[3]);
  STORE4(v, 0, out + nhwc4_index(n, h, w, c4, out_h, out_w, out_c));
}

/* permute_channels: out[p, c] = in[p, source[c]] at every pixel p of two NHWC4 tensors
 * with `channels` channels. `source` has an entry per lane of the channel blocks (a
 * float holding an integer, as lookup tables are); padding lanes name themselves, and
 * the input's padding lanes are zero. Global size (C4, pixels). */
__kernel void permute_channels(__global data_t *out, __global const data_t *in,
                               __global const float4 *source, int channels) {
  const int c4 = get_global_id(0);
  const int base = get_global_id(1) * (channel_blocks(channels) << 2);
  const int4 c = convert_int4(source[c4]);
  const float4 v = (float4)(LOAD1(base + c.x, in), LOAD1(base + c.y, in),
                            LOAD1(base + c.z, in), LOAD1(base + c.w, in));
  STORE4(v, 0, out + base + (c4 << 2));
}

/* gather_channels: out[p, c] = input k[c] at (p, channel[c]) for every pixel p of up to
 * eight NHWC4 inputs with the same pixels (a channel Concat, Slices and a shuffle
 * composed into one pass by the converter's channel_gather pass). `source` has an entry
 * per output lane, a float holding k * 65536 + channel, or -1 for a padding lane (written
 * as 0); blocks<k> is input k's channel block count, its pixel stride in float4s. Slots
 * past the inputs repeat input 0 and are never read. Global size (C4, pixels). */
#define GATHER_CASE(k)                                               \
  case k:                                                           \
    lanes[l] = LOAD1(pixel * (blocks##k << 2) + channel, in##k);    \
    break
__kernel void gather_channels(__global data_t *out, __global const float4 *source, int out_blocks,
                              __global const data_t *in0, int blocks0,
                              __global const data_t *in1, int blocks1,
                              __global const data_t *in2, int blocks2,
                              __global const data_t *in3, int blocks3,
                              __global const data_t *in4, int blocks4,
                              __global const data_t *in5, int blocks5,
                              __global const data_t *in6, int blocks6,
                              __global const data_t *in7, int blocks7) {
  const int c4 = get_global_id(0);
  const int pixel = get_global_id(1);
  const int4 code = convert_int4(source[c4]);
  const int codes[4] = {code.x, code.y, code.z, code.w};
  float lanes[4];
  for (int l = 0; l < 4; ++l) {
    const int channel = codes[l] & 0xffff;
    lanes[l] = 0.0f;
    switch (codes[l] >> 16) {  /* -1 (padding) matches no case */
      GATHER_CASE(0);
      GATHER_CASE(1);
      GATHER_CASE(2);
      GATHER_CASE(3);
      GATHER_CASE(4);
      GATHER_CASE(5);
      GATHER_CASE(6);
      GATHER_CASE(7);
    }
  }
  const float4 v = (float4)(lanes[0], lanes[1], lanes[2], lanes[3]);
  STORE4(v, 0, out + pixel * (out_blocks << 2) + (c4 << 2));
}
#undef GATHER_CASE
