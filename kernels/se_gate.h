/* The end of a squeeze-excite gate computed by many work-groups (pooling.cl's se_squeeze
 * and se_excite, conv2d_gpu.cl's depthwise_se_gpu): from per-work-group partial sums of
 * the first 1x1 Conv's products, the hidden layer, then the gate.
 *
 * Build options:
 *   -DHIDDEN_ACTIVATION=ACT_*  the hidden layer's activation (default none)
 *   -DGATE_ACTIVATION=ACT_*    the gate's (default ACTIVATION, common.h)
 * Needs common.h. */
#ifndef HIDDEN_ACTIVATION
#define HIDDEN_ACTIVATION ACT_NONE
#endif
#ifndef GATE_ACTIVATION
#define GATE_ACTIVATION ACTIVATION
#endif

/* Every work-group of a squeeze-excite launch writes, for each hidden row r, the sum over
 * its `width` channel blocks [first, first + width) of w1[r] . sums[j] (its pooled sums,
 * in __local memory) to row_out[r]. */
inline void se_partials(int lid, int size, __global float *row_out, __global const data_t *w1, int blocks, int first,
                        int width, int hidden_size, __local const float4 *sums) {
  for (int r = lid; r < hidden_size; r += size) {
    float4 h = (float4)(0.0f);
    for (int j = 0; j < width; ++j)
      h += LOADA4(r * blocks + first + j, w1) * sums[j];
    row_out[r] = h.x + h.y + h.z + h.w;
  }
}

/* Whether this work-group is the last of image n's `count` to finish (called by all its
 * work-items alike: it has barriers). Each group's global stores before the call are seen
 * by the last one after it; the last one sets arrivals[n] back to zero for the next launch.
 * `arrived`: a __local int. */
inline bool se_last_arrival(int lid, __global int *arrivals, int n, int count, __local int *arrived) {
  DEVICE_FENCE();
  barrier(CLK_GLOBAL_MEM_FENCE);
  if (lid == 0) {
    DEVICE_FENCE();
    *arrived = atomic_inc(arrivals + n);
  }
  barrier(CLK_LOCAL_MEM_FENCE);
  if (*arrived != count - 1)
    return false;
  DEVICE_FENCE(); /* the other groups' stores, counted before, are read after */
  if (lid == 0)
    arrivals[n] = 0;
  return true;
}

/* hidden[r] = HIDDEN_ACTIVATION(sum of image[q * hidden_size + r] over q < count, divided by
 * pixels, plus b1[r]) for every r; row_slices work-items (a power of two dividing the local
 * size) share each row; row_sums: a float per work-item. */
inline void se_hidden(int lid, int size, volatile __global const float *image, int count, int pixels,
                      __global const data_t *b1, int hidden_size, float hidden_alpha, float hidden_beta, int row_slices,
                      __local float *hidden, __local float *row_sums) {
  const int rows = size / row_slices; /* hidden rows per pass */
  for (int r0 = 0; r0 < hidden_size; r0 += rows) {
    const int r = r0 + lid / row_slices, k = lid % row_slices;
    float acc = 0.0f;
    if (r < hidden_size) {
      for (int q = k; q < count; q += row_slices)
        acc += image[q * hidden_size + r];
    }
    row_sums[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (k == 0 && r < hidden_size) {
      float total = 0.0f;
      for (int j = 0; j < row_slices; ++j)
        total += row_sums[lid + j];
      const float h = total / (float)pixels + LOAD1(r, b1); /* ACTIVATE_AS takes a variable */
      hidden[r] = ACTIVATE_AS(HIDDEN_ACTIVATION, h, hidden_alpha, hidden_beta);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
  }
}

/* lid, size: this work-item's index in its work-group and the work-group's size, the
 * work-items taken in any order. */

/* The gate of image n for output blocks [g * group_blocks, (g + 1) * group_blocks), for g =
 * first, first + stride, ... while there are blocks. */
inline void se_gate_blocks(int lid, int size, __global data_t *out, int n, __global const data_t *w2,
                           __global const data_t *b2, int hidden_size, int out_channels, float act_alpha,
                           float act_beta, int group_blocks, int first, int stride, __local const float *hidden,
                           __local float4 *sums) {
  const int out_blocks = channel_blocks(out_channels);
  const int slices = size / group_blocks;
  const int c = lid % group_blocks, k = lid / group_blocks;
  for (int g = first; g * group_blocks < out_blocks; g += stride) {
    const int ob = g * group_blocks + c;
    float4 acc = (float4)(0.0f);
    if (ob < out_blocks) {
      for (int r = k; r < hidden_size; r += slices)
        acc += hidden[r] * LOADA4(r * out_blocks + ob, w2);
    }
    sums[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = slices >> 1; step > 0; step >>= 1) {
      if (k < step)
        sums[lid] += sums[lid + step * group_blocks];
      barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (k == 0 && ob < out_blocks) {
      acc = sums[lid] + LOADA4(ob, b2);
      STORE4(zero_padding_lanes(ACTIVATE_AS(GATE_ACTIVATION, acc, act_alpha, act_beta), ob, out_channels),
             n * out_blocks + ob, out);
    }
  }
}
