/* Winograd F(2x2, 3x3) (Lavin and Gray, 2015) for 3x3, stride-1, undilated, group-1
 * convolutions with NHWC4 tensors on CPU devices; ops/winograd.py plans it.
 *
 * Each 2x2 block of outputs (a tile) is A^T [sum over input channels of U .* V] A, where
 * V = B^T d B transforms the tile's 4x4 input patch d (at row 2 th - pad_top, column
 * 2 tw - pad_left, zero outside the image) and U = G g G^T the 3x3 filter g (done at
 * planning time). The sum is, for each of the 16 points k of the 4x4 transformed tile, a
 * matrix product V_k [tiles x C_in] times U_k [C_in x C_out]: conv2d_o16.cl's
 * conv1x1_o32 -DBATCHED runs all 16 in one launch. That is 16 multiplies per input
 * channel, output channel and tile of 4 outputs, where the direct convolution does 36.
 *
 * Buffers between the launches (k-major, so that each product reads one matrix):
 * V = data_t[16][tiles][IC4 * 4], M = data_t[16][tiles][OC4 * 4], tile t = (n * tiles_h +
 * th) * tiles_w + tw, lanes past the last channel zero.
 *
 * Kernels (16-channel group g = channels 16*g .. 16*g+15 per work-item, as conv2d_o16.cl):
 *   winograd_input   V of one tile. Global size (IC16, tiles_w, N * tiles_h).
 *   winograd_output  act(A^T M A + bias [+ residual]) for the tile's outputs that lie
 *                    in the image (odd output sizes end in half tiles). Global size
 *                    (OC16, tiles_w, N * tiles_h). -DRESIDUAL, -DACTIVATION as in
 *                    conv2d_o16.cl.
 * bias: o16 layout (conv2d_o16.cl). */
#include "common.h"
#include "o16.h"

__kernel void winograd_input(__global data_t *v, __global const data_t *in, int in_h, int in_w,
                             int channels, int tiles, int tiles_h, int tiles_w, int pad_top,
                             int pad_left) {
  const int g = get_global_id(0);
  const int tw = get_global_id(1);
  const int nth = get_global_id(2);
  const int n = nth / tiles_h;
  const int th = nth - n * tiles_h;
  const int stride = channel_blocks(channels) * 4;
  const int ih0 = 2 * th - pad_top, iw0 = 2 * tw - pad_left;
  __global const data_t *image = in + n * in_h * in_w * stride;
  /* t = B^T d, row by row of the patch, each row read once */
  float16 t[4][4];
  #pragma unroll
  for (int c = 0; c < 4; ++c) {
    const int iw = iw0 + c;
    float16 d[4];
    #pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int ih = ih0 + r;
      d[r] = (float16)(0.0f);
      if (ih >= 0 && ih < in_h && iw >= 0 && iw < in_w)
        d[r] = load16(image + (ih * in_w + iw) * stride, g, channels);
    }
    t[0][c] = d[0] - d[2];
    t[1][c] = d[1] + d[2];
    t[2][c] = d[2] - d[1];
    t[3][c] = d[1] - d[3];
  }
  /* V = t B, row r giving points 4r .. 4r+3 */
  const int plane = tiles * stride;
  __global data_t *out = v + (nth * tiles_w + tw) * stride;
  #pragma unroll
  for (int r = 0; r < 4; ++r) {
    store_group16(out + (4 * r + 0) * plane, t[r][0] - t[r][2], g, channels);
    store_group16(out + (4 * r + 1) * plane, t[r][1] + t[r][2], g, channels);
    store_group16(out + (4 * r + 2) * plane, t[r][2] - t[r][1], g, channels);
    store_group16(out + (4 * r + 3) * plane, t[r][1] - t[r][3], g, channels);
  }
}

__kernel void winograd_output(__global data_t *out, __global const data_t *m,
                              __global const data_t *bias, int out_h, int out_w, int channels,
                              int tiles, int tiles_h, int tiles_w RESIDUAL_PARAM,
                              float act_alpha, float act_beta) {
  const int g = get_global_id(0);
  const int tw = get_global_id(1);
  const int nth = get_global_id(2);
  const int n = nth / tiles_h;
  const int th = nth - n * tiles_h;
  const int stride = channel_blocks(channels) * 4;
  const int plane = tiles * stride;
  __global const data_t *p = m + (nth * tiles_w + tw) * stride;
  /* s = A^T M, column by column */
  float16 s[2][4];
  #pragma unroll
  for (int c = 0; c < 4; ++c) {
    const float16 m0 = load16(p + (0 + c) * plane, g, channels);
    const float16 m1 = load16(p + (4 + c) * plane, g, channels);
    const float16 m2 = load16(p + (8 + c) * plane, g, channels);
    const float16 m3 = load16(p + (12 + c) * plane, g, channels);
    s[0][c] = m0 + m1 + m2;
    s[1][c] = m1 - m2 - m3;
  }
  const float16 b = LOAD16(g, bias);
  #pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int oh = 2 * th + r;
    if (oh < out_h) {
      /* y = s A */
      float16 y[2] = {s[r][0] + s[r][1] + s[r][2] + b, s[r][1] - s[r][2] - s[r][3] + b};
      #pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int ow = 2 * tw + c;
        if (ow < out_w) {
          const int pixel = (n * out_h + oh) * out_w + ow;
#ifdef RESIDUAL
          y[c] += load16(residual + pixel * stride, g, channels);
#endif
          store16(out + pixel * stride, y[c], g, channels, act_alpha, act_beta);
        }
      }
    }
  }
}
