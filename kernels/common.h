/* Shared helpers for all rules_mace OpenCL programs (OpenCL C 1.2, float32).
 *
 * Layout: activations are NHWC4 float buffers, i.e. [N][H][W][ceil(C/4)] float4,
 * with padding lanes (channel >= C) holding zero. See docs/memory_layout.md.
 */
#ifndef MACE_COMMON_H
#define MACE_COMMON_H

/* ---- fused activation, selected with -DACTIVATION=ACT_<NAME> ----------------
 * alpha/beta are kernel arguments so that e.g. clip bounds do not create new
 * program variants: clip (min, max), leaky_relu (alpha), hard_sigmoid
 * (alpha, beta), swish (alpha: x * sigmoid(alpha * x)), elu (alpha). */
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_CLIP 2
#define ACT_LEAKY_RELU 3
#define ACT_SIGMOID 4
#define ACT_TANH 5
#define ACT_HARD_SIGMOID 6
#define ACT_HARD_SWISH 7
#define ACT_SWISH 8
#define ACT_ELU 9

#ifndef ACTIVATION
#define ACTIVATION ACT_NONE
#endif

/* ACTIVATE(x, alpha, beta): the activation as one expression, so that it serves every
 * vector width (x must be a variable: it may be evaluated more than once). */
#if ACTIVATION == ACT_NONE
#define ACTIVATE(x, alpha, beta) (x)
#elif ACTIVATION == ACT_RELU
#define ACTIVATE(x, alpha, beta) fmax(x, 0.0f)
#elif ACTIVATION == ACT_CLIP
/* max then min, so min > max yields max like numpy.clip */
#define ACTIVATE(x, alpha, beta) fmin(fmax(x, alpha), beta)
#elif ACTIVATION == ACT_LEAKY_RELU
#define ACTIVATE(x, alpha, beta) select((x) * (alpha), x, (x) >= 0.0f)
#elif ACTIVATION == ACT_SIGMOID
#define ACTIVATE(x, alpha, beta) (1.0f / (1.0f + exp(-(x))))
#elif ACTIVATION == ACT_TANH
#define ACTIVATE(x, alpha, beta) tanh(x)
#elif ACTIVATION == ACT_HARD_SIGMOID
#define ACTIVATE(x, alpha, beta) fmin(fmax((alpha) * (x) + (beta), 0.0f), 1.0f)
#elif ACTIVATION == ACT_HARD_SWISH
#define ACTIVATE(x, alpha, beta) ((x) * fmin(fmax((x) * (1.0f / 6.0f) + 0.5f, 0.0f), 1.0f))
#elif ACTIVATION == ACT_SWISH
#define ACTIVATE(x, alpha, beta) ((x) * (1.0f / (1.0f + exp(-((alpha) * (x))))))
#elif ACTIVATION == ACT_ELU
#define ACTIVATE(x, alpha, beta) select((alpha) * expm1(x), x, (x) >= 0.0f)
#else
#error "unknown ACTIVATION"
#endif

inline float4 apply_activation(float4 x, float alpha, float beta) {
  return ACTIVATE(x, alpha, beta);
}

/* For kernels that keep 16 channels per vector (conv2d_o16.cl). */
inline float16 apply_activation16(float16 x, float alpha, float beta) {
  return ACTIVATE(x, alpha, beta);
}

/* ---- NHWC4 helpers ------------------------------------------------------- */

inline int channel_blocks(int channels) { return (channels + 3) >> 2; }

/* Zero the lanes of channel block c4 that lie past the last channel, keeping the
 * "padding lanes are zero" invariant (consumers such as reductions rely on it). */
inline float4 zero_padding_lanes(float4 v, int c4, int channels) {
  const int valid = channels - (c4 << 2);
  if (valid >= 4) return v;
  return (float4)(v.x, valid > 1 ? v.y : 0.0f, valid > 2 ? v.z : 0.0f, 0.0f);
}

/* ---- broadcast operand reads ----------------------------------------------
 * An operand broadcast to the output is described by float strides for the
 * output's (n, c, h, w) coordinates (0 = broadcast along that coordinate).
 * How the channel coordinate maps decides the read mode (a build option):
 *   LOAD_VEC     channel stride 1: same channel blocks as the output, one float4
 *   LOAD_SCALAR  channel stride 0: one float repeated across the lanes
 *   LOAD_GATHER  any other stride: four separate floats (rank-mismatched tensors) */
#define LOAD_VEC 0
#define LOAD_SCALAR 1
#define LOAD_GATHER 2

inline float4 load_operand(__global const float *src, int base, int c4,
                           int channels, int c_stride, int mode) {
  if (mode == LOAD_VEC) return vload4(0, src + base + (c4 << 2));
  if (mode == LOAD_SCALAR) return (float4)(src[base]);
  /* Lanes past the last channel must not be read: they may lie outside src. */
  const int c = c4 << 2;
  return (float4)(src[base + c * c_stride],
                  c + 1 < channels ? src[base + (c + 1) * c_stride] : 0.0f,
                  c + 2 < channels ? src[base + (c + 2) * c_stride] : 0.0f,
                  c + 3 < channels ? src[base + (c + 3) * c_stride] : 0.0f);
}

#endif /* MACE_COMMON_H */
