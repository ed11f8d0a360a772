"""Winograd F(2x2, 3x3) convolution for CPU plans: kernels/winograd.cl's input and output
transforms around kernels/conv2d_o16.cl's ``conv1x1_o32 -DBATCHED``.

A 3x3, stride-1, undilated, group-1 Conv does 36 multiplies per input channel, output
channel and 2x2 block of outputs; F(2x2, 3x3) does 16, as 16 independent matrix products
(one per point of the 4x4 transformed tile) on the GEMM kernel that runs the 1x1
convolutions, at the price of two passes over buffers 4x the size of the input and the
output. Where that pays is measured by dev/bench/cpu_winograd.py (docs/performance.md).
ops/conv.py decides whether a Conv takes it (``takes_winograd``).
"""

from __future__ import annotations

import numpy as np

from mace_cl.planning.layout import Nhwc4Shape, channel_blocks
from mace_cl.planning.ops.base import (
    ConstantArg,
    IntArg,
    KernelArg,
    KernelLaunch,
    OpPlan,
    OutputArg,
    ScratchArg,
    Shape,
    TensorArg,
)
from mace_cl.planning.ops.conv_kernels import (
    O16_PACK,
    RESIDUAL_OPTION,
    cpu_local_sizes,
    o16_groups,
    o16_padded_bias,
    pack_o16_filter,
    pointwise_items,
)
from mace_cl.planning.ops.fused_activation import Activation
from mace_cl.planning.ops.spatial import Window
from mace_cl.planning.program_spec import ProgramSpec

WINOGRAD_PROGRAM = "winograd"
BATCHED_OPTION = "-DBATCHED"  # conv1x1_o32 runs several products, one per global index 2
POINTS = 16  # of the 4x4 transformed tile
TILE = 2  # outputs per tile along each axis

# F(2x2, 3x3)'s matrices: V = B^T d B, U = G g G^T, Y = A^T M A (kernels/winograd.cl
# applies B^T and A^T as the adds they are written out to).
FILTER_TRANSFORM = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# Convolutions with fewer input or output channels, or fewer tiles (N * ceil(H / 2) *
# ceil(W / 2)), stay direct: with few channels the transforms' passes over 4x-sized
# buffers cost more than the multiplies saved; with few tiles (7x7 outputs have 16) the
# products are too short to amortise reading U, 16/9 the bytes of the 3x3 weights
# (dev/bench/cpu_winograd.py). Near the channel threshold it is about even (32 channels
# at 28x28: 1.03x of the direct time, at 56x56: 0.78x).
WINOGRAD_MIN_CHANNELS = 32
WINOGRAD_MIN_TILES = 32

# OpPlan.scratch_bytes keys of the buffers between the launches
TRANSFORMED_INPUT = "winograd_input"
PRODUCTS = "winograd_products"
SCRATCH_VALUE_BYTES = 4  # float32: models stored in half do not take F(2x2, 3x3)


def takes_winograd(
    window: Window, c_in: int, out_shape: Shape, centre_pairs: int, float32_storage: bool
) -> bool:
    """Whether a Conv that ops/conv.py would run on conv2d_o32 (a CPU plan, group 1, a
    constant bias) runs as F(2x2, 3x3) instead.

    Not in models stored in half (``PlanContext.float32_storage``): V and M would be rounded
    to half on the way. Not with pairs that the converter merged in from a 1x1 convolution
    (``centre_pairs``): conv2d_o32 runs those as 1x1, 4 multiplies per tile where F(2x2,
    3x3) does 16."""
    out = Nhwc4Shape.of(out_shape)
    return (
        float32_storage
        and window.kernel == (3, 3)
        and window.stride == (1, 1)
        and window.dilation == (1, 1)
        and min(c_in, out.c) >= WINOGRAD_MIN_CHANNELS
        and tile_count(out) >= WINOGRAD_MIN_TILES
        and centre_pairs == 0
    )


