/* Helpers shared by the kernels that read the "blocked" filter layout (conv2d.cl and
 * deconv2d.cl; layout in docs/memory_layout.md). Inlined by the runtime like common.h. */

/* acc += x[c] * w_c over the 4 input lanes c; w points at 4 float4 (lane-major). */
inline float4 dot_lanes(float4 acc, float4 x, __global const float *w) {
  acc += x.x * vload4(0, w);
  acc += x.y * vload4(1, w);
  acc += x.z * vload4(2, w);
  return acc + x.w * vload4(3, w);
}

inline void store_block(__global float *out, float4 v, int index, int ob,
                        int channels, float act_alpha, float act_beta) {
  v = zero_padding_lanes(apply_activation(v, act_alpha, act_beta), ob, channels);
  vstore4(v, index, out);
}
