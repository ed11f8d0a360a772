/* Shared helpers for all rules_mace OpenCL programs (OpenCL C 1.2, float arithmetic).
 *
 * Layout: activations are NHWC4 buffers, i.e. [N][H][W][ceil(C/4)] groups of four values,
 * with padding lanes (channel >= C) holding zero. See docs/memory_layout.md.
 */
#ifndef MACE_COMMON_H
#define MACE_COMMON_H

/* ---- storage precision, selected with -DSTORAGE_HALF -------------------------
 * Tensors and weights in global memory are float, or half for models of data_type
 * fp16_fp32. Arithmetic is float either way: half values widen on load and round to
 * nearest even on store through vload_half / vstore_half_rte, which are core OpenCL,
 * so no device extension (cl_khr_fp16) is needed. Kernels declare tensor and weight
 * pointers as `data_t` and touch them only through these macros; `i` counts whole
 * vectors, as vloadn does. Lookup tables (indices, coordinates) stay float. */
#ifdef STORAGE_HALF
typedef half data_t;
#define LOAD1(i, p) vload_half(i, p)
#define LOAD4(i, p) vload_half4(i, p)
#define LOAD16(i, p) vload_half16(i, p)
#define STORE1(v, i, p) vstore_half_rte(v, i, p)
#define STORE4(v, i, p) vstore_half4_rte(v, i, p)
#define STORE16(v, i, p) vstore_half16_rte(v, i, p)
#else
typedef float data_t;
#define LOAD1(i, p) ((p)[i])
#define LOAD4(i, p) vload4(i, p)
#define LOAD16(i, p) vload16(i, p)
#define STORE1(v, i, p) ((p)[i] = (v))
#define STORE4(v, i, p) vstore4(v, i, p)
#define STORE16(v, i, p) vstore16(v, i, p)
#endif

/* LOADA4(i, p): LOAD4 where p (a __global pointer) and so every vector i is aligned to
 * the vector's size, as in packed weights and NHWC4 tensors read in whole blocks. The
 * float build reads through a float4 pointer, which lets the compiler issue one 16-byte
 * load where vload4 (4-byte alignment) may get four. The half build reads the four halves
 * as one 8-byte word and widens them from a register: NVIDIA's compiler turns
 * vloada_half4 on global memory into four 2-byte loads, which made convolutions slower in
 * half than in float; vload_half4 on the private copy becomes four conversions alone
 * (docs/runtime.md, "Half precision").
 *
 * RAW_LOADA4 / UNPACK4 split LOADA4 in two, for kernels that prefetch into registers
 * (conv2d_gpu_tiled): the load is issued early and the conversion, which must wait for
 * it, happens only where the value is used. raw4_t is what RAW_LOADA4 returns; a zero
 * raw4_t unpacks to 0.0f in both builds. */
#ifdef STORAGE_HALF
typedef uint2 raw4_t;
#define RAW_LOADA4(i, p) (((__global const uint2 *)(p))[i])
/* vload_half reads half values through a pointer of any address space; no half type in
 * registers is needed, so this stays core OpenCL without cl_khr_fp16. */
inline float4 unpack_half4(uint2 raw) { return vload_half4(0, (const __private half *)&raw); }
#define UNPACK4(raw) unpack_half4(raw)
#else
typedef float4 raw4_t;
#define RAW_LOADA4(i, p) (((__global const float4 *)(p))[i])
#define UNPACK4(raw) (raw)
#endif
#define LOADA4(i, p) UNPACK4(RAW_LOADA4(i, p))

/* LOADA16(i, p): LOAD16 where p (a __global pointer) is 16-byte aligned, as a 16-channel
 * group of an NHWC4 tensor (four blocks) and packed weights are. PoCL implements vload16
 * as a library call that its inliner may decline in a large kernel: depthwise_o16 made 72
 * calls per work-item, each spilling the accumulators around it, and ran ShuffleNet's
 * 14x14 layers at half speed. The float build under clang (PoCL) reads through a float16
 * type whose alignment the typedef lowers from 64 to 16 bytes (pixels start at multiples
 * of 16 bytes only): a plain load. clang lets a typedef lower alignment; OpenCL C
 * promises only raising it, so other compilers keep vload16. */
