/* Convolution and fully-connected kernels for GPU devices (ops/conv.py, ops/gemm.py
 * when planning for device kind "gpu"). They expose parallelism rather than vector
 * width: thousands of thin work-items, adjacent work-items reading adjacent weights.
 *
 * Build options:
 *   -DFILTER_H=<kh> -DFILTER_W=<kw>  filter size (conv2d_gpu, depthwise_gpu; required there)
 *   -DOUT_PIXELS=<p>                 horizontally adjacent outputs per work-item of
 *                                    conv2d_gpu (1, 2 or 4; default 4)
 *   -DACTIVATION=ACT_*               fused activation (common.h)
 *
 * conv2d_gpu  group-1 convolution. One work-item computes OUT_PIXELS outputs of one
 *             float4 output channel block: global size (OC4, ceil(OW / OUT_PIXELS),
 *             N * OH), either of the first two may be rounded up (work-items past the
 *             end return). Filter layout "gpu" (ops/conv.py pack_gpu_filter): data_t
 *             filter[KH][KW][C_in4 * 4][OC4][4], the four output lanes of block ob for
 *             one input channel at one tap, so work-items ob, ob + 1, ... of a warp read
 *             consecutive vectors of 4. bias data_t[OC4 * 4] with zero padding lanes.
 * depthwise_gpu  depthwise convolution (group = C_in = C_out), one output float4 per
 *             work-item: global size (C4, OW, N * OH), the first two rounded up (work-items
 *             past the end return). Filter as conv2d.cl's depthwise_conv2d (ops/conv.py
 *             pack_depthwise_filter): data_t filter[C4][KH * KW][4]; bias data_t[C4 * 4].
 *             depthwise_conv2d's four outputs per work-item reuse loaded columns, but at
 *             batch 1 they leave a GPU with too few work-items to hide memory latency.
 * depthwise_se_gpu  depthwise_gpu's output and, from it, a squeeze-excite gate (the internal
 *             DepthwiseSqueezeExcite op) in one launch; see the kernel.
 * fc_gpu      out[row] = bias + W x[row] for few rows (fully-connected layers, 1x1
 *             convolutions of a handful of pixels). One work-group per (output block,
 *             row): its get_local_size(0) work-items (a power of two) split the input
 *             channels, then fold their partial sums in local memory. Filter data_t
 *             [OC4][C_in4 * 4][4] (ops/conv.py pack_blocked_filter with span C_in4).
 *             Global size (OC4 * L, rows), local size (L, 1), scratch L float4. */
#include "common.h"
#include "se_gate.h"

#ifdef RESIDUAL
#define RESIDUAL_PARAM , __global const data_t *residual
#else
#define RESIDUAL_PARAM
#endif

#ifdef INPUT_SCALE
#define INPUT_SCALE_PARAM , __global const data_t *input_scale
#else
#define INPUT_SCALE_PARAM
#endif

#ifdef DEPTHWISE_INPUT
#define DEPTHWISE_PARAM                                                              \
  , __global const data_t *dw_filter, __global const data_t *dw_bias, float dw_alpha, \
      float dw_beta
#ifndef DW_ACTIVATION
#define DW_ACTIVATION ACT_NONE
#endif
#else
#define DEPTHWISE_PARAM
#endif

#ifdef SOURCES
#if SOURCES < 2 || SOURCES > 8
#error "-DSOURCES takes 2 to 8 tensors"
#endif
#if !defined(POINTWISE) || defined(INPUT_SCALE)
#error "-DSOURCES needs -DPOINTWISE and no -DINPUT_SCALE"
#endif
#define SOURCES_PARAM                                                                              \
  , __global const data_t *in1, int start1, __global const data_t *in2, int start2,                \
      __global const data_t *in3, int start3, __global const data_t *in4, int start4,              \
      __global const data_t *in5, int start5, __global const data_t *in6, int start6,              \
      __global const data_t *in7, int start7
/* The source of channel block c of the concatenation: its pointer `src`, its first block
 * `begin` and its block count `blocks` (source i < SOURCES begins at block start<i>, the
 * ones past SOURCES at in_c4, so that they never match). */
#define SOURCE_OF(c, src, begin, blocks)                                                       \
  __global const data_t *src = in;                                                             \
  int begin = 0, blocks = start1;                                                              \
  SOURCE_STEP(c, src, begin, blocks, 1, start2) SOURCE_STEP(c, src, begin, blocks, 2, start3)  \
  SOURCE_STEP(c, src, begin, blocks, 3, start4) SOURCE_STEP(c, src, begin, blocks, 4, start5)  \
  SOURCE_STEP(c, src, begin, blocks, 5, start6) SOURCE_STEP(c, src, begin, blocks, 6, start7)  \
  SOURCE_STEP(c, src, begin, blocks, 7, in_c4)
#define SOURCE_STEP(c, src, begin, blocks, i, next)                                            \
  if ((c) >= start##i) {                                                                       \
    src = in##i;                                                                               \
    begin = start##i;                                                                          \
    blocks = (next) - start##i;                                                                \
  }
#else
#define SOURCES_PARAM
#endif

#ifndef OUT_PIXELS
#define OUT_PIXELS 4
#endif

