/* General matrix multiply over NHWC4 tensors (ONNX MatMul and Gemm):
 *   out = alpha * sum_k A[.., m, k] * B[.., k, j] + beta * C
 *
 * Build options: -DACTIVATION=ACT_* (optional fused activation, common.h).
 *
 * Operands may be stored with any rank, transposed or broadcast, so they are read
 * through element strides: the planner (ops/gemm.py) gives, per operand, the stride
 * of each output coordinate (n, c, h, w) as stored in NHWC4 and the stride of the
 * reduction index k (0 = broadcast). One work-item computes the output float4 of
 * channel block c4 at (n, h, w); global size (C4, W, N * H).
 *
 * This path reads scalars. A [rows, K] activation times constant weights (fully
 * connected layers) does not come here: ops/gemm.py sends it to conv2d's 1x1
 * kernel, which reads float4 blocks.
 *
 * The output and operands are data_t (common.h: half with -DSTORAGE_HALF); the
 * strides count elements whichever the storage. */
#include "common.h"

inline float4 gather4(__global const data_t *src, int4 index) {
  return (float4)(LOAD1(index.x, src), LOAD1(index.y, src), LOAD1(index.z, src),
                  LOAD1(index.w, src));
}

__kernel void matmul(__global data_t *out, __global const data_t *a,
                     __global const data_t *b, __global const data_t *c,
                     int out_h, int out_w, int out_c, int depth, int a_n,
                     int a_c, int a_h, int a_w, int a_k, int b_n, int b_c,
                     int b_h, int b_w, int b_k, int c_n, int c_c, int c_h,
                     int c_w, float alpha, float beta, float act_alpha,
                     float act_beta) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int nh = get_global_id(2);
  const int n = nh / out_h;
  const int h = nh - n * out_h;

  /* Lanes past the last channel reuse the first lane's coordinate so that every
   * read stays inside the operands; zero_padding_lanes discards them. */
  int4 channel = (int4)(c4 * 4) + (int4)(0, 1, 2, 3);
  channel = select(channel, (int4)(c4 * 4), channel >= (int4)(out_c));

  int4 a_index = (int4)(n * a_n + h * a_h + w * a_w) + channel * a_c;
  int4 b_index = (int4)(n * b_n + h * b_h + w * b_w) + channel * b_c;
  float4 acc = (float4)(0.0f);
  for (int k = 0; k < depth; ++k) {
    acc += gather4(a, a_index) * gather4(b, b_index);
    a_index += a_k;
    b_index += b_k;
  }
  const int4 c_index = (int4)(n * c_n + h * c_h + w * c_w) + channel * c_c;
  float4 result = alpha * acc + beta * gather4(c, c_index);
  result = zero_padding_lanes(apply_activation(result, act_alpha, act_beta), c4, out_c);
  STORE4(result, (nh * out_w + w) * channel_blocks(out_c) + c4, out);
}
