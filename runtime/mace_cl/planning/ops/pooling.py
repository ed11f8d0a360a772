"""MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool (1-D and 2-D) -> kernels/pooling.cl.

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
    TensorArg,
    attr_int,
    expect_input_count,
)
from mace_cl.planning.ops.fused_activation import fused_activation
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


@register_op("MaxPool", "AveragePool")
def plan_pool(node: Node, inputs: list[PlanInput]) -> OpPlan:
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
    launch = KernelLaunch(
        ProgramSpec("pooling", (_REDUCTION[node.op_type], *activation.build_options())),
        "pool2d",
        (channel_blocks(channels), out_w, x.shape[0] * out_h),
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
    if context.gpu:
        # Work-group reduction: GLOBAL_POOL_SLICES work-items share each channel block's
        # pixels, GLOBAL_POOL_BLOCKS adjacent blocks per work-group (coalesced reads).
        blocks = channel_blocks(channels)
        lanes = min(GLOBAL_POOL_BLOCKS, 1 << (blocks - 1).bit_length())
        launch = KernelLaunch(
            program,
            "global_pool_wg",
            (-(-blocks // lanes) * lanes, GLOBAL_POOL_SLICES, x.shape[0]),
            (
                OutputArg(0),
                TensorArg(x.name),
                IntArg(in_h * in_w),
                IntArg(channels),
                *activation.kernel_args(),
                LocalMemArg(lanes * GLOBAL_POOL_SLICES * 16),
            ),
            local_size=(lanes, GLOBAL_POOL_SLICES, 1),
        )
        return OpPlan(output_shapes=[output_shape(x.shape, channels, (1, 1))], launches=[launch])
    launch = KernelLaunch(
        program,
        "global_pool",
        (channel_blocks(channels), x.shape[0]),
        (OutputArg(0), TensorArg(x.name), IntArg(in_h * in_w), IntArg(channels), *activation.kernel_args()),
    )
    return OpPlan(output_shapes=[output_shape(x.shape, channels, (1, 1))], launches=[launch])