#ifdef FILTER_H
__kernel void conv2d_gpu(__global data_t *out, __global const data_t *in,
                         __global const data_t *filter,
                         __global const data_t *bias, int in_h, int in_w,
                         int in_c4, int out_h, int out_w, int out_c,
                         int filter_h, int filter_w, int stride_h, int stride_w,
                         int pad_top, int pad_left, int dilation_h,
                         int dilation_w, float act_alpha, float act_beta) {
  const int ob = get_global_id(0);
  const int ow0 = get_global_id(1) * OUT_PIXELS;
  const int nh = get_global_id(2);
  const int out_c4 = channel_blocks(out_c);
  if (ob >= out_c4 || ow0 >= out_w) return;
  const int n = nh / out_h;
  const int oh = nh - n * out_h;

  float4 acc[OUT_PIXELS];
  const float4 b = LOADA4(ob, bias);
#pragma unroll
  for (int p = 0; p < OUT_PIXELS; ++p) acc[p] = b;

  const int ih0 = oh * stride_h - pad_top;
  const int iw0 = ow0 * stride_w - pad_left;
  const int tap_stride = in_c4 * 4 * out_c4; /* vectors of 4 per tap */
  for (int kh = 0; kh < FILTER_H; ++kh) {
    const int ih = ih0 + kh * dilation_h;
    if (ih < 0 || ih >= in_h) continue;
    __global const data_t *row = in + (n * in_h + ih) * in_w * in_c4 * 4;
    for (int kw = 0; kw < FILTER_W; ++kw) {
      const int iw = iw0 + kw * dilation_w;
      __global const data_t *x[OUT_PIXELS];
      bool inside[OUT_PIXELS];
#pragma unroll
      for (int p = 0; p < OUT_PIXELS; ++p) {
        const int col = iw + p * stride_w;
        inside[p] = col >= 0 && col < in_w;
        x[p] = row + (inside[p] ? col : 0) * in_c4 * 4;
      }
      __global const data_t *w = filter + ((kh * FILTER_W + kw) * tap_stride + ob) * 4;
      for (int ib = 0; ib < in_c4; ++ib) {
        const float4 w0 = LOADA4(0, w);
        const float4 w1 = LOADA4(out_c4, w);
        const float4 w2 = LOADA4(2 * out_c4, w);
        const float4 w3 = LOADA4(3 * out_c4, w);
        w += 16 * out_c4;
#pragma unroll
        for (int p = 0; p < OUT_PIXELS; ++p) {
          const float4 v = inside[p] ? LOADA4(ib, x[p]) : (float4)(0.0f);
          acc[p] += v.x * w0 + v.y * w1 + v.z * w2 + v.w * w3;
        }
      }
    }
  }

  const int base = (nh * out_w + ow0) * out_c4 + ob;
#pragma unroll
  for (int p = 0; p < OUT_PIXELS; ++p) {
    if (ow0 + p < out_w) {
      const float4 v = zero_padding_lanes(apply_activation(acc[p], act_alpha, act_beta), ob, out_c);
      STORE4(v, base + p * out_c4, out);
    }
  }
}

/* Output float4 (n, oh, ow, block cb) of a depthwise convolution, activated, padding lanes
 * zero (depthwise_gpu, depthwise_se_gpu). */
inline float4 depthwise_output(__global const data_t *in, __global const data_t *filter,
                               __global const data_t *bias, int n, int oh, int ow, int cb, int in_h, int in_w,
                               int channels, int stride_h, int stride_w, int pad_top, int pad_left,
                               int dilation_h, int dilation_w, float act_alpha, float act_beta) {
  const int c4 = channel_blocks(channels);
  float4 acc = LOADA4(cb, bias);
  __global const data_t *w = filter + cb * FILTER_H * FILTER_W * 4;
  const int ih0 = oh * stride_h - pad_top;
  const int iw0 = ow * stride_w - pad_left;
#pragma unroll
  for (int kh = 0; kh < FILTER_H; ++kh) {
    const int ih = ih0 + kh * dilation_h;
    if (ih < 0 || ih >= in_h) continue;
    __global const data_t *row = in + (n * in_h + ih) * in_w * c4 * 4;
#pragma unroll
    for (int kw = 0; kw < FILTER_W; ++kw) {
      const int iw = iw0 + kw * dilation_w;
      if (iw >= 0 && iw < in_w) acc += LOADA4(iw * c4 + cb, row) * LOADA4(kh * FILTER_W + kw, w);
    }
  }
  return zero_padding_lanes(apply_activation(acc, act_alpha, act_beta), cb, channels);
}

__kernel void depthwise_gpu(__global data_t *out, __global const data_t *in,
                            __global const data_t *filter, __global const data_t *bias,
                            int in_h, int in_w, int out_h, int out_w, int channels,
                            int filter_h, int filter_w, int stride_h, int stride_w,
                            int pad_top, int pad_left, int dilation_h, int dilation_w,
                            float act_alpha, float act_beta) {
  const int cb = get_global_id(0);
  const int ow = get_global_id(1);
  const int nh = get_global_id(2);
  const int c4 = channel_blocks(channels);
  if (cb >= c4 || ow >= out_w) return;
  const int n = nh / out_h;
  const int oh = nh - n * out_h;
  const float4 v = depthwise_output(in, filter, bias, n, oh, ow, cb, in_h, in_w, channels, stride_h, stride_w,
                                    pad_top, pad_left, dilation_h, dilation_w, act_alpha, act_beta);
  STORE4(v, (nh * out_w + ow) * c4 + cb, out);
}

