/* Pad (ONNX modes constant, reflect, edge, wrap) on any stored axis, channels
 * included (ops/pad.py).
 *
 * Build options: -DPAD_MODE=PAD_CONSTANT|PAD_REFLECT|PAD_EDGE|PAD_WRAP
 *
 * Negative pads crop first: the padded source is the window of the input that
 * starts at (first_n, first_c, first_h, first_w) and spans (len_n, ...); output
 * coordinate o along an axis reads window coordinate o - begin, folded back into
 * [0, len) by the mode. The constant is a float argument, stored like every output
 * value (rounded to half with -DSTORAGE_HALF). One work-item writes one float4 of the
 * output: global size (C4, W, N*H). */
#include "common.h"

#define PAD_CONSTANT 0
#define PAD_REFLECT 1
#define PAD_EDGE 2
#define PAD_WRAP 3

#ifndef PAD_MODE
#error "pad.cl needs -DPAD_MODE"
#endif

/* Input coordinate for output coordinate o, or -1 for "use the constant". */
inline int pad_source(int o, int begin, int dim) {
  int s = o - begin;
#if PAD_MODE == PAD_CONSTANT
  return s >= 0 && s < dim ? s : -1;
#elif PAD_MODE == PAD_EDGE
  return clamp(s, 0, dim - 1);
#elif PAD_MODE == PAD_REFLECT
  /* Mirror without repeating the edge; numpy's repeated reflection for pads
   * longer than the axis is periodic with period 2 * (dim - 1). */
  if (dim == 1) return 0;
  const int period = 2 * (dim - 1);
  s %= period;
  if (s < 0) s += period;
  return s < dim ? s : period - s;
#elif PAD_MODE == PAD_WRAP
  s %= dim;
  return s < 0 ? s + dim : s;
#else
#error "unknown PAD_MODE"
#endif
}

__kernel void pad(__global data_t *out, __global const data_t *in, int out_h,
                  int out_w, int out_c, int in_h, int in_w, int in_c,
                  int begin_n, int first_n, int len_n, int begin_c, int first_c,
                  int len_c, int begin_h, int first_h, int len_h, int begin_w,
                  int first_w, int len_w, float value) {
  const int c4 = get_global_id(0);
  const int w = get_global_id(1);
  const int n = get_global_id(2) / out_h;
  const int h = get_global_id(2) - n * out_h;
  const int sn = pad_source(n, begin_n, len_n);
  const int sh = pad_source(h, begin_h, len_h);
  const int sw = pad_source(w, begin_w, len_w);
  const int pixel =
      (((first_n + sn) * in_h + first_h + sh) * in_w + first_w + sw) * (channel_blocks(in_c) << 2) + first_c;
  const bool inside = sn >= 0 && sh >= 0 && sw >= 0;
  float lanes[4];
  for (int i = 0; i < 4; ++i) {
    const int c = (c4 << 2) + i;
    const int sc = pad_source(c, begin_c, len_c);
    lanes[i] = c >= out_c ? 0.0f : inside && sc >= 0 ? LOAD1(pixel + sc, in) : value;
  }
  const float4 v = (float4)(lanes[0], lanes[1], lanes[2], lanes[3]);
  STORE4(v, (get_global_id(2) * out_w + w) * channel_blocks(out_c) + c4, out);
}
