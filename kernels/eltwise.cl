/* Binary element-wise ops with ONNX/numpy multidirectional broadcasting.
 *
 * Build options:
 *   -DELTWISE_OP=OP_ADD|OP_SUB|OP_MUL|OP_DIV|OP_MAX|OP_MIN
 *   -DA_MODE=LOAD_*, -DB_MODE=LOAD_*   how each operand is read (common.h)
 *   -DACTIVATION=ACT_*                 optional fused activation
 *
 * One work-item writes one float4 of the output: global size (C4, W, N*H). */
#include "common.h"

#define OP_ADD 0
#define OP_SUB 1
#define OP_MUL 2
#define OP_DIV 3
#define OP_MAX 4
#define OP_MIN 5

#if !defined(ELTWISE_OP) || !defined(A_MODE) || !defined(B_MODE)
#error "eltwise.cl needs -DELTWISE_OP, -DA_MODE and -DB_MODE"
#endif

inline float4 eltwise_op(float4 a, float4 b) {
#if ELTWISE_OP == OP_ADD
  return a + b;
#elif ELTWISE_OP == OP_SUB
  return a - b;
#elif ELTWISE_OP == OP_MUL
  return a * b;
#elif ELTWISE_OP == OP_DIV
  return a / b;
#elif ELTWISE_OP == OP_MAX
  return fmax(a, b);
#elif ELTWISE_OP == OP_MIN
  return fmin(a, b);
#else
#error "unknown ELTWISE_OP"
#endif
}

__kernel void eltwise(__global data_t *out, __global const data_t *a,
                      __global const data_t *b, int height, int width,
                      int channels, int a_n, int a_c, int a_h, int a_w,
                      int b_n, int b_c, int b_h, int b_w, float act_alpha,
                      float act_beta) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int nh = get_global_id(2);
  const int n = nh / height;
  const int h = nh - n * height;

  const float4 va = load_operand(a, n * a_n + h * a_h + w * a_w, c4, channels, a_c, A_MODE);
  const float4 vb = load_operand(b, n * b_n + h * b_h + w * b_w, c4, channels, b_c, B_MODE);
  float4 result = apply_activation(eltwise_op(va, vb), act_alpha, act_beta);
  result = zero_padding_lanes(result, c4, channels);
  STORE4(result, (nh * width + w) * channel_blocks(channels) + c4, out);
}