/* depthwise_se_gpu: depthwise_gpu's output `out` (arguments up to act_beta as there) and
 * the squeeze-excite gate of that output (pooling.cl's se_squeeze -DSE_LAST_GROUP, from
 * `gate` on, its activations -DHIDDEN_ACTIVATION and -DGATE_ACTIVATION) in one launch.
 * Work-group (g, q, n), local size (G, P, 1) with G a power of two dividing it and P
 * a power of two, computes channel blocks [g * G, (g + 1) * G) at output pixels [q * P,
 * (q + 1) * P) of image n, sums them per block over its pixels and writes, per hidden row
 * r, those sums times w1's columns to partial[(n * count + q * groups + g) * hidden_size +
 * r] (count: the work-groups per image); the image's last work-group (arrivals[n], zero
 * before and after) adds them up into the gate (se_gate.h). Global size (groups * G,
 * ceil(OH * OW / P) * P, N). Local memory: sums (G * P float4), hidden (hidden_size
 * floats), row_sums (G * P floats). */
/* -DSE_LOCAL_X, -DSE_LOCAL_Y: the local size (G, P), required, so that the compiler keeps
 * the kernel within the registers a work-group of G * P work-items has; without them there
 * is no depthwise_se_gpu. */
#ifdef SE_LOCAL_X
__kernel __attribute__((reqd_work_group_size(SE_LOCAL_X, SE_LOCAL_Y, 1)))
void depthwise_se_gpu(__global data_t *out, __global const data_t *in,
                               __global const data_t *filter, __global const data_t *bias, int in_h,
                               int in_w, int out_h, int out_w, int channels, int filter_h,
                               int filter_w, int stride_h, int stride_w, int pad_top, int pad_left,
                               int dilation_h, int dilation_w, float act_alpha, float act_beta,
                               __global data_t *gate, __global const data_t *w1,
                               __global const data_t *b1, int hidden_size, float hidden_alpha,
                               float hidden_beta, __global const data_t *w2,
                               __global const data_t *b2, int out_channels, float gate_alpha,
                               float gate_beta, int row_slices, int out_group_blocks,
                               __global float *partial, __global int *arrivals,
                               __local float4 *sums, __local float *hidden,
                               __local float *row_sums) {
  __local int arrived; /* image n's arrival count before this group's */
  const int group_blocks = get_local_size(0), slices = get_local_size(1);
  const int c = get_local_id(0), k = get_local_id(1);
  const int lid = k * group_blocks + c, size = group_blocks * slices;
  const int cb = get_global_id(0), pixel = get_global_id(1), n = get_global_id(2);
  const int c4 = channel_blocks(channels);
  const int pixels = out_h * out_w;
  float4 v = (float4)(0.0f);
  if (cb < c4 && pixel < pixels) {
    const int oh = pixel / out_w, ow = pixel - oh * out_w;
    v = depthwise_output(in, filter, bias, n, oh, ow, cb, in_h, in_w, channels, stride_h, stride_w, pad_top,
                         pad_left, dilation_h, dilation_w, act_alpha, act_beta);
    STORE4(v, (n * pixels + pixel) * c4 + cb, out);
  }
  sums[lid] = v;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int step = slices >> 1; step > 0; step >>= 1) {
    if (k < step) sums[lid] += sums[lid + step * group_blocks];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  const int g = get_group_id(0), groups = get_num_groups(0);
  const int count = groups * get_num_groups(1);
  const int first = g * group_blocks, width = min(group_blocks, c4 - first);
  __global float *image = partial + n * count * hidden_size;
  se_partials(lid, size, image + (get_group_id(1) * groups + g) * hidden_size, w1, c4, first, width,
              hidden_size, sums);
  if (!se_last_arrival(lid, arrivals, n, count, &arrived)) return; /* not the last of image n */
  se_hidden(lid, size, image, count, pixels, b1, hidden_size, hidden_alpha, hidden_beta, row_slices,
            hidden, row_sums);
  se_gate_blocks(lid, size, gate, n, w2, b2, hidden_size, out_channels, gate_alpha, gate_beta,
                 out_group_blocks, 0, 1, hidden, sums);
}
#endif /* SE_LOCAL_X */
#endif

__kernel void fc_gpu(__global data_t *out, __global const data_t *in,
                     __global const data_t *filter, __global const data_t *bias,
                     int in_c4, int out_c, float act_alpha, float act_beta,
                     __local float4 *scratch) {
  const int lane = get_local_id(0);
  const int lanes = get_local_size(0);
  const int ob = get_group_id(0);
  const int row = get_global_id(1);
  const int out_c4 = channel_blocks(out_c);
  __global const data_t *x = in + row * in_c4 * 4;
  __global const data_t *w = filter + ob * in_c4 * 16;
  float4 acc = (float4)(0.0f);
  for (int ib = lane; ib < in_c4; ib += lanes) {
    const float4 v = LOADA4(ib, x);
    acc += v.x * LOADA4(4 * ib, w) + v.y * LOADA4(4 * ib + 1, w) + v.z * LOADA4(4 * ib + 2, w) +
           v.w * LOADA4(4 * ib + 3, w);
  }
  scratch[lane] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int stride = lanes >> 1; stride > 0; stride >>= 1) {
    if (lane < stride) scratch[lane] += scratch[lane + stride];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lane == 0) {
    const float4 v = scratch[0] + LOADA4(ob, bias);
    STORE4(zero_padding_lanes(apply_activation(v, act_alpha, act_beta), ob, out_c),
           row * out_c4 + ob, out);
  }
}