def tile_count(out: Nhwc4Shape) -> int:
    return out.n * -(-out.h // TILE) * -(-out.w // TILE)


def transformed_filter(weights: np.ndarray) -> np.ndarray:
    """``[C_out, C_in, 3, 3]`` weights as U = G g G^T, the 16 points one after another, each
    packed by ``pack_o16_filter`` as a 1x1 convolution's (what conv1x1_o32 -DBATCHED reads).
    Computed in float64, rounded once."""
    c_out, c_in = weights.shape[:2]
    u = np.einsum("aj,oijl,bl->aboi", FILTER_TRANSFORM, weights.astype(np.float64), FILTER_TRANSFORM)
    points = u.reshape(POINTS, c_out, c_in, 1, 1).astype(np.float32)
    return np.concatenate([pack_o16_filter(point) for point in points])


def winograd_launches(
    plan: OpPlan,
    x: KernelArg,
    weights: np.ndarray,
    window: Window,
    in_hw: tuple[int, int],
    c_in: int,
    out_shape: Shape,
    activation: Activation,
    residual: str | None,
) -> list[KernelLaunch]:
    """The three launches of F(2x2, 3x3) of ``weights`` over ``x`` (``in_hw`` its H, W) with
    ``plan.constants["bias"]`` (``o16_bias``); sets ``plan``'s filter, the products' zero
    bias and the two scratch buffers. ``residual`` (a tensor shaped like the output) is
    added before the activation."""
    out = Nhwc4Shape.of(out_shape)
    tiles_h, tiles_w = -(-out.h // TILE), -(-out.w // TILE)
    tiles = tile_count(out)
    in_c4 = channel_blocks(c_in)
    plan.constants["filter"] = transformed_filter(weights)
    plan.constants["products_bias"] = o16_padded_bias(np.zeros(out.c, np.float32))
    plan.scratch_bytes[TRANSFORMED_INPUT] = POINTS * tiles * in_c4 * 4 * SCRATCH_VALUE_BYTES
    plan.scratch_bytes[PRODUCTS] = POINTS * tiles * out.c4 * 4 * SCRATCH_VALUE_BYTES
    tile_grid = (tiles_w, out.n * tiles_h)
    transform = KernelLaunch(
        ProgramSpec(WINOGRAD_PROGRAM),
        "winograd_input",
        (o16_groups(c_in), *tile_grid),
        (
            ScratchArg(TRANSFORMED_INPUT),
            x,
            IntArg(in_hw[0]),
            IntArg(in_hw[1]),
            IntArg(c_in),
            IntArg(tiles),
            IntArg(tiles_h),
            IntArg(tiles_w),
            IntArg(window.pad_begin[0]),
            IntArg(window.pad_begin[1]),
        ),
        tuned_local_sizes=cpu_local_sizes(3),
    )
    products = KernelLaunch(
        ProgramSpec("conv2d_o16", (BATCHED_OPTION,)),
        "conv1x1_o32",
        (-(-out.c // O16_PACK), pointwise_items(tiles, out.c, POINTS), POINTS),
        (
            ScratchArg(PRODUCTS),
            ScratchArg(TRANSFORMED_INPUT),
            ConstantArg("filter"),
            ConstantArg("products_bias"),
            IntArg(tiles),
            IntArg(in_c4),
            IntArg(out.c),
            *Activation().kernel_args(),
        ),
        tuned_local_sizes=cpu_local_sizes(3),
    )
    finish = KernelLaunch(
        ProgramSpec(
            WINOGRAD_PROGRAM,
            (*((RESIDUAL_OPTION,) if residual is not None else ()), *activation.build_options()),
        ),
        "winograd_output",
        (o16_groups(out.c), *tile_grid),
        (
            OutputArg(0),
            ScratchArg(PRODUCTS),
            ConstantArg("bias"),
            IntArg(out.h),
            IntArg(out.w),
            IntArg(out.c),
            IntArg(tiles),
            IntArg(tiles_h),
            IntArg(tiles_w),
            *((TensorArg(residual),) if residual is not None else ()),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=cpu_local_sizes(3),
    )
    return [transform, products, finish]