#if defined(STORAGE_HALF)
#define LOADA16(i, p) vload_half16(i, p)
#elif defined(__clang__)
typedef float16 float16_a16 __attribute__((aligned(16)));
#define LOADA16(i, p) (((__global const float16_a16 *)(p))[i])
#else
#define LOADA16(i, p) vload16(i, p)
#endif

/* LOADU(n, p) (n = 2, 4, 8, 16) and STOREU16(v, p): n values at a __global pointer that is
 * aligned to one value only (a run of channels starting at any channel). OpenCL's vloadn
 * promise that, but PoCL compiles vload_half8 and the like to aligned vector moves whatever
 * the address, which crashed on misaligned runs; clang builds therefore read through types
 * whose alignment is lowered to one value's (half: the raw 16-bit values, widened from a
 * private copy as unpack_half4 does). Other compilers keep vloadn. */
#define LOADU(n, p) LOADU_(n, p)
#ifdef __clang__
#define UNALIGNED_TYPES(n)                                           \
  typedef float##n float##n##_a4 __attribute__((aligned(4)));      \
  typedef ushort##n ushort##n##_a2 __attribute__((aligned(2)));
UNALIGNED_TYPES(2)
UNALIGNED_TYPES(4)
UNALIGNED_TYPES(8)
UNALIGNED_TYPES(16)
#ifdef STORAGE_HALF
#define LOADU_HALF(n)                                                     \
  inline float##n loadu_half##n(__global const half *p) {                \
    const ushort##n raw = *(__global const ushort##n##_a2 *)p;           \
    return vload_half##n(0, (const __private half *)&raw);               \
  }
LOADU_HALF(2)
LOADU_HALF(4)
LOADU_HALF(8)
LOADU_HALF(16)
inline void storeu_half16(float16 v, __global half *p) {
  ushort16 raw;
  vstore_half16_rte(v, 0, (__private half *)&raw);
  *(__global ushort16_a2 *)p = raw;
}
#define LOADU_(n, p) loadu_half##n(p)
#define STOREU16(v, p) storeu_half16(v, p)
#else
#define LOADU_(n, p) (*(__global const float##n##_a4 *)(p))
#define STOREU16(v, p) (*(__global float16_a4 *)(p) = (v))
#endif
#elif defined(STORAGE_HALF)
#define LOADU_(n, p) vload_half##n(0, p)
#define STOREU16(v, p) vstore_half16_rte(v, 0, p)
#else
#define LOADU_(n, p) vload##n(0, p)
#define STOREU16(v, p) vstore16(v, 0, p)
#endif

/* ---- PTX -------------------------------------------------------------------------
 * PTX_TARGET: the program compiles to NVIDIA's PTX, so inline PTX assembly is accepted:
 * NVIDIA's OpenCL compiler (it alone defines cl_nv_pragma_unroll) or clang's nvptx target
 * (__NVPTX__), which the nvptx toolchains cross-compile with. */
#if defined(cl_nv_pragma_unroll) || defined(__NVPTX__)
#define PTX_TARGET 1
#endif

/* ---- device-wide ordering ------------------------------------------------------
 * DEVICE_FENCE(): this work-item's global memory accesses before it are seen by every
 * work-group before those after it, for kernels where one work-group reads what others
 * wrote in the same launch (after counting their arrivals with a global atomic).
 * OpenCL C 1.2 has no device scope; NVIDIA's compiler (and libclc for clang's nvptx
 * target) make mem_fence(CLK_GLOBAL_MEM_FENCE) a membar.cta, which orders accesses for
 * the work-group only, so on a PTX_TARGET the fence is PTX's membar.gl as inline assembly.
 * kernels/tests/test_conv2d.py checks the driver's PTX on an NVIDIA GPU,
 * tools/precompile/tests/test_nvptx.py the cross-compiled PTX. */