/* conv2d_gpu_tiled  group-1 convolution as an implicit GEMM: output pixels (rows, the
 *             flattened N*OH*OW) times output channels (columns) over K = taps * C_in.
 *             conv2d_gpu has every work-item stream its inputs and weights from global
 *             memory (L1/L2) for a few outputs; here a work-group loads each K step's
 *             input patch and weight slice into __local memory once, then every
 *             work-item reuses each loaded float4 for ITEM_M * ITEM_N outputs.
 *
 *   Build options (all required): -DTILE_M=<pixels per work-group>
 *     -DTILE_N=<float4 output blocks per work-group> -DITEM_M=<pixels per work-item>
 *     -DITEM_N=<output blocks per work-item> -DCHUNK=<input channel blocks per K step>
 *   with ITEM_M | TILE_M and ITEM_N | TILE_N; -DPOINTWISE for a 1x1, stride 1, unpadded
 *   convolution (a plain GEMM: pixel m's inputs are row m of the input, no tap
 *   coordinates or bounds per load); -DRESIDUAL: one more argument after out_c,
 *   `residual`, a tensor shaped like the output added before the activation (a residual
 *   Add fused by the converter); -DINPUT_SCALE: one more argument after that,
 *   `input_scale`, an [N][C_in4] tensor (NHWC4 of [N, C_in, 1, 1]) that multiplies each
 *   input channel as it is loaded (a squeeze-excite gate folded in by the converter);
 *   -DDEPTHWISE_INPUT (not with -DPOINTWISE or -DINPUT_SCALE): a 1x1 convolution of the
 *   output of a depthwise convolution of `in`, computed as it is loaded (SeparableConv):
 *   four more arguments after those, dw_filter (layout as depthwise_gpu's), dw_bias,
 *   dw_alpha, dw_beta, with -DDW_ACTIVATION=ACT_* its activation; in_h, in_w and the
 *   window arguments then describe the depthwise convolution, out_h, out_w both. The
 *   depthwise output never goes to memory: one launch instead of two, at the price of
 *   computing it again for every TILE_N output blocks. -DSOURCES=<k> (with -DPOINTWISE,
 *   not -DINPUT_SCALE; 2 to 8): the input is the channel concatenation of k tensors with
 *   the same pixels (GatherConv), `in` the first; fourteen more arguments after those,
 *   in1, start1, ..., in7, start7: source i and the block of the concatenation it begins
 *   at (in_c4, the concatenation's blocks, for the slots past k, whose pointers are never
 *   read).
 *   Local size (TILE_N / ITEM_N,
 *   TILE_M / ITEM_M[, 1]), required; global size (ceil(OC4 / TILE_N) * local[0],
 *   ceil(pixels / TILE_M) * local[1][, slices]) (the third dimension with -DSPLIT_K).
 *   -DSPLIT_K: the K steps are cut into slices of `slice_steps`, one per index of the
 *   third global dimension; two more arguments, last: slice_steps and `partial`, a float4
 *   scratch buffer [slices][pixels][OC4] where each work-group writes its slice's raw
 *   sums. For the late layers of a batch-1 CNN (49 pixels, K of thousands), whose few
 *   output tiles would otherwise leave most of the GPU idle. Then either
 *   conv2d_gpu_split_sum adds the slices, bias, residual and activation in a second
 *   launch (RESIDUAL and ACTIVATION apply to that one), or, with -DSPLIT_K_LAST_GROUP,
 *   the work-group that finishes a tile last does, in this launch: one more argument,
 *   `arrivals`, one int per output tile (the first two global dimensions' work-groups),
 *   zero before the launch; each group counts itself there after its sums, the last one
 *   adds the slices in slice order and sets the count back to zero for the next launch.
 *   That needs DEVICE_FENCE (common.h) to order a work-item's stores for every
 *   work-group, which plans ask for only where it is known to (PlanContext.device_fence):
 *   on NVIDIA's OpenCL each launch saved is ~10 us of host time, more than the sum's work.
 *   Filter layout "gpu" as for conv2d_gpu (rows of OC4 vectors of 4, one per input
 *   channel and tap: a K x OC matrix), bias as there.
 *
 *   Work-item (tx, ty) owns pixels m0 + ty + r * LY and blocks ob0 + tx + s * LX:
 *   interleaved rather than contiguous so that neighbouring work-items read
 *   neighbouring __local float4s (no bank conflicts) and write neighbouring output
 *   float4s (coalesced). The next K step's global loads are issued into registers
 *   before the current step's arithmetic, so their latency overlaps it. */
#ifdef TILE_M
#define TILE_LX (TILE_N / ITEM_N)
#define TILE_LY (TILE_M / ITEM_M)
#define TILE_ITEMS (TILE_LX * TILE_LY)
#define X_TILE (TILE_M * CHUNK)     /* input float4s per K step */
#define W_TILE (CHUNK * 4 * TILE_N) /* weight float4s per K step */
#define X_LOADS ((X_TILE + TILE_ITEMS - 1) / TILE_ITEMS)
#define W_LOADS ((W_TILE + TILE_ITEMS - 1) / TILE_ITEMS)
/* Added to the row of a pixel past the end: every tap's row is then negative. */
#define OUTSIDE_ROW (-0x40000000)

/* -DMMA_TF32 (with -DMMA_WARPS_M=<warps along the pixels>): conv2d_gpu_tiled computes
 * each K step on tensor cores, PTX's mma.sync m16n8k8 with TF32 operands and float32
 * sums, instead of float FMAs. The work-group's TILE_ITEMS / 32 warps split the
 * TILE_M x 4*TILE_N output tile in MMA_WARPS_M x MMA_WARPS_N parts of MMA_TILES_M x
 * MMA_TILES_N mma tiles (16 pixels x 8 channels each). Operands are rounded to TF32 (10
 * mantissa bits, round to nearest, ties away from zero, as cvt.rna) when they are stored
 * in __local memory; each product of two TF32 values is exact in float32, so the result
 * differs from the float32 one by at most 2^-10 * sum |x * w| plus float32's own
 * summation error. Plans choose it only where the device runs the instruction and the
 * model's data type allows it (PlanContext.tf32_mma); other OpenCL compilers get an
 * emulation of the same fragments through __local memory, so that the tile logic is
 * tested on CPU devices too. Local ids must map to lanes as lid % 32 (NVIDIA's do). */
