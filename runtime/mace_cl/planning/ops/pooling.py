"""MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool (1-D and 2-D) -> kernels/pooling.cl.

CPU plans run pool2d_o16 (16 channels times 4 outputs per work-item, local size 1, as
the conv2d_o16.cl kernels), GPU plans pool2d (a float4 per work-item).

Supported: kernel_shape, strides, pads, dilations, ceil_mode, auto_pad and, for
AveragePool, count_include_pad. Not supported: MaxPool's optional second output
(Indices) and LpPool.
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.layout import channel_blocks
from mace_cl.planning.ops.base import (
    SHAPES_CONTEXT,
    IntArg,
    KernelLaunch,
    LocalMemArg,
    OpError,
    OpPlan,
    OutputArg,
    PlanContext,
    PlanInput,
    ScratchArg,
    TensorArg,
    attr_int,
    expect_input_count,
)
from mace_cl.planning.ops.conv_kernels import cpu_local_sizes, gpu_local_size
from mace_cl.planning.ops.fused_activation import Activation, fused_activation
from mace_cl.planning.ops.op_inputs import runtime_input
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.ops.spatial import (
    kernel_shape_attr,
    output_shape,
    read_window,
    resolve_window,
    spatial_rank,
    spatial_sizes,
)
from mace_cl.planning.program_spec import ProgramSpec

_REDUCTION = {
    "MaxPool": "-DPOOL_MAX",
    "AveragePool": "-DPOOL_AVG",
    "GlobalMaxPool": "-DPOOL_MAX",
    "GlobalAveragePool": "-DPOOL_AVG",
}


# global_pool_wg (GPU plans): work-items per channel block, channel blocks per group.
GLOBAL_POOL_SLICES = 16
GLOBAL_POOL_BLOCKS = 16
# Two-stage global pooling (global_pool_wg -DPOOL_PARTIAL, then global_pool_finish): the
# pixels are cut into parts until there are GLOBAL_POOL_TARGET_GROUPS work-groups (two
# per SM of an H100), each part at least GLOBAL_POOL_MIN_PART_PIXELS pixels long (four
# per work-item).
GLOBAL_POOL_TARGET_GROUPS = 264
GLOBAL_POOL_MIN_PART_PIXELS = 64
PARTIAL_SCRATCH = "partial"  # OpPlan.scratch_bytes key of the parts' results


def _global_pool_gpu(node: Node, x: str, out_shape: tuple[int, ...], pixels: int) -> OpPlan:
    """global_pool_wg (work-group reduction: GLOBAL_POOL_SLICES work-items share each
    channel block's pixels, GLOBAL_POOL_BLOCKS adjacent blocks per work-group, coalesced
    reads); over many pixels in parts, then global_pool_finish."""
    activation = fused_activation(node)
    reduction = _REDUCTION[node.op_type]
    batch, channels = out_shape[:2]
    plan = OpPlan(output_shapes=[out_shape])
    blocks = channel_blocks(channels)
    lanes = min(GLOBAL_POOL_BLOCKS, 1 << (blocks - 1).bit_length())
    groups = -(-blocks // lanes) * batch
    parts = max(1, min(GLOBAL_POOL_TARGET_GROUPS // groups, pixels // GLOBAL_POOL_MIN_PART_PIXELS))
    pool_args = (TensorArg(x), IntArg(pixels), IntArg(channels))
    wg_size = (-(-blocks // lanes) * lanes, GLOBAL_POOL_SLICES, batch * parts)
    scratch = LocalMemArg(lanes * GLOBAL_POOL_SLICES * 16)
    local = (lanes, GLOBAL_POOL_SLICES, 1)
    if parts == 1:
        program = ProgramSpec("pooling", (reduction, *activation.build_options()))
        plan.launches.append(
            KernelLaunch(
                program,
                "global_pool_wg",
                wg_size,
                (OutputArg(0), *pool_args, *activation.kernel_args(), scratch),
                local_size=local,
            )
        )
        return plan
    plan.scratch_bytes[PARTIAL_SCRATCH] = batch * parts * blocks * 16  # float4 per part and block
    plan.launches.append(
        KernelLaunch(
            ProgramSpec("pooling", (reduction, "-DPOOL_PARTIAL")),
            "global_pool_wg",
            wg_size,
            (ScratchArg(PARTIAL_SCRATCH), *pool_args, *Activation().kernel_args(), scratch, IntArg(parts)),
            local_size=local,
        )
    )
    finish_size, finish_local = gpu_local_size((blocks, batch))
    plan.launches.append(
        KernelLaunch(
            ProgramSpec("pooling", (reduction, *activation.build_options())),
            "global_pool_finish",
            finish_size,
            (
                OutputArg(0),
                ScratchArg(PARTIAL_SCRATCH),
                IntArg(pixels),
                IntArg(channels),
                IntArg(parts),
                IntArg(batch),
                *activation.kernel_args(),
            ),
            tuned_local_sizes=(("gpu", finish_local),),
        )
    )
    return plan


def _flag(node: Node, key: str) -> bool:
    value = attr_int(node, key, 0)
    if value not in (0, 1):
        raise OpError(node, f"attribute {key!r} must be 0 or 1, got {value}")
    return value == 1


def _pool_outputs(node: Node, out_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    # MaxPool may list an Indices output; only an omitted ("") one can be planned.
    if len(node.outputs) > 1 and any(node.outputs[1:]):
        raise OpError(node, "the Indices output of MaxPool is not supported; remove it from the node")
    return [out_shape] * len(node.outputs)


# pool2d_o16: outputs along W per work-item (POOL_PIXELS in pooling.cl).
POOL_O16_PIXELS = 4


@register_op("MaxPool", "AveragePool", needs_context=True)
def plan_pool(node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT) -> OpPlan:
    expect_input_count(node, inputs, 1)
    x = runtime_input(node, inputs[0])
    rank = spatial_rank(node, x.shape)
    assert x.shape is not None
    kernel = kernel_shape_attr(node, rank)
    if kernel is None:
        raise OpError(node, "attribute 'kernel_shape' is required")
    window, auto_pad = read_window(node, rank, kernel)
    ceil_mode = _flag(node, "ceil_mode")
    include_pad = _flag(node, "count_include_pad") if node.op_type == "AveragePool" else False
    in_h, in_w = spatial_sizes(x.shape)
    window, (out_h, out_w) = resolve_window(node, window, auto_pad, (in_h, in_w), ceil_mode=ceil_mode)
    channels = x.shape[1]
    out_shape = output_shape(x.shape, channels, (out_h, out_w))
    activation = fused_activation(node)
    # CPU devices: 16 channels and several outputs per work-item (pool2d_o16).
    wide = not context.gpu
    launch = KernelLaunch(
        ProgramSpec("pooling", (_REDUCTION[node.op_type], *activation.build_options())),
        "pool2d_o16" if wide else "pool2d",
        (-(-channel_blocks(channels) // 4), -(-out_w // POOL_O16_PIXELS), x.shape[0] * out_h)
        if wide
        else (channel_blocks(channels), out_w, x.shape[0] * out_h),
        (
            OutputArg(0),
            TensorArg(x.name),
            IntArg(in_h),
            IntArg(in_w),
            IntArg(out_h),
            IntArg(out_w),
            IntArg(channels),
            *(IntArg(v) for v in (*window.kernel, *window.stride, *window.pad_begin, *window.dilation)),
            IntArg(window.pad_end[0]),
            IntArg(window.pad_end[1]),
            IntArg(int(include_pad)),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=cpu_local_sizes(3) if wide else (),
    )
    return OpPlan(output_shapes=_pool_outputs(node, out_shape), launches=[launch])


@register_op("GlobalMaxPool", "GlobalAveragePool", needs_context=True)
def plan_global_pool(node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT) -> OpPlan:
    expect_input_count(node, inputs, 1)
    x = runtime_input(node, inputs[0])
    spatial_rank(node, x.shape)
    assert x.shape is not None
    in_h, in_w = spatial_sizes(x.shape)
    channels = x.shape[1]
    activation = fused_activation(node)
    program = ProgramSpec("pooling", (_REDUCTION[node.op_type], *activation.build_options()))
    out_shape = output_shape(x.shape, channels, (1, 1))
    if context.gpu:
        return _global_pool_gpu(node, x.name, out_shape, in_h * in_w)
    launch = KernelLaunch(
        program,
        "global_pool",
        (channel_blocks(channels), x.shape[0]),
        (OutputArg(0), TensorArg(x.name), IntArg(in_h * in_w), IntArg(channels), *activation.kernel_args()),
    )
    return OpPlan(output_shapes=[out_shape], launches=[launch])
