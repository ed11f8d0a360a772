/* Helpers shared by the kernels that read the "blocked" filter layout (conv2d.cl and
 * deconv2d.cl; layout in docs/memory_layout.md). Inlined by the runtime like common.h. */

/* acc += x[c] * w_c over the 4 input lanes c; w points at 4 vectors of 4 data_t
 * (lane-major). */
inline float4 dot_lanes(float4 acc, float4 x, __global const data_t *w) {
  acc += x.x * LOAD4(0, w);
  acc += x.y * LOAD4(1, w);
  acc += x.z * LOAD4(2, w);
  return acc + x.w * LOAD4(3, w);
}

inline void store_block(__global data_t *out, float4 v, int index, int ob,
                        int channels, float act_alpha, float act_beta) {
  v = zero_padding_lanes(apply_activation(v, act_alpha, act_beta), ob, channels);
  STORE4(v, index, out);
}