#ifdef MMA_TF32
#define MMA_WARPS (TILE_LX * TILE_LY / 32)
#define MMA_WARPS_N (MMA_WARPS / MMA_WARPS_M)
#define MMA_TILES_M (TILE_M / 16 / MMA_WARPS_M) /* 16-pixel mma rows per warp */
#define MMA_TILES_N (TILE_N / 2 / MMA_WARPS_N)  /* 8-channel mma columns per warp */
#if MMA_WARPS % MMA_WARPS_M || MMA_TILES_M * 16 * MMA_WARPS_M != TILE_M || \
    MMA_TILES_N * 2 * MMA_WARPS_N != TILE_N || MMA_WARPS * 32 != TILE_LX * TILE_LY || CHUNK % 2
#error "MMA_TF32: the tile does not split into whole mma tiles per warp"
#endif
/* __local rows of weights get 2 float4s of padding: a fragment's four k rows then start
 * in different banks. */
#define W_PAD 2
/* Pixel rows of the tile's float32 sums, padded likewise. */
#define C_STRIDE (TILE_N * 4 + 4)

inline float4 round_tf32(float4 v) {
  /* A NaN stays one: adding to NVIDIA's 0x7fffffff would carry into the sign and leave 0. */
  const float4 rounded = as_float4((as_uint4(v) + (uint4)(0x1000u)) & (uint4)(0xffffe000u));
  return select(rounded, v, isnan(v));
}
#define TO_OPERAND(v) round_tf32(v)

#ifdef PTX_TARGET
/* d += a b over one 16x8x8 tile: a (16x8, row major) and b (8x8, column major) as PTX
 * lays their fragments out over the warp's lanes. */
#define MMA_16X8X8(d, a, b)                                                           \
  __asm__("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, "     \
          "{%4, %5, %6, %7}, {%8, %9}, {%10, %11, %12, %13};"                         \
          : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])                            \
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),         \
            "f"(d[0]), "f"(d[1]), "f"(d[2]), "f"(d[3]))
#else
/* The same through __local memory: every lane posts its fragments, then reads the rows
 * and columns of its four sums from the lanes that hold them. Called by every work-item
 * of the group alike (it has barriers). */
inline void mma_16x8x8_emulated(float *d, const uint *a, const uint *b, int lane,
                                __local float *exchange) {
  __local float *mine = exchange + lane * 6;
  for (int i = 0; i < 4; ++i) mine[i] = as_float(a[i]);
  mine[4] = as_float(b[0]);
  mine[5] = as_float(b[1]);
  barrier(CLK_LOCAL_MEM_FENCE);
  const int g = lane >> 2, t = lane & 3;
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >> 1) * 8; /* d[i] is (row, col) of the 16x8 tile */
    const int col = 2 * t + (i & 1);
    float sum = d[i];
    for (int k = 0; k < 8; ++k) {
      /* a_j of lane (row % 8) * 4 + k % 4 holds A[row][k], j = (row >= 8) + 2 (k >= 4);
       * b_j of lane col * 4 + k % 4 holds B[k][col], j = (k >= 4). */
      const float x = exchange[((row & 7) * 4 + (k & 3)) * 6 + (row >> 3) + 2 * (k >> 2)];
      const float w = exchange[(col * 4 + (k & 3)) * 6 + 4 + (k >> 2)];
      sum += x * w;
    }
    d[i] = sum;
  }
  barrier(CLK_LOCAL_MEM_FENCE);
}
#define MMA_16X8X8(d, a, b) mma_16x8x8_emulated(d, a, b, lane, mma_exchange[warp])
#endif
#else
#define W_PAD 0
#define TO_OPERAND(v) (v)
#endif

#if defined(SPLIT_K) && defined(SPLIT_K_LAST_GROUP)
#define SLICE_PARAM , int slice_steps, __global float4 *partial, __global int *arrivals
#elif defined(SPLIT_K)
#define SLICE_PARAM , int slice_steps, __global float4 *partial
#else
#define SLICE_PARAM
#endif

