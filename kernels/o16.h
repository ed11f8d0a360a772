/* Loads and stores of one 16-channel group (four NHWC4 blocks, a float16) at one pixel,
 * shared by the 16-channel kernels (conv2d_o16.cl, winograd.cl, pooling.cl). Inlined by
 * the runtime like common.h, which it needs. */

/* Store of the 16 channels of group og at one pixel (out points at that pixel's first
 * channel). Full groups take one 16-wide store; the last group of a tensor whose C4 is
 * not a multiple of 4 stores only the blocks that exist, and lanes past the last channel
 * are zeroed (the activation of a zero weight sum need not be zero). */
inline void store_group16(__global data_t *out, float16 v, int og, int channels) {
  const int first = og * 16;
  out += first;
  if (first + 16 <= channels) {
    STORE16(v, 0, out);
    return;
  }
  const int16 lane = (int16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  v = select(v, (float16)(0.0f), (int16)(first) + lane >= (int16)(channels));
  const int blocks = channel_blocks(channels) - og * 4;
  STORE4(v.lo.lo, 0, out);
  if (blocks > 1) STORE4(v.lo.hi, 1, out);
  if (blocks > 2) STORE4(v.hi.lo, 2, out);
  if (blocks > 3) STORE4(v.hi.hi, 3, out);
}

/* store_group16 after the program's activation (-DACTIVATION, common.h). */
inline void store16(__global data_t *out, float16 v, int og, int channels, float act_alpha,
                    float act_beta) {
  store_group16(out, apply_activation16(v, act_alpha, act_beta), og, channels);
}

/* The `blocks` (1 to 4) channel blocks at p as one float16; lanes past them are 0. */
inline float16 load_blocks16(__global const data_t *p, int blocks) {
  if (blocks >= 4) return LOAD16(0, p);
  float16 v = (float16)(0.0f);
  v.lo.lo = LOAD4(0, p);
  if (blocks > 1) v.lo.hi = LOAD4(1, p);
  if (blocks > 2) v.hi.lo = LOAD4(2, p);
  return v;
}

/* The 16 channels of group og at one pixel of an NHWC4 tensor with `channels`
 * channels (p points at that pixel's first channel): like store16, a group that runs
 * past the last block reads only the blocks that exist, so that no read leaves the
 * buffer. By blocks, not channels: a last group of 13 to 15 channels has all four. */
inline float16 load16(__global const data_t *p, int og, int channels) {
  return load_blocks16(p + og * 16, channel_blocks(channels) - og * 4);
}

/* -DRESIDUAL: the kernel takes one more argument, a tensor shaped like its output that is
 * added before the activation (a residual Add fused by the converter). */
#ifdef RESIDUAL
#define RESIDUAL_PARAM , __global const data_t *residual
#define RESIDUAL_ARG , residual
#else
#define RESIDUAL_PARAM
#define RESIDUAL_ARG
#endif
