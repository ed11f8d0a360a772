/* Convolution and fully-connected kernels for GPU devices (ops/conv.py, ops/gemm.py
 * when planning for device kind "gpu"). They expose parallelism rather than vector
 * width: thousands of thin work-items, adjacent work-items reading adjacent weights.
 *
 * Build options:
 *   -DFILTER_H=<kh> -DFILTER_W=<kw>  filter size (conv2d_gpu; required there)
 *   -DOUT_PIXELS=<p>                 horizontally adjacent outputs per work-item of
 *                                    conv2d_gpu (1, 2 or 4; default 4)
 *   -DACTIVATION=ACT_*               fused activation (common.h)
 *
 * conv2d_gpu  group-1 convolution. One work-item computes OUT_PIXELS outputs of one
 *             float4 output channel block: global size (OC4, ceil(OW / OUT_PIXELS),
 *             N * OH), either of the first two may be rounded up (work-items past the
 *             end return). Filter layout "gpu" (ops/conv.py pack_gpu_filter): float4
 *             filter[KH][KW][C_in4 * 4][OC4], the four output lanes of block ob for one
 *             input channel at one tap, so work-items ob, ob + 1, ... of a warp read
 *             consecutive float4s. bias float4[OC4] with zero padding lanes.
 * fc_gpu      out[row] = bias + W x[row] for few rows (fully-connected layers, 1x1
 *             convolutions of a handful of pixels). One work-group per (output block,
 *             row): its get_local_size(0) work-items (a power of two) split the input
 *             channels, then fold their partial sums in local memory. Filter float4
 *             [OC4][C_in4 * 4] (ops/conv.py pack_blocked_filter with span C_in4).
 *             Global size (OC4 * L, rows), local size (L, 1), scratch L float4. */
#include "common.h"

#ifndef OUT_PIXELS
#define OUT_PIXELS 4
#endif

#ifdef FILTER_H
__kernel void conv2d_gpu(__global float *out, __global const float *in,
                         __global const float4 *filter,
                         __global const float4 *bias, int in_h, int in_w,
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
  const float4 b = bias[ob];
#pragma unroll
  for (int p = 0; p < OUT_PIXELS; ++p) acc[p] = b;

  const int ih0 = oh * stride_h - pad_top;
  const int iw0 = ow0 * stride_w - pad_left;
  const int tap_stride = in_c4 * 4 * out_c4; /* float4s per tap */
  for (int kh = 0; kh < FILTER_H; ++kh) {
    const int ih = ih0 + kh * dilation_h;
    if (ih < 0 || ih >= in_h) continue;
    __global const float *row = in + (n * in_h + ih) * in_w * in_c4 * 4;
    for (int kw = 0; kw < FILTER_W; ++kw) {
      const int iw = iw0 + kw * dilation_w;
      __global const float *x[OUT_PIXELS];
      bool inside[OUT_PIXELS];
#pragma unroll
      for (int p = 0; p < OUT_PIXELS; ++p) {
        const int col = iw + p * stride_w;
        inside[p] = col >= 0 && col < in_w;
        x[p] = row + (inside[p] ? col : 0) * in_c4 * 4;
      }
      __global const float4 *w = filter + (kh * FILTER_W + kw) * tap_stride + ob;
      for (int ib = 0; ib < in_c4; ++ib) {
        const float4 w0 = w[0];
        const float4 w1 = w[out_c4];
        const float4 w2 = w[2 * out_c4];
        const float4 w3 = w[3 * out_c4];
        w += 4 * out_c4;
#pragma unroll
        for (int p = 0; p < OUT_PIXELS; ++p) {
          const float4 v = inside[p] ? vload4(ib, x[p]) : (float4)(0.0f);
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
      vstore4(v, base + p * out_c4, out);
    }
  }
}
#endif

__kernel void fc_gpu(__global float *out, __global const float4 *in,
                     __global const float4 *filter, __global const float4 *bias,
                     int in_c4, int out_c, float act_alpha, float act_beta,
                     __local float4 *scratch) {
  const int lane = get_local_id(0);
  const int lanes = get_local_size(0);
  const int ob = get_group_id(0);
  const int row = get_global_id(1);
  const int out_c4 = channel_blocks(out_c);
  __global const float4 *x = in + row * in_c4;
  __global const float4 *w = filter + ob * in_c4 * 4;
  float4 acc = (float4)(0.0f);
  for (int ib = lane; ib < in_c4; ib += lanes) {
    const float4 v = x[ib];
    acc += v.x * w[4 * ib] + v.y * w[4 * ib + 1] + v.z * w[4 * ib + 2] + v.w * w[4 * ib + 3];
  }
  scratch[lane] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int stride = lanes >> 1; stride > 0; stride >>= 1) {
    if (lane < stride) scratch[lane] += scratch[lane + stride];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lane == 0) {
    const float4 v = scratch[0] + bias[ob];
    vstore4(zero_padding_lanes(apply_activation(v, act_alpha, act_beta), ob, out_c),
            row * out_c4 + ob, out);
  }
}