__kernel __attribute__((reqd_work_group_size(TILE_LX, TILE_LY, 1)))
void conv2d_gpu_tiled(__global data_t *out, __global const data_t *in,
                      __global const data_t *filter,
                      __global const data_t *bias, int pixels, int in_h,
                      int in_w, int in_c4, int out_h, int out_w,
                      int out_c RESIDUAL_PARAM INPUT_SCALE_PARAM DEPTHWISE_PARAM SOURCES_PARAM,
                      int filter_h, int filter_w, int stride_h, int stride_w,
                      int pad_top, int pad_left, int dilation_h,
                      int dilation_w, float act_alpha, float act_beta SLICE_PARAM) {
  /* +1: the loads below store along a column (stride TILE_M float4s); the padding
   * spreads one column's float4s over different banks. */
  __local float4 xs[CHUNK][TILE_M + 1];
  __local float4 ws[CHUNK * 4][TILE_N + W_PAD];
#ifdef MMA_TF32
  __local float4 sums[TILE_M * C_STRIDE / 4]; /* the warps' sums, for the stores below */
#ifndef PTX_TARGET
  __local float mma_exchange[MMA_WARPS][32 * 6];
#endif
#endif
#ifdef SPLIT_K_LAST_GROUP
  __local int arrived; /* the tile's arrival count before this group's */
#endif

  const int tx = get_local_id(0);
  const int ty = get_local_id(1);
  const int lid = ty * TILE_LX + tx;
  const int ob0 = get_group_id(0) * TILE_N;
  const int m0 = get_group_id(1) * TILE_M;
  const int out_c4 = channel_blocks(out_c);
  const int out_hw = out_h * out_w;

  /* Input loads: float4 e = lid + j * TILE_ITEMS of the tile is channel block
   * e % CHUNK of pixel e / CHUNK, so consecutive work-items read consecutive float4s
   * of a pixel. The pixel's coordinates don't change between K steps: compute once. */
  int x_n[X_LOADS], x_row0[X_LOADS], x_col0[X_LOADS], x_cb[X_LOADS];
#ifdef INPUT_SCALE
  int x_image[X_LOADS]; /* the batch index of the pixel, for input_scale */
#endif
#pragma unroll
  for (int j = 0; j < X_LOADS; ++j) {
    const int e = lid + j * TILE_ITEMS;
    const int m = m0 + e / CHUNK;
    x_cb[j] = e % CHUNK;
#ifdef INPUT_SCALE
    x_image[j] = m / out_hw;
#endif
#ifdef POINTWISE
    x_n[j] = e < X_TILE && m < pixels ? m : -1; /* the input row, or -1: no load */
#else
    const int n = m / out_hw;
    const int rest = m - n * out_hw;
    const int oh = rest / out_w;
    x_n[j] = n;
    /* x_row0 + kh * dilation_h is the input row of tap row kh; a pixel past the end
     * (or a float4 past the tile) gets a row that fails every bounds check. */
    x_row0[j] = e < X_TILE && m < pixels ? oh * stride_h - pad_top : OUTSIDE_ROW;
    x_col0[j] = (rest - oh * out_w) * stride_w - pad_left;
#endif
  }

  float4 acc[ITEM_M * ITEM_N];
#pragma unroll
  for (int i = 0; i < ITEM_M * ITEM_N; ++i) acc[i] = (float4)(0.0f);
#ifdef MMA_TF32
  const int warp = lid / 32;
  const int lane = lid % 32;
  const int warp_m = warp % MMA_WARPS_M; /* this warp's part of the tile */
  const int warp_n = warp / MMA_WARPS_M;
  float mma_acc[MMA_TILES_M * MMA_TILES_N][4];
#pragma unroll
  for (int i = 0; i < MMA_TILES_M * MMA_TILES_N; ++i)
    mma_acc[i][0] = mma_acc[i][1] = mma_acc[i][2] = mma_acc[i][3] = 0.0f;
#endif

  const int chunks = (in_c4 + CHUNK - 1) / CHUNK;
#if defined(POINTWISE) || defined(DEPTHWISE_INPUT)
  const int steps = chunks;
#else
  const int steps = filter_h * filter_w * chunks;
#endif
#ifdef SPLIT_K
  const int first = get_group_id(2) * slice_steps;
  const int last = min(first + slice_steps, steps);
#else
  const int first = 0;
  const int last = steps;
#endif
  const int k_rows = in_c4 * 4; /* weight rows per tap */
  raw4_t wr[W_LOADS]; /* the next step's values, as loaded (common.h) */
#ifdef DEPTHWISE_INPUT
  float4 xr[X_LOADS]; /* computed: the depthwise convolution's output */
#define X_UNPACK(v) (v)
#ifdef FILTER_H /* a constant filter size: the tap loops unroll */
#define DW_FILTER_H FILTER_H
#define DW_FILTER_W FILTER_W
#else
#define DW_FILTER_H filter_h
#define DW_FILTER_W filter_w
#endif
#else
  raw4_t xr[X_LOADS];
#define X_UNPACK(v) UNPACK4(v)
#endif
#ifdef INPUT_SCALE
  float4 xscale[X_LOADS]; /* their input channels' scales; 0 where nothing was loaded */
#endif

  /* Iteration s loads step s into registers, computes step s - 1 from __local
   * memory, then stores the registers there. The barriers depend only on s, so every
   * work-item of the group reaches them. */
  for (int s = first; s <= last; ++s) {
    if (s < last) {
      const int tap = s / chunks;
      const int c0 = (s - tap * chunks) * CHUNK;
      const int kh = tap / filter_w;
      const int kw = tap - kh * filter_w;
#ifdef POINTWISE
#pragma unroll
      for (int j = 0; j < X_LOADS; ++j) {
        const int c = c0 + x_cb[j];
        const bool ok = x_n[j] >= 0 && c < in_c4;
#ifdef SOURCES
        SOURCE_OF(c, src, begin, blocks);
        xr[j] = ok ? RAW_LOADA4(x_n[j] * blocks + c - begin, src) : (raw4_t)(0);
#else
        xr[j] = ok ? RAW_LOADA4(x_n[j] * in_c4 + c, in) : (raw4_t)(0);
#endif
#ifdef INPUT_SCALE
        xscale[j] = ok ? LOADA4(x_image[j] * in_c4 + c, input_scale) : (float4)(0.0f);
#endif
      }
#elif defined(DEPTHWISE_INPUT)
#pragma unroll
      for (int j = 0; j < X_LOADS; ++j) {
        const int c = c0 + x_cb[j];
        float4 v = (float4)(0.0f);
        if (c < in_c4) {
          v = LOADA4(c, dw_bias);
          __global const data_t *wd = dw_filter + c * DW_FILTER_H * DW_FILTER_W * 4;
#pragma unroll
          for (int dh = 0; dh < DW_FILTER_H; ++dh) {
            const int ih = x_row0[j] + dh * dilation_h;
            if (ih < 0 || ih >= in_h) continue;
            __global const data_t *row = in + (x_n[j] * in_h + ih) * in_w * in_c4 * 4;
#pragma unroll
            for (int dw = 0; dw < DW_FILTER_W; ++dw) {
              const int iw = x_col0[j] + dw * dilation_w;
              if (iw >= 0 && iw < in_w) v += LOADA4(iw * in_c4 + c, row) * LOADA4(dh * DW_FILTER_W + dw, wd);
            }
          }
          v = ACTIVATE_AS(DW_ACTIVATION, v, dw_alpha, dw_beta);
        }
        xr[j] = v;
      }
#else
#pragma unroll
      for (int j = 0; j < X_LOADS; ++j) {
        const int ih = x_row0[j] + kh * dilation_h;
        const int iw = x_col0[j] + kw * dilation_w;
        const int c = c0 + x_cb[j];
        const bool ok = ih >= 0 && ih < in_h && iw >= 0 && iw < in_w && c < in_c4;
        xr[j] = ok ? RAW_LOADA4(((x_n[j] * in_h + ih) * in_w + iw) * in_c4 + c, in) : (raw4_t)(0);
#ifdef INPUT_SCALE
        xscale[j] = ok ? LOADA4(x_n[j] * in_c4 + c, input_scale) : (float4)(0.0f);
#endif
      }
#endif
      __global const data_t *w_tap = filter + ((tap * k_rows + c0 * 4) * out_c4 + ob0) * 4;
#pragma unroll
      for (int j = 0; j < W_LOADS; ++j) {
        const int e = lid + j * TILE_ITEMS;
        const int k = e / TILE_N;
        const int o = e % TILE_N;
        const bool ok = e < W_TILE && c0 * 4 + k < k_rows && ob0 + o < out_c4;
        wr[j] = ok ? RAW_LOADA4(k * out_c4 + o, w_tap) : (raw4_t)(0);
      }
    }
#ifdef MMA_TF32
    if (s > first) {
      /* Fragments (PTX's m16n8k8 layout): lane = 4 g + t holds A rows g, g + 8 at k = t,
       * t + 4 (pixels, input channels) and B column g at k = t, t + 4 (output channel). */
      __local const float *xf = (__local const float *)xs;
      __local const float *wf = (__local const float *)ws;
      const int g = lane >> 2, t = lane & 3;
#pragma unroll
      for (int k8 = 0; k8 < CHUNK / 2; ++k8) {
        uint a[MMA_TILES_M][4], b[MMA_TILES_N][2];
#pragma unroll
        for (int i = 0; i < MMA_TILES_M; ++i) {
          const int row = (warp_m * MMA_TILES_M + i) * 16 + g;
          a[i][0] = as_uint(xf[((2 * k8) * (TILE_M + 1) + row) * 4 + t]);
          a[i][1] = as_uint(xf[((2 * k8) * (TILE_M + 1) + row + 8) * 4 + t]);
          a[i][2] = as_uint(xf[((2 * k8 + 1) * (TILE_M + 1) + row) * 4 + t]);
          a[i][3] = as_uint(xf[((2 * k8 + 1) * (TILE_M + 1) + row + 8) * 4 + t]);
        }
#pragma unroll
        for (int j = 0; j < MMA_TILES_N; ++j) {
          const int col = (warp_n * MMA_TILES_N + j) * 8 + g;
          b[j][0] = as_uint(wf[(8 * k8 + t) * (TILE_N + W_PAD) * 4 + col]);
          b[j][1] = as_uint(wf[(8 * k8 + t + 4) * (TILE_N + W_PAD) * 4 + col]);
        }
#pragma unroll
        for (int i = 0; i < MMA_TILES_M; ++i)
#pragma unroll
          for (int j = 0; j < MMA_TILES_N; ++j) MMA_16X8X8(mma_acc[i * MMA_TILES_N + j], a[i], b[j]);
      }
    }
#else
    if (s > first) {
#pragma unroll
      for (int c = 0; c < CHUNK; ++c) {
        float4 xv[ITEM_M];
#pragma unroll
        for (int r = 0; r < ITEM_M; ++r) xv[r] = xs[c][ty + r * TILE_LY];
#pragma unroll
        for (int q = 0; q < ITEM_N; ++q) {
          const float4 w0 = ws[4 * c][tx + q * TILE_LX];
          const float4 w1 = ws[4 * c + 1][tx + q * TILE_LX];
          const float4 w2 = ws[4 * c + 2][tx + q * TILE_LX];
          const float4 w3 = ws[4 * c + 3][tx + q * TILE_LX];
#pragma unroll
          for (int r = 0; r < ITEM_M; ++r)
            acc[r * ITEM_N + q] += xv[r].x * w0 + xv[r].y * w1 + xv[r].z * w2 + xv[r].w * w3;
        }
      }
    }
#endif
    if (s < last) {
      barrier(CLK_LOCAL_MEM_FENCE); /* everyone is done reading step s - 1 */
#pragma unroll
      for (int j = 0; j < X_LOADS; ++j) {
        const int e = lid + j * TILE_ITEMS;
#ifdef INPUT_SCALE
        if (e < X_TILE) xs[e % CHUNK][e / CHUNK] = TO_OPERAND(UNPACK4(xr[j]) * xscale[j]);
#else
        if (e < X_TILE) xs[e % CHUNK][e / CHUNK] = TO_OPERAND(X_UNPACK(xr[j]));
#endif
      }
#pragma unroll
      for (int j = 0; j < W_LOADS; ++j) {
        const int e = lid + j * TILE_ITEMS;
        if (e < W_TILE) ws[e / TILE_N][e % TILE_N] = TO_OPERAND(UNPACK4(wr[j]));
      }
      barrier(CLK_LOCAL_MEM_FENCE); /* step s is in __local memory */
    }
  }

#ifdef MMA_TF32
  /* The sums leave the warps' fragments for the work-items' float4s (acc), through
   * __local memory: everything below is the same as for the FMA path. d_i of a fragment
   * is (pixel g + 8 (i / 2), channel 2 t + i % 2) of its 16x8 tile. */
  {
    __local float *cf = (__local float *)sums;
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int i = 0; i < MMA_TILES_M; ++i)
#pragma unroll
      for (int j = 0; j < MMA_TILES_N; ++j) {
        const int row = (warp_m * MMA_TILES_M + i) * 16 + g;
        const int col = (warp_n * MMA_TILES_N + j) * 8 + 2 * t;
        const float *d = mma_acc[i * MMA_TILES_N + j];
        cf[row * C_STRIDE + col] = d[0];
        cf[row * C_STRIDE + col + 1] = d[1];
        cf[(row + 8) * C_STRIDE + col] = d[2];
        cf[(row + 8) * C_STRIDE + col + 1] = d[3];
      }
    barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
    for (int q = 0; q < ITEM_N; ++q)
#pragma unroll
      for (int r = 0; r < ITEM_M; ++r)
        acc[r * ITEM_N + q] = sums[((ty + r * TILE_LY) * C_STRIDE) / 4 + tx + q * TILE_LX];
  }