#ifdef PTX_TARGET
#define DEVICE_FENCE() __asm__ volatile("membar.gl;" ::: "memory")
#else
#define DEVICE_FENCE() mem_fence(CLK_GLOBAL_MEM_FENCE)
#endif

/* ---- fused activation, selected with -DACTIVATION=ACT_<NAME> ----------------
 * alpha/beta are kernel arguments so that e.g. clip bounds do not create new
 * program variants: clip (min, max), leaky_relu (alpha), hard_sigmoid
 * (alpha, beta), swish (alpha: x * sigmoid(alpha * x)), elu (alpha).
 * ACT_EXPR_<value of ACT_NAME>(x, alpha, beta) is each one as an expression, so that it
 * serves every vector width (x must be a variable: it may be evaluated more than once). */
#define ACT_NONE 0
#define ACT_EXPR_0(x, alpha, beta) (x)
#define ACT_RELU 1
#define ACT_EXPR_1(x, alpha, beta) fmax(x, 0.0f)
#define ACT_CLIP 2
/* max then min, so min > max yields max like numpy.clip */
#define ACT_EXPR_2(x, alpha, beta) fmin(fmax(x, alpha), beta)
#define ACT_LEAKY_RELU 3
#define ACT_EXPR_3(x, alpha, beta) select((x) * (alpha), x, (x) >= 0.0f)
#define ACT_SIGMOID 4
#define ACT_EXPR_4(x, alpha, beta) (1.0f / (1.0f + exp(-(x))))
#define ACT_TANH 5
#define ACT_EXPR_5(x, alpha, beta) tanh(x)
#define ACT_HARD_SIGMOID 6
#define ACT_EXPR_6(x, alpha, beta) fmin(fmax((alpha) * (x) + (beta), 0.0f), 1.0f)
#define ACT_HARD_SWISH 7
#define ACT_EXPR_7(x, alpha, beta) ((x) * fmin(fmax((x) * (1.0f / 6.0f) + 0.5f, 0.0f), 1.0f))
#define ACT_SWISH 8
#define ACT_EXPR_8(x, alpha, beta) ((x) * (1.0f / (1.0f + exp(-((alpha) * (x))))))
#define ACT_ELU 9
#define ACT_EXPR_9(x, alpha, beta) select((alpha) * expm1(x), x, (x) >= 0.0f)

/* ACTIVATE_AS(kind, ...) applies the activation whose ACT_* value `kind` names, so a
 * kernel can apply a second one besides ACTIVATION (squeeze_excite's hidden layer). */
#define ACT_EXPR_PASTE(kind) ACT_EXPR_##kind
#define ACT_EXPR_OF(kind) ACT_EXPR_PASTE(kind) /* expands kind (a macro) to its number first */
#define ACTIVATE_AS(kind, x, alpha, beta) ACT_EXPR_OF(kind)(x, alpha, beta)

#ifndef ACTIVATION
#define ACTIVATION ACT_NONE
#endif
#if ACTIVATION < ACT_NONE || ACTIVATION > ACT_ELU
#error "unknown ACTIVATION"
#endif
#define ACTIVATE(x, alpha, beta) ACTIVATE_AS(ACTIVATION, x, alpha, beta)

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

inline float4 load_operand(__global const data_t *src, int base, int c4,
                           int channels, int c_stride, int mode) {
  if (mode == LOAD_VEC) return LOAD4(0, src + base + (c4 << 2));
  if (mode == LOAD_SCALAR) return (float4)(LOAD1(base, src));
  /* Lanes past the last channel must not be read: they may lie outside src. */
  const int c = c4 << 2;
  return (float4)(LOAD1(base + c * c_stride, src),
                  c + 1 < channels ? LOAD1(base + (c + 1) * c_stride, src) : 0.0f,
                  c + 2 < channels ? LOAD1(base + (c + 2) * c_stride, src) : 0.0f,
                  c + 3 < channels ? LOAD1(base + (c + 3) * c_stride, src) : 0.0f);
}

#endif /* MACE_COMMON_H */
