"""MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool (1-D and 2-D) and the internal
SqueezeExcite (a squeeze-excite gate) -> kernels/pooling.cl.

CPU plans run pool2d_o16 (16 channels times 4 outputs per work-item, local size 1, as
the conv2d_o16.cl kernels), GPU plans pool2d (a float4 per work-item).

Supported: kernel_shape, strides, pads, dilations, ceil_mode, auto_pad and, for
AveragePool, count_include_pad. Not supported: MaxPool's optional second output
(Indices) and LpPool.
"""

from __future__ import annotations

import numpy as np

from mace_cl.model.graph import Node
from mace_cl.planning.layout import channel_blocks
from mace_cl.planning.ops.base import (
    SHAPES_CONTEXT,
    ConstantArg,
    CounterArg,
    IntArg,
    KernelArg,
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
from mace_cl.planning.ops.fused_activation import ACTIVATIONS, Activation, fused_activation
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


def _pool_parts(batch: int, channels: int, pixels: int) -> int:
    """Into how many pixel ranges global_pool_wg -DPOOL_PARTIAL cuts a global pool."""
    blocks = channel_blocks(channels)
    groups = -(-blocks // min(GLOBAL_POOL_BLOCKS, 1 << (blocks - 1).bit_length())) * batch
    return max(1, min(GLOBAL_POOL_TARGET_GROUPS // groups, pixels // GLOBAL_POOL_MIN_PART_PIXELS))


def _global_pool_wg_shape(
    batch: int, channels: int, parts: int
) -> tuple[tuple[int, ...], tuple[int, ...], LocalMemArg]:
    """global_pool_wg's global size, local size and local scratch."""
    blocks = channel_blocks(channels)
    lanes = min(GLOBAL_POOL_BLOCKS, 1 << (blocks - 1).bit_length())
    global_size = (-(-blocks // lanes) * lanes, GLOBAL_POOL_SLICES, batch * parts)
    return global_size, (lanes, GLOBAL_POOL_SLICES, 1), LocalMemArg(lanes * GLOBAL_POOL_SLICES * 16)


def _partial_pool(
    plan: OpPlan, x: KernelArg, reduction: str, batch: int, channels: int, pixels: int, parts: int
) -> None:
    """global_pool_wg -DPOOL_PARTIAL: each of ``parts`` pixel ranges folded into PARTIAL_SCRATCH."""
    plan.scratch_bytes[PARTIAL_SCRATCH] = batch * parts * channel_blocks(channels) * 16  # float4 each
    global_size, local, scratch = _global_pool_wg_shape(batch, channels, parts)
    plan.launches.append(
        KernelLaunch(
            ProgramSpec("pooling", (reduction, "-DPOOL_PARTIAL")),
            "global_pool_wg",
            global_size,
            (
                ScratchArg(PARTIAL_SCRATCH),
                x,
                IntArg(pixels),
                IntArg(channels),
                *Activation().kernel_args(),
                scratch,
                IntArg(parts),
            ),
            local_size=local,
        )
    )


def _global_pool_gpu(node: Node, x: str, out_shape: tuple[int, ...], pixels: int) -> OpPlan:
    """global_pool_wg (work-group reduction: GLOBAL_POOL_SLICES work-items share each
    channel block's pixels, GLOBAL_POOL_BLOCKS adjacent blocks per work-group, coalesced
    reads); over many pixels in parts, then global_pool_finish."""
    activation = fused_activation(node)
    reduction = _REDUCTION[node.op_type]
    batch, channels = out_shape[:2]
    plan = OpPlan(output_shapes=[out_shape])
    blocks = channel_blocks(channels)
    parts = _pool_parts(batch, channels, pixels)
    if parts == 1:
        wg_size, local, scratch = _global_pool_wg_shape(batch, channels, 1)
        program = ProgramSpec("pooling", (reduction, *activation.build_options()))
        plan.launches.append(
            KernelLaunch(
                program,
                "global_pool_wg",
                wg_size,
                (
                    OutputArg(0),
                    TensorArg(x),
                    IntArg(pixels),
                    IntArg(channels),
                    *activation.kernel_args(),
                    scratch,
                ),
                local_size=local,
            )
        )
        return plan
    _partial_pool(plan, TensorArg(x), reduction, batch, channels, pixels, parts)
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


# squeeze_excite (plans for other devices than GPUs): one work-group of SE_LOCAL_SIZE work-items per batch item;
# reading x directly while each work-item reads at most SE_DIRECT_LOADS float4s, else
# after global_pool_wg -DPOOL_PARTIAL (more work-groups for the pixels, one more launch).
SE_LOCAL_SIZE = 64
SE_DIRECT_LOADS = 64
SE_FC_MIN_BLOCKS = 4  # input channel blocks per work-item of the hidden layer, at least
# se_squeeze (+ se_excite) (GPU plans): work-groups of SE_GPU_LOCAL_SIZE work-items, or
# with a device fence (PlanContext.device_fence) SE_LAST_GROUP_LOCAL_SIZE, whose last
# work-group computes the whole gate (one launch; more work-items for that tail). The
# squeeze's work-groups take SE_SQUEEZE_BLOCKS channel blocks each, and the pixels in
# parts of at least SE_MIN_PART_LOADS float4s per work-item until there are
# GLOBAL_POOL_TARGET_GROUPS work-groups; se_excite's work-items take about SE_EXCITE_ROWS
# hidden rows each.
SE_GPU_LOCAL_SIZE = 256
SE_LAST_GROUP_LOCAL_SIZE = 1024
SE_SQUEEZE_BLOCKS = 8
SE_MIN_PART_LOADS = 4
SE_EXCITE_ROWS = 4
SE_PARTIAL_SCRATCH = "se_partial"  # OpPlan.scratch_bytes key of se_squeeze's sums
SE_ARRIVALS = "se_arrivals"  # OpPlan.counters key: se_squeeze's groups finished per image


@register_op("SqueezeExcite", needs_context=True, internal=True)
def plan_squeeze_excite(node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT) -> OpPlan:
    """GlobalAveragePool -> 1x1 Conv (``hidden_activation*``) -> 1x1 Conv (``activation*``)
    as one kernel (the converter's squeeze_excite pass writes this internal op).

    Inputs: x [N, C, H, W], w1 [S, C, 1, 1], b1 [S] or omitted, w2 [C_out, S, 1, 1], b2
    [C_out] or omitted; weights and biases constant. Output: the gate [N, C_out, 1, 1]."""
    if len(inputs) not in (4, 5):
        raise OpError(node, f"expects 4 or 5 inputs (x, w1, b1, w2, b2), got {len(inputs)}")
    inputs = [*inputs, PlanInput("", None)][:5]  # the biases may be omitted
    x = runtime_input(node, inputs[0])
    assert x.shape is not None
    if len(x.shape) != 4:
        raise OpError(node, f"the input must be rank 4 [N, C, H, W], got {list(x.shape)}")
    w1, b1, w2, b2 = (
        _se_constant(node, item, name)
        for item, name in zip(inputs[1:], ("w1", "b1", "w2", "b2"), strict=True)
    )
    batch, channels, height, width = x.shape
    if w1 is None or w2 is None:
        raise OpError(node, "both weights (inputs 1 and 3) are required")
    hidden_size = w1.shape[0]
    out_channels = w2.shape[0]
    if w1.shape != (hidden_size, channels, 1, 1) or w2.shape != (out_channels, hidden_size, 1, 1):
        raise OpError(
            node,
            f"weights {list(w1.shape)} and {list(w2.shape)} do not fit {channels} channels: "
            f"expected [S, {channels}, 1, 1] and [C_out, S, 1, 1]",
        )
    for bias, size, name in ((b1, hidden_size, "b1"), (b2, out_channels, "b2")):
        if bias is not None and bias.shape != (size,):
            raise OpError(node, f"bias {name} has shape {list(bias.shape)}, expected [{size}]")
    blocks, out_blocks, pixels = channel_blocks(channels), channel_blocks(out_channels), height * width
    out_shape = (batch, out_channels, 1, 1)
    plan = OpPlan(output_shapes=[out_shape])
    plan.constants["w1"] = _padded_rows(w1.reshape(hidden_size, channels), blocks)
    plan.constants["b1"] = np.zeros(hidden_size, np.float32) if b1 is None else b1.astype(np.float32)
    plan.constants["w2"] = _padded_rows(w2.reshape(out_channels, hidden_size).T, out_blocks)
    plan.constants["b2"] = _padded_rows(
        np.zeros((1, out_channels), np.float32) if b2 is None else b2.reshape(1, -1), out_blocks
    ).reshape(-1)

    options = ("-DPOOL_AVG", *fused_activation(node).build_options(), *se_hidden_option(node))
    hidden = fused_activation(node, "hidden_")
    if context.gpu:
        _squeeze_excite_gpu(
            plan, node, inputs[0].name, x.shape, hidden_size, out_channels, options, context.device_fence
        )
        return plan
    size = SE_LOCAL_SIZE
    direct = blocks * pixels <= SE_DIRECT_LOADS * size
    source: KernelArg
    if direct:
        options += ("-DSE_DIRECT",)
        parts, source = 1, TensorArg(inputs[0].name)
    else:
        parts = _pool_parts(batch, channels, pixels)
        _partial_pool(plan, TensorArg(inputs[0].name), "-DPOOL_AVG", batch, channels, pixels, parts)
        source = ScratchArg(PARTIAL_SCRATCH)
    # Work-items per channel block while pooling (pixels or parts) and per hidden row.
    pool_slices = max(1, size // blocks)
    fc_slices = 1 << max(0, min(size, blocks // SE_FC_MIN_BLOCKS).bit_length() - 1)
    plan.launches.append(
        KernelLaunch(
            ProgramSpec("pooling", options),
            "squeeze_excite",
            (size * batch,),
            (
                OutputArg(0),
                source,
                IntArg(pixels),
                IntArg(parts),
                IntArg(channels),
                ConstantArg("w1"),
                ConstantArg("b1"),
                IntArg(hidden_size),
                *hidden.kernel_args(),
                ConstantArg("w2"),
                ConstantArg("b2"),
                IntArg(out_channels),
                *fused_activation(node).kernel_args(),
                IntArg(pool_slices),
                IntArg(fc_slices),
                LocalMemArg(blocks * 16),
                LocalMemArg(hidden_size * 4),
                LocalMemArg(size * 16),
            ),
            local_size=(size,),
        )
    )
    return plan


def _power_of_two_at_most(value: int) -> int:
    return 1 << (max(1, value).bit_length() - 1)


def _power_of_two_at_least(value: int) -> int:
    return 1 << (max(1, value) - 1).bit_length()


def _squeeze_excite_gpu(
    plan: OpPlan,
    node: Node,
    x: str,
    shape: tuple[int, ...],
    hidden_size: int,
    out_channels: int,
    options: tuple[str, ...],
    last_group_finishes: bool,
) -> None:
    """se_squeeze over channel slices and pixel parts, its partial sums in a scratch buffer
    of ``plan``; then its last work-group (``last_group_finishes``, with counters of
    ``plan``) or se_excite over output slices computes the gate."""
    batch, channels, height, width = shape
    blocks, out_blocks, pixels = channel_blocks(channels), channel_blocks(out_channels), height * width
    size = SE_LAST_GROUP_LOCAL_SIZE if last_group_finishes else SE_GPU_LOCAL_SIZE
    group_blocks = min(SE_SQUEEZE_BLOCKS, _power_of_two_at_least(blocks))
    groups = -(-blocks // group_blocks)
    part_pixels = size // group_blocks * SE_MIN_PART_LOADS
    parts = max(1, min(GLOBAL_POOL_TARGET_GROUPS // (groups * batch), pixels // part_pixels))
    count = groups * parts
    plan.scratch_bytes[SE_PARTIAL_SCRATCH] = batch * count * hidden_size * 4  # float each
    gate_args, out_group_blocks = se_gate_args(
        node, size, count, hidden_size, out_channels, last_group_finishes
    )
    squeeze_args: tuple[KernelArg, ...] = (
        ScratchArg(SE_PARTIAL_SCRATCH),
        TensorArg(x),
        IntArg(pixels),
        IntArg(parts),
        IntArg(channels),
        ConstantArg("w1"),
        IntArg(hidden_size),
        IntArg(group_blocks),
        LocalMemArg(size * 16),
    )
    hidden_locals = (LocalMemArg(hidden_size * 4), LocalMemArg(size * 4))
    if last_group_finishes:
        plan.counters[SE_ARRIVALS] = batch
        squeeze_args += (OutputArg(0), *gate_args, CounterArg(SE_ARRIVALS), *hidden_locals)
        options += ("-DSE_LAST_GROUP",)
    program = ProgramSpec("pooling", (*options, f"-DSE_LOCAL_X={size}"))  # se_squeeze's local size
    plan.launches.append(
        KernelLaunch(
            program, "se_squeeze", (groups * size, batch * parts), squeeze_args, local_size=(size, 1)
        )
    )
    if last_group_finishes:
        return
    plan.launches.append(
        KernelLaunch(
            program,
            "se_excite",
            (-(-out_blocks // out_group_blocks) * size, batch),
            (
                OutputArg(0),
                ScratchArg(SE_PARTIAL_SCRATCH),
                IntArg(count),
                IntArg(pixels),
                gate_args[0],
                IntArg(hidden_size),
                *gate_args[1:],
                *hidden_locals,
                LocalMemArg(size * 16),
            ),
            local_size=(size, 1),
        )
    )


def se_gate_args(
    node: Node, size: int, count: int, hidden_size: int, out_channels: int, one_group: bool
) -> tuple[tuple[KernelArg, ...], int]:
    """kernels/se_gate.h's arguments from b1 to out_group_blocks for work-groups of ``size``
    work-items adding ``count`` partials per hidden row (constants w1, b1, w2, b2 as
    plan_squeeze_excite packs them). Work-items per hidden row: all rows in one pass where
    they fit; per output block: with ``one_group`` (one work-group computes the whole
    gate) as few as put every block in one pass, else about SE_EXCITE_ROWS rows each. And
    out_group_blocks itself."""
    row_slices = min(_power_of_two_at_most(size // hidden_size), _power_of_two_at_least(count))
    out_blocks = channel_blocks(out_channels)
    if one_group:
        out_group_blocks = min(size, _power_of_two_at_least(out_blocks))
    else:
        slices = min(size, _power_of_two_at_least(-(-hidden_size // SE_EXCITE_ROWS)))
        out_group_blocks = min(size // slices, _power_of_two_at_least(out_blocks))
    args = (
        ConstantArg("b1"),
        *fused_activation(node, "hidden_").kernel_args(),
        ConstantArg("w2"),
        ConstantArg("b2"),
        IntArg(out_channels),
        *fused_activation(node).kernel_args(),
        IntArg(row_slices),
        IntArg(out_group_blocks),
    )
    return args, out_group_blocks


def se_hidden_option(node: Node) -> tuple[str, ...]:
    """-DHIDDEN_ACTIVATION for ``node``'s hidden_activation* attributes (kernels/se_gate.h)."""
    hidden = fused_activation(node, "hidden_")
    return () if hidden.kind == "none" else (f"-DHIDDEN_ACTIVATION=ACT_{ACTIVATIONS[hidden.kind].macro}",)


def _se_constant(node: Node, item: PlanInput, name: str) -> np.ndarray | None:
    if not item.present:
        return None
    if item.value is None:
        raise OpError(node, f"{name} must be a constant (it is the run-time tensor {item.name!r})")
    return np.asarray(item.value, dtype=np.float32)


def _padded_rows(matrix: np.ndarray, blocks: int) -> np.ndarray:
    """``matrix`` [rows, cols] with its columns zero-padded to ``blocks`` float4s."""
    padded = np.zeros((matrix.shape[0], blocks * 4), np.float32)
    padded[:, : matrix.shape[1]] = matrix
    return padded