#endif
#ifdef SPLIT_K
  const int slice = get_group_id(2);
  const int slices = get_num_groups(2);
#pragma unroll
  for (int q = 0; q < ITEM_N; ++q) {
    const int ob = ob0 + tx + q * TILE_LX;
#pragma unroll
    for (int r = 0; r < ITEM_M; ++r) {
      const int m = m0 + ty + r * TILE_LY;
      if (ob < out_c4 && m < pixels) partial[(slice * pixels + m) * out_c4 + ob] = acc[r * ITEM_N + q];
    }
  }
#ifndef SPLIT_K_LAST_GROUP
  /* conv2d_gpu_split_sum adds the slices, in a launch of its own */
#else
  /* Every work-item's sums reach global memory before its group is counted. */
  DEVICE_FENCE();
  barrier(CLK_GLOBAL_MEM_FENCE);
  const int tile = get_group_id(1) * get_num_groups(0) + get_group_id(0);
  if (lid == 0) {
    DEVICE_FENCE();
    arrived = atomic_inc(arrivals + tile);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (arrived != slices - 1) return; /* not the last slice of this tile: done */
  DEVICE_FENCE(); /* the other groups' sums, counted before, are read after */
  if (lid == 0) arrivals[tile] = 0;
  /* volatile: read the other groups' sums from global memory, not from a stale cache. */
  volatile __global const float4 *others = partial;
#endif /* SPLIT_K_LAST_GROUP */
#endif /* SPLIT_K */
#if !defined(SPLIT_K) || defined(SPLIT_K_LAST_GROUP)
#pragma unroll
  for (int q = 0; q < ITEM_N; ++q) {
    const int ob = ob0 + tx + q * TILE_LX;
    if (ob >= out_c4) continue;
    const float4 b = LOADA4(ob, bias);
#pragma unroll
    for (int r = 0; r < ITEM_M; ++r) {
      const int m = m0 + ty + r * TILE_LY;
      if (m < pixels) {
#ifdef SPLIT_K_LAST_GROUP
        /* In slice order whichever group finishes: the same sums give the same bits. */
        float4 sum = b;
        for (int other = 0; other < slices; ++other)
          sum += other == slice ? acc[r * ITEM_N + q] : others[(other * pixels + m) * out_c4 + ob];
#else
        float4 sum = acc[r * ITEM_N + q] + b;
#endif
#ifdef RESIDUAL
        sum += LOADA4(m * out_c4 + ob, residual);
#endif
        const float4 v = apply_activation(sum, act_alpha, act_beta);
        STORE4(zero_padding_lanes(v, ob, out_c), m * out_c4 + ob, out);
      }
    }
  }
#endif
}
#endif

/* conv2d_gpu_split_sum  the output of a split-K conv2d_gpu_tiled: out[m][ob] =
 *             act(bias[ob] + sum over slices of partial[slice][m][ob] (+ residual)).
 *             Global size (OC4, pixels), either rounded up (work-items past the end
 *             return). */
__kernel void conv2d_gpu_split_sum(__global data_t *out, __global const float4 *partial,
                                   __global const data_t *bias, int slices, int pixels,
                                   int out_c RESIDUAL_PARAM, float act_alpha, float act_beta) {
  const int ob = get_global_id(0);
  const int m = get_global_id(1);
  const int out_c4 = channel_blocks(out_c);
  if (ob >= out_c4 || m >= pixels) return;
  float4 sum = LOADA4(ob, bias);
  for (int slice = 0; slice < slices; ++slice) sum += partial[(slice * pixels + m) * out_c4 + ob];
#ifdef RESIDUAL
  sum += LOADA4(m * out_c4 + ob, residual);
#endif
  const float4 v = apply_activation(sum, act_alpha, act_beta);
  STORE4(zero_padding_lanes(v, ob, out_c), m * out_c4 + ob, out);
}
