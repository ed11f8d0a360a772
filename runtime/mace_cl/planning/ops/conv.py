"""Conv (1-D and 2-D, groups, dilation, auto_pad, fused activation) -> kernels/conv2d_o16.cl
or kernels/conv2d.cl.

Variants, chosen at planning time:

- 16-channel kernels of ``kernels/conv2d_o16.cl`` (explicit ``float16`` vectors,
  several outputs per work-item held in registers) whenever they apply and the bias is
  a constant (or absent), because they are several times faster on CPU devices, where
  a float4 work-item wastes most of the SIMD width:
  ``conv1x1_o32`` for group-1 1x1 convolutions with stride 1 and no padding (pixels
  flattened), ``conv2d_o32`` (``conv2d_o16`` up to 16 output channels) for any other
  group-1 convolution, ``depthwise_o16`` for depthwise ones.
  Filters packed by ``pack_o16_filter`` and ``pack_depthwise_o16_filter``. 3x3
  stride-1 ones large enough run as Winograd F(2x2, 3x3) instead (ops/winograd.py,
  ``takes_winograd``), where the model stores float32. On CPU
  devices they run one work-item per work-group (``cpu_local_sizes``). The work split
  (work-items per pixel block, channel pairs) is tuned for CPUs; see
  docs/performance.md.
- ``depthwise_conv2d`` (conv2d.cl) for depthwise convolutions (``group == C_in ==
  C_out`` > 1) with a run-time bias: one float4 of 4 channels per tap. Filter packed as
  ``float4 [C4][KH][KW]`` (lane = channel within the block, zero for channels >= C).
- ``conv2d`` (conv2d.cl) otherwise (grouped convolutions, run-time bias), with
  ``-DCONV_1X1`` for unpadded 1x1 filters and ``-DFILTER_H=3 -DFILTER_W=3`` for 3x3
  ones (unrolled taps); any other size uses the generic loops. Filter packed "blocked",
  see ``pack_blocked_filter``.

Groups need no special kernel: each output block reads a fixed number (``span``) of
input channel blocks, and weights between channels of different groups are packed as
zero. With ``C_in/group`` and ``C_out/group`` multiples of 4 that wastes nothing; a
depthwise conv with channel multiplier > 1 (``C_out = m * C_in``) also lands here and
does at most 4x the useful multiply-adds.

Residual: an optional fourth input (the converter's ``fuse_residual`` pass puts it
there for ``Add(Conv(...), other)``) is a run-time tensor shaped like the output,
added before the fused activation: ``out = act(conv(x) + bias + residual)``.
``conv1x1_o32`` and ``conv2d_gpu_tiled`` (and SeparableConv's ``depthwise_conv1x1_o32``)
add it before their store (``-DRESIDUAL``), which saves the Add's launch and its pass over
the tensor; every other variant runs the convolution without the activation and then
the ``eltwise`` Add that the graph had before fusion, with the activation.

The filter packing (``pack_*``), ``cpu_local_sizes`` and the launches other ops make too
(``pointwise_o16_launch``, ``conv2d_gpu_launch``, ``gpu_pointwise_launch``) are in
ops/conv_kernels.py; this module is the Conv op: which variant runs, and its launches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape, broadcast_float_strides, channel_blocks, nhwc4_nbytes
from mace_cl.planning.ops.base import (
    SHAPES_CONTEXT,
    ConstantArg,
    CounterArg,
    IntArg,
    KernelArg,
    KernelLaunch,
    OpError,
    OpPlan,
    OutputArg,
    PlanContext,
    PlanInput,
    ScratchArg,
    Shape,
    TensorArg,
    attr_int,
    expect_input_count,
)
from mace_cl.planning.ops.broadcast import BroadcastOperand, broadcast_operand
from mace_cl.planning.ops.conv_kernels import (
    FC_MAX_ROWS,
    GPU_GROUP_ITEMS,
    GPU_MAX_LOCAL,
    GPU_TARGET_ITEMS,
    O16,
    O16_CONV_MIN_ITEMS,
    O16_DW_PIXELS,
    O16_PACK,
    O16_PAIR_PIXELS,
    O16_ROW_PIXELS,
    OUTPUTS_PER_ITEM,
    RESIDUAL_OPTION,
    bias_arg,
    constant_weights,
    conv2d_gpu_launch,
    cpu_local_sizes,
    gpu_local_size,
    gpu_pointwise_launch,
    o16_bias,
    o16_groups,
    pack_blocked_filter,
    pack_depthwise_filter,
    pack_depthwise_o16_filter,
    pack_gpu_filter,
    pack_grouped_pointwise,
    pack_o16_filter,
    pointwise_items,
    pointwise_o16_launch,
    takes_grouped_pointwise,
    window_args,
)
from mace_cl.planning.ops.copy_kernels import COPY_PROGRAM, GATHER_MAX_INPUTS
from mace_cl.planning.ops.eltwise import eltwise_launch
from mace_cl.planning.ops.fused_activation import ACTIVATIONS, Activation, fused_activation
from mace_cl.planning.ops.op_inputs import runtime_input
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.ops.spatial import (
    Window,
    kernel_shape_attr,
    output_shape,
    read_window,
    resolve_window,
    spatial_rank,
    spatial_sizes,
)
from mace_cl.planning.ops.winograd import takes_winograd, winograd_launches
from mace_cl.planning.program_spec import ProgramSpec


def filter_size_options(window: Window) -> tuple[str, ...]:
    if window.kernel == (3, 3):
        return ("-DFILTER_H=3", "-DFILTER_W=3")
    return ()


# ---- Conv ---------------------------------------------------------------------------


# Grouped 1x1 convolutions with at most this many groups become dense ones (see plan_conv).
DENSE_GROUPS_MAX = 4


def dense_grouped_weights(weights: np.ndarray, group: int) -> np.ndarray:
    """[C_out, C_in / group, 1, 1] grouped weights as [C_out, C_in, 1, 1], zero between groups."""
    c_out, per_group = weights.shape[:2]
    dense = np.zeros((c_out, per_group * group, *weights.shape[2:]), dtype=weights.dtype)
    outputs_per_group = c_out // group
    for g in range(group):
        rows = slice(g * outputs_per_group, (g + 1) * outputs_per_group)
        dense[rows, g * per_group : (g + 1) * per_group] = weights[rows]
    return dense


@register_op("Conv", needs_context=True)
def plan_conv(node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT) -> OpPlan:
    expect_input_count(node, inputs, 2, 5)
    residual = inputs[3] if len(inputs) > 3 and inputs[3].present else None
    input_scale = inputs[4] if len(inputs) > 4 and inputs[4].present else None
    activation = fused_activation(node)
    x = runtime_input(node, inputs[0])
    if input_scale is not None:
        _check_input_scale(node, x.shape, input_scale)
    plan = plan_convolution(node, inputs[:3], context, activation, residual, input_scale)
    # No kernel variant took the input scale: multiply into a scratch buffer first, and
    # convolve that.
    x_arg = None
    if input_scale is not None and not uses_input_scale(plan):
        x_arg = ScratchArg(SCALED_INPUT)
        plan = plan_convolution(node, inputs[:3], context, activation, residual, None, x_arg)
        input_scale = None
    if residual is not None:
        out_shape = plan.output_shapes[0]
        if residual.shape != out_shape:
            raise OpError(
                node,
                f"the residual (input 3) must have the output's shape {list(out_shape)}, "
                f"got {list(residual.shape or ())}",
            )
        if not uses_residual(plan):
            # No kernel variant took the residual: convolve without the activation, then
            # Add (planned again because the activation is built into the convolution's program).
            plan = plan_convolution(node, inputs[:3], context, Activation(), None, input_scale, x_arg)
            geo = Nhwc4Shape.of(out_shape)
            own_output = BroadcastOperand(OutputArg(0), geo.float_strides())
            operand = broadcast_operand(plan, "residual", residual, out_shape)
            plan.launches.append(eltwise_launch("OP_ADD", own_output, operand, geo, activation))
    if x_arg is not None:
        assert x.shape is not None and inputs[4].shape is not None
        geo = Nhwc4Shape.of(x.shape)
        source = BroadcastOperand(TensorArg(x.name), geo.float_strides())
        scale = BroadcastOperand(TensorArg(inputs[4].name), broadcast_float_strides(inputs[4].shape, x.shape))
        plan.launches.insert(0, eltwise_launch("OP_MUL", source, scale, geo, Activation(), dest=x_arg))
        plan.scratch_bytes[SCALED_INPUT] = nhwc4_nbytes(x.shape)
    return plan


def _check_input_scale(node: Node, x_shape: Shape | None, input_scale: PlanInput) -> None:
    """Input 4 scales each input channel (a squeeze-excite gate the converter folded in):
    a run-time tensor [N, C_in, 1, 1]."""
    assert x_shape is not None
    want = (x_shape[0], x_shape[1], 1, 1)
    if input_scale.value is not None or input_scale.shape != want:
        raise OpError(
            node,
            f"the input scale (input 4) must be a run-time tensor of shape {list(want)}, "
            f"got {'a constant of shape ' if input_scale.value is not None else ''}"
            f"{list(input_scale.shape or ())}",
        )


def _is_pointwise(window: Window) -> bool:
    """A 1x1, stride-1, unpadded window: the convolution is a GEMM over the pixels."""
    return (
        window.kernel == (1, 1)
        and window.stride == (1, 1)
        and window.pad_begin == (0, 0)
        and window.pad_end == (0, 0)
    )


def fusable_residual(residual: PlanInput | None, out_shape: Shape) -> str | None:
    """The name of ``residual`` if a kernel can add it: a run-time tensor of the output's shape."""
    if residual is None or residual.value is not None or residual.shape != out_shape:
        return None
    return residual.name


def uses_residual(plan: OpPlan) -> bool:
    return any(RESIDUAL_OPTION in launch.program.options for launch in plan.launches)


def uses_input_scale(plan: OpPlan) -> bool:
    return any(INPUT_SCALE_OPTION in launch.program.options for launch in plan.launches)


def plan_convolution(
    node: Node,
    inputs: list[PlanInput],
    context: PlanContext,
    activation: Activation,
    residual: PlanInput | None,
    input_scale: PlanInput | None = None,
    x_arg: KernelArg | None = None,
) -> OpPlan:
    """plan_conv without the fallback Add and Mul: ``residual`` and ``input_scale`` reach
    only the kernels that can apply them, the others ignore them. ``x_arg``: where the
    input is read from (default: the input tensor itself)."""
    x = runtime_input(node, inputs[0])
    if x_arg is None:
        x_arg = TensorArg(x.name)
    rank = spatial_rank(node, x.shape)
    assert x.shape is not None
    weights = constant_weights(node, inputs[1], rank)
    c_in, c_out = x.shape[1], weights.shape[0]
    group = attr_int(node, "group", 1)
    if group < 1 or c_in % group or c_out % group:
        raise OpError(
            node,
            f"group {group} must divide both the input channels ({c_in}) and the output channels ({c_out})",
        )
    if weights.shape[1] != c_in // group:
        raise OpError(
            node,
            f"the weights {list(weights.shape)} need {c_in // group} input channels per group "
            f"(input has {c_in} channels, group {group})",
        )
    kernel = list(weights.shape[2:])
    declared = kernel_shape_attr(node, rank)
    if declared is not None and declared != kernel:
        raise OpError(node, f"kernel_shape {declared} does not match the weights' spatial shape {kernel}")
    window, auto_pad = read_window(node, rank, kernel)
    in_h, in_w = spatial_sizes(x.shape)
    window, (out_h, out_w) = resolve_window(node, window, auto_pad, (in_h, in_w))
    out_shape: Shape = output_shape(x.shape, c_out, (out_h, out_w))
    weights = weights.reshape(c_out, c_in // group, *window.kernel)
    dense_groups = 1
    if 1 < group <= DENSE_GROUPS_MAX and group != c_in and window.kernel == (1, 1):
        # A grouped 1x1 convolution with few groups runs as a dense one whose weights between
        # groups are zero, on the group-1 kernels, which are far faster than conv2d's generic
        # grouped path (ShuffleNet v1's group-4 1x1s on PoCL: docs/performance.md);
        # conv1x1_o32 -DGROUPED repacks them per group (pack_grouped_pointwise). For finite
        # inputs the zeros add exactly nothing (an infinite input, say a half model's
        # overflow, would spread NaN to the other groups).
        weights, dense_groups, group = dense_grouped_weights(weights, group), group, 1

    bias_item = inputs[2] if len(inputs) > 2 else None
    source = channel_permutation(weights, group, window, bias_item)
    if source is not None and activation.kind == "none" and residual is None and input_scale is None:
        return permute_channels_plan(x_arg, out_shape, source)

    plan = OpPlan(output_shapes=[out_shape])
    n = x.shape[0]
    out = Nhwc4Shape.of(out_shape)
    in_c4 = channel_blocks(c_in)
    unpadded = window.pad_begin == (0, 0) and window.pad_end == (0, 0)

    if context.gpu and group == 1:
        bias = bias_arg(plan, node, bias_item, c_out)
        pixels = n * in_h * in_w
        if _is_pointwise(window) and not takes_tiled_pointwise(pixels, c_in):
            plan.launches.append(gpu_pointwise_launch(plan, x_arg, bias, weights, pixels, activation))
        else:
            plan.constants["filter"] = pack_gpu_filter(weights)
            in_hw = (in_h, in_w)
            if in_c4 >= GPU_TILED_MIN_C4:
                residual_name = fusable_residual(residual, out_shape)
                scale_name = input_scale.name if input_scale is not None else None
                plan.launches.extend(
                    conv2d_gpu_tiled_launches(
                        plan,
                        x_arg,
                        bias,
                        window,
                        in_hw,
                        c_in,
                        out_shape,
                        activation,
                        residual_name,
                        scale_name,
                        last_group_finishes=context.device_fence,
                        tf32_mma=context.tf32_mma,
                    )
                )
            else:
                plan.launches.append(
                    conv2d_gpu_launch(x_arg, bias, window, in_hw, c_in, out_shape, activation)
                )
        return plan

    bias16 = o16_bias(bias_item, c_out)
    depthwise = group == c_in == c_out and group > 1
    if not context.gpu and bias16 is not None and (group == 1 or depthwise):
        plan.constants["bias"] = bias16
        if depthwise:
            plan.constants["filter"] = pack_depthwise_o16_filter(weights)
            plan.launches.append(depthwise_o16_launch(x_arg, window, in_h, in_w, out_shape, activation))
        elif _is_pointwise(window):
            if takes_grouped_pointwise(n * in_h * in_w, dense_groups):
                plan.constants["filter"], plan.constants["bias"] = pack_grouped_pointwise(
                    weights, bias16[:c_out], dense_groups
                )
            else:
                plan.constants["filter"] = pack_o16_filter(weights)
            plan.launches.append(
                pointwise_o16_launch(
                    x_arg,
                    n * in_h * in_w,
                    c_in,
                    c_out,
                    activation,
                    fusable_residual(residual, out_shape),
                    dense_groups,
                )
            )
        else:
            centre_pairs = centre_only_pairs(weights)
            if takes_winograd(window, c_in, out_shape, centre_pairs, context.float32_storage):
                residual_name = fusable_residual(residual, out_shape)
                plan.launches.extend(
                    winograd_launches(
                        plan, x_arg, weights, window, (in_h, in_w), c_in, out_shape, activation, residual_name
                    )
                )
            else:
                plan.constants["filter"] = pack_o16_filter(weights)
                plan.launches.append(
                    conv2d_o16_launch(x_arg, window, in_h, in_w, c_in, out_shape, activation, centre_pairs)
                )
        return plan

    bias = bias_arg(plan, node, bias_item, c_out)

    if context.gpu and group == c_in == c_out and group > 1:
        plan.constants["filter"] = pack_depthwise_filter(weights)
        plan.launches.append(depthwise_gpu_launch(x_arg, bias, window, (in_h, in_w), out_shape, activation))
        return plan

    if group == c_in == c_out and group > 1:
        plan.constants["filter"] = pack_depthwise_filter(weights)
        program = ProgramSpec("conv2d", filter_size_options(window) + activation.build_options())
        depthwise_size = (out.c4, -(-out_w // OUTPUTS_PER_ITEM), n * out_h)
        plan.launches.append(
            KernelLaunch(
                program,
                "depthwise_conv2d",
                depthwise_size,
                (
                    OutputArg(0),
                    x_arg,
                    ConstantArg("filter"),
                    bias,
                    IntArg(in_h),
                    IntArg(in_w),
                    IntArg(out_h),
                    IntArg(out_w),
                    IntArg(c_out),
                    *window_args(window),
                    *activation.kernel_args(),
                ),
                tuned_local_sizes=gpu_divisor_local_sizes(depthwise_size),
            )
        )
        return plan

    packed, span = pack_blocked_filter(weights, group)
    plan.constants["filter"] = packed
    if _is_pointwise(window):
        plan.launches.append(
            pointwise_launch(x_arg, bias, n * in_h * in_w, c_in, c_out, group, span, activation)
        )
        return plan
    is_1x1 = window.kernel == (1, 1) and unpadded
    options = ("-DCONV_1X1",) if is_1x1 else filter_size_options(window)
    plan.launches.append(
        KernelLaunch(
            ProgramSpec("conv2d", options + activation.build_options()),
            "conv2d",
            (out.c4, -(-out_w // OUTPUTS_PER_ITEM), n * out_h),
            (
                OutputArg(0),
                x_arg,
                ConstantArg("filter"),
                bias,
                IntArg(in_h),
                IntArg(in_w),
                IntArg(in_c4),
                IntArg(out_h),
                IntArg(out_w),
                IntArg(c_out),
                *window_args(window),
                IntArg(c_in // group),
                IntArg(c_out // group),
                IntArg(span),
                *activation.kernel_args(),
            ),
        )
    )
    return plan


def channel_permutation(
    weights: np.ndarray, group: int, window: Window, bias: PlanInput | None
) -> np.ndarray | None:
    """For a 1x1 convolution that only moves channels (each output is one input times
    1.0, no bias; the converter makes ShuffleNet's channel shuffle one), the input channel
    of each output channel; None otherwise."""
    c_out, c_in = weights.shape[:2]
    unit = window.stride == (1, 1) and window.pad_begin == (0, 0) and window.pad_end == (0, 0)
    if group != 1 or c_out != c_in or window.kernel != (1, 1) or not unit:
        return None
    if bias is not None and bias.present and (bias.value is None or np.any(bias.value)):
        return None
    matrix = weights.reshape(c_out, c_in)
    source = np.argmax(matrix, axis=1)
    expected = np.zeros_like(matrix)
    expected[np.arange(c_out), source] = 1.0
    if not np.array_equal(matrix, expected) or len(np.unique(source)) != c_out:
        return None
    return source


def permute_channels_plan(x: KernelArg, out_shape: Shape, source: np.ndarray) -> OpPlan:
    """A gather (copy.cl's ``permute_channels``) instead of a convolution with a 0/1 matrix:
    a pass over the tensor rather than C multiply-adds per value (ShuffleNet v1's 16
    shuffles on PoCL: docs/performance.md)."""
    out = Nhwc4Shape.of(out_shape)
    table = np.arange(out.c4 * 4, dtype=np.float32)  # padding lanes read themselves (zero)
    table[: len(source)] = source
    plan = OpPlan(output_shapes=[out_shape], table_constants=frozenset({"source"}))
    plan.constants["source"] = table
    plan.launches.append(
        KernelLaunch(
            COPY_PROGRAM,
            "permute_channels",
            (out.c4, out.n * out.h * out.w),
            (OutputArg(0), x, ConstantArg("source"), IntArg(out.c)),
        )
    )
    return plan


def pointwise_launch(
    x: KernelArg,
    bias: KernelArg,
    pixels: int,
    c_in: int,
    c_out: int,
    group: int,
    span: int,
    activation: Activation,
) -> KernelLaunch:
    """conv2d's 1x1 path over ``pixels`` NHWC4 pixels, viewed as one row: every work-item
    gets a full block of 4 outputs. The filter is ``plan.constants["filter"]`` packed by
    ``pack_blocked_filter``."""
    unit = Window(kernel=(1, 1), stride=(1, 1), dilation=(1, 1), pad_begin=(0, 0), pad_end=(0, 0))
    return KernelLaunch(
        ProgramSpec("conv2d", ("-DCONV_1X1", *activation.build_options())),
        "conv2d",
        (channel_blocks(c_out), -(-pixels // OUTPUTS_PER_ITEM), 1),
        (
            OutputArg(0),
            x,
            ConstantArg("filter"),
            bias,
            IntArg(1),
            IntArg(pixels),
            IntArg(channel_blocks(c_in)),
            IntArg(1),
            IntArg(pixels),
            IntArg(c_out),
            *window_args(unit),
            IntArg(c_in // group),
            IntArg(c_out // group),
            IntArg(span),
            *activation.kernel_args(),
        ),
    )


def centre_only_pairs(weights: np.ndarray) -> int:
    """Leading pairs of 16-channel groups (conv2d_o32's work split) whose weights are zero
    outside the centre tap of an odd filter: the 1x1 part of a convolution the converter
    merged with a wider one (passes/merge_concat_convs.py), which conv2d_o32 runs as 1x1."""
    c_out, _, kh, kw = weights.shape
    if kh % 2 == 0 or kw % 2 == 0 or kh * kw == 1:
        return 0
    outside = weights.copy()
    outside[:, :, kh // 2, kw // 2] = 0.0
    wide = np.flatnonzero(np.any(outside.reshape(c_out, -1), axis=1))
    first_wide = int(wide[0]) if len(wide) else c_out
    return first_wide // O16_PACK if len(wide) else -(-c_out // O16_PACK)


def conv2d_o16_launch(
    x: KernelArg,
    window: Window,
    in_h: int,
    in_w: int,
    c_in: int,
    out_shape: Shape,
    activation: Activation,
    centre_pairs: int = 0,
) -> KernelLaunch:
    """``conv2d_o32`` (pairs of 16-channel groups share each input load: 22 % faster on
    MobileNetV2's stem than ``conv2d_o16``), or ``conv2d_o16`` for at most 16 output
    channels, where the second group would be all padding. ``conv2d_o32`` loops over
    output rows (``conv_row_items``)."""
    out = Nhwc4Shape.of(out_shape)
    pairs = out.c > O16
    rows = out.n * out.h
    return KernelLaunch(
        ProgramSpec("conv2d_o16", filter_size_options(window) + activation.build_options()),
        "conv2d_o32" if pairs else "conv2d_o16",
        (-(-out.c // O16_PACK), -(-out.w // O16_PAIR_PIXELS), conv_row_items(out, rows))
        if pairs
        else (o16_groups(out.c), -(-out.w // O16_ROW_PIXELS), out.n * out.h),
        (
            OutputArg(0),
            x,
            ConstantArg("filter"),
            ConstantArg("bias"),
            IntArg(in_h),
            IntArg(in_w),
            IntArg(channel_blocks(c_in)),
            IntArg(out.h),
            IntArg(out.w),
            IntArg(out.c),
            *window_args(window),
            *((IntArg(rows), IntArg(centre_pairs)) if pairs else ()),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=cpu_local_sizes(3),
    )


def conv_row_items(out: Nhwc4Shape, rows: int) -> int:
    """Work-items along the output rows of ``conv2d_o32``, which loops over the rows
    beyond them: the fewest that still give O16_CONV_MIN_ITEMS work-items, so that in
    small layers each keeps its pair's weights in cache for several rows (ResNet50's 7x7
    layers read 0.6 MB of weights per pair and row). 256 measured 1-4 % faster than no
    looping on four models; 64 was slower (docs/performance.md)."""
    per_row = -(-out.c // O16_PACK) * -(-out.w // O16_PAIR_PIXELS)
    return min(rows, -(-O16_CONV_MIN_ITEMS // per_row))


def depthwise_o16_launch(
    x: KernelArg, window: Window, in_h: int, in_w: int, out_shape: Shape, activation: Activation
) -> KernelLaunch:
    out = Nhwc4Shape.of(out_shape)
    return KernelLaunch(
        ProgramSpec("conv2d_o16", filter_size_options(window) + activation.build_options()),
        "depthwise_o16",
        (o16_groups(out.c), -(-out.w // O16_DW_PIXELS), out.n * out.h),
        (
            OutputArg(0),
            x,
            ConstantArg("filter"),
            ConstantArg("bias"),
            IntArg(in_h),
            IntArg(in_w),
            IntArg(out.h),
            IntArg(out.w),
            IntArg(out.c),
            *window_args(window),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=cpu_local_sizes(3),
    )


def depthwise_pointwise_o16_launch(
    x: KernelArg,
    window: Window,
    in_hw: tuple[int, int],
    middle_shape: Shape,
    c_out: int,
    dw_activation: Activation,
    activation: Activation,
    residual: str | None,
) -> KernelLaunch:
    """``depthwise_conv1x1_o32``: a 1x1 convolution of the output of a depthwise one of
    ``x`` (``middle_shape``, ``in_hw`` its input's height and width), computed as the 1x1
    reads it. Constants: the 1x1's ``filter`` / ``bias`` (``pack_o16_filter``,
    ``o16_bias``) and the depthwise ones under ``dw_filter`` / ``dw_bias``
    (``pack_depthwise_o16_filter``, ``o16_bias``)."""
    mid = Nhwc4Shape.of(middle_shape)
    pixels = mid.n * mid.h * mid.w
    options = (
        DEPTHWISE_INPUT_OPTION,
        f"-DDW_ACTIVATION=ACT_{ACTIVATIONS[dw_activation.kind].macro}",
        *filter_size_options(window),
        *((RESIDUAL_OPTION,) if residual is not None else ()),
        *activation.build_options(),
    )
    return KernelLaunch(
        ProgramSpec("conv2d_o16", options),
        "depthwise_conv1x1_o32",
        (-(-c_out // O16_PACK), pointwise_items(pixels, c_out)),
        (
            OutputArg(0),
            x,
            ConstantArg("filter"),
            ConstantArg("bias"),
            IntArg(pixels),
            IntArg(mid.c4),
            IntArg(c_out),
            *((TensorArg(residual),) if residual is not None else ()),
            ConstantArg("dw_filter"),
            ConstantArg("dw_bias"),
            IntArg(in_hw[0]),
            IntArg(in_hw[1]),
            IntArg(mid.h),
            IntArg(mid.w),
            *window_args(window),
            *dw_activation.kernel_args(),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=cpu_local_sizes(2),
    )


# ---- GPU plans (PlanContext.gpu): kernels/conv2d_gpu.cl ----------------------------


def depthwise_gpu_launch(
    x: KernelArg,
    bias: KernelArg,
    window: Window,
    in_hw: tuple[int, int],
    out_shape: Shape,
    activation: Activation,
) -> KernelLaunch:
    """depthwise_gpu over ``x`` with ``plan.constants["filter"]`` packed by
    ``pack_depthwise_filter``: one output float4 per work-item."""
    out = Nhwc4Shape.of(out_shape)
    global_size, local = gpu_local_size((out.c4, out.w, out.n * out.h))
    options = (f"-DFILTER_H={window.kernel[0]}", f"-DFILTER_W={window.kernel[1]}")
    return KernelLaunch(
        ProgramSpec("conv2d_gpu", options + activation.build_options()),
        "depthwise_gpu",
        global_size,
        (
            OutputArg(0),
            x,
            ConstantArg("filter"),
            bias,
            IntArg(in_hw[0]),
            IntArg(in_hw[1]),
            IntArg(out.h),
            IntArg(out.w),
            IntArg(out.c),
            *window_args(window),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=(("gpu", local),),
    )


def gpu_divisor_local_sizes(global_size: tuple[int, ...]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """A "gpu" local size for kernels that need the exact global size: per dimension the
    largest divisor within the remaining budget of GPU_GROUP_ITEMS * 2 work-items.
    Nothing (the driver picks) when that makes groups of fewer than 32."""
    budget = GPU_GROUP_ITEMS * 2
    local = []
    for size, limit in zip(global_size, GPU_MAX_LOCAL, strict=False):
        choice = max(d for d in range(1, min(size, budget, limit) + 1) if size % d == 0)
        local.append(choice)
        budget //= choice
    if np.prod(local) < 32:
        return ()
    return (("gpu", tuple(local)),)


# conv2d_gpu_tiled (implicit GEMM through __local memory) configurations, most work per
# work-item first: (TILE_M pixels, TILE_N output float4 blocks, ITEM_M, ITEM_N) per
# work-group / work-item. More outputs per work-item reuse each __local read more often
# but leave fewer work-items; a plan takes the first one with GPU_TARGET_ITEMS
# work-items, else the last (batch-1 CNNs: the 7x7 and 14x14 layers have only a few
# hundred pixels, and then parallelism matters more than reuse). 1x1 and KxK
# convolutions end differently: on an H100 (dev/bench/gpu_conv_sweep.py) ResNet's 3x3
# layers ran 15 % to 25 % faster with four pixels per work-item (32, 8, 4, 1) than with
# two (16, 8, 2, 1), while 1x1 layers were even or slower with it.
GPU_TILED_CONFIGS = ((64, 16, 4, 2), (32, 16, 2, 2), (16, 8, 2, 1))
GPU_TILED_KXK_CONFIGS = ((64, 16, 4, 2), (32, 16, 2, 2), (32, 8, 4, 1))
# Input channel blocks below which the convolution stays on conv2d_gpu: a K step loads
# GPU_TILED_CHUNK blocks (4 for fewer than 8), so an RGB stem would load mostly zeros.
GPU_TILED_MIN_C4 = 4
GPU_TILED_CHUNK = 8
# Split-K: a tiled convolution with at most half this many work-items cuts its K steps
# into slices run side by side, as many as bring it up to this count, each slice at least
# GPU_SPLIT_MIN_STEPS steps long; the work-group that finishes an output tile last adds
# the slices up (one launch: kernels/conv2d_gpu.cl). On an H100 (dev/bench/gpu_conv_sweep.py)
# ResNet50's 3x3 layers at 7x7 went 0.112 -> 0.031 ms. 0: never split.
GPU_SPLIT_TARGET_ITEMS = 32768
GPU_SPLIT_MIN_STEPS = 4
SPLIT_SCRATCH = "split_k"  # OpPlan.scratch_bytes key of the partial sums
SPLIT_ARRIVALS = "split_k_arrivals"  # OpPlan.counters key: slices finished per output tile
# conv2d_gpu_tiled and depthwise_conv1x1_o32 compute their input (SeparableConv)
DEPTHWISE_INPUT_OPTION = "-DDEPTHWISE_INPUT"
MMA_TF32_OPTION = "-DMMA_TF32"  # conv2d_gpu_tiled multiplies on TF32 tensor cores


@dataclass(frozen=True)
class DepthwiseInput:
    """A depthwise convolution that conv2d_gpu_tiled applies to its input as it loads it:
    ``filter`` packed by ``pack_depthwise_filter``, ``bias`` float4[C4]."""

    filter: KernelArg
    bias: KernelArg
    window: Window
    activation: Activation


def mma_options(config: tuple[int, int, int, int]) -> tuple[str, ...]:
    """conv2d_gpu_tiled's -DMMA_TF32 options for a tile ``config`` (GPU_TILED_CONFIGS): its
    warps split the tile's 16-pixel by 8-channel mma tiles as evenly square as they divide
    them (fewest fragment loads per mma)."""
    tile_m, tile_n, item_m, item_n = config
    warps = (tile_m // item_m) * (tile_n // item_n) // 32
    rows, columns = tile_m // 16, tile_n // 2  # mma tiles along the pixels, the channels
    layouts = [
        (along_m, warps // along_m)
        for along_m in range(1, warps + 1)
        if warps % along_m == 0 and rows % along_m == 0 and columns % (warps // along_m) == 0
    ]
    assert layouts and tile_m % 16 == 0, f"tile {config} does not split into mma tiles per warp"
    along_m, _ = min(layouts, key=lambda w: abs(rows // w[0] * 16 - columns // w[1] * 8))
    return (MMA_TF32_OPTION, f"-DMMA_WARPS_M={along_m}")


def _source_args(x: KernelArg, in_c4: int, sources: Sequence[tuple[KernelArg, int]]) -> tuple[KernelArg, ...]:
    """conv2d_gpu_tiled -DSOURCES's in1, start1, ..., in7, start7: past the sources, ``x``
    at block ``in_c4`` (never read)."""
    if not sources:
        return ()
    slots = [*sources, *[(x, in_c4)] * (GATHER_MAX_INPUTS - 1 - len(sources))]
    return tuple(arg for source, start in slots for arg in (source, IntArg(start)))


def takes_tiled_pointwise(pixels: int, c_in: int) -> bool:
    """Whether a GPU plan runs a 1x1 convolution over ``pixels`` on conv2d_gpu_tiled."""
    return pixels > FC_MAX_ROWS and channel_blocks(c_in) >= GPU_TILED_MIN_C4


INPUT_SCALE_OPTION = "-DINPUT_SCALE"  # conv2d_gpu_tiled multiplies its input by input 4
SCALED_INPUT = "scaled_input"  # scratch: the input times input 4, for the other kernels


def conv2d_gpu_tiled_launches(
    plan: OpPlan,
    x: KernelArg,
    bias: KernelArg,
    window: Window,
    in_hw: tuple[int, int],
    c_in: int,
    out_shape: Shape,
    activation: Activation,
    residual: str | None = None,
    input_scale: str | None = None,
    depthwise: DepthwiseInput | None = None,
    last_group_finishes: bool = False,
    tf32_mma: bool = False,
    sources: Sequence[tuple[KernelArg, int]] = (),
) -> list[KernelLaunch]:
    """conv2d_gpu_tiled over ``x`` (``in_hw`` = its H, W) with ``plan.constants["filter"]``
    packed by ``pack_gpu_filter``, configured by GPU_TILED_CONFIGS (1x1) or
    GPU_TILED_KXK_CONFIGS; ``residual`` (a tensor
    shaped like the output) is added before the activation, ``input_scale`` (an [N, C_in,
    1, 1] tensor) multiplies the input's channels. With ``depthwise``, ``window`` is 1x1 and
    the input is that depthwise convolution of ``x`` (``in_hw`` its input's H, W). One
    launch; split over K (GPU_SPLIT_TARGET_ITEMS), it also takes a scratch buffer of
    ``plan`` for the slices' sums, and either ``last_group_finishes`` (PlanContext.device_fence)
    with counters of ``plan`` or a conv2d_gpu_split_sum launch adds them. ``tf32_mma``
    (PlanContext.tf32_mma): the K steps run on TF32 tensor cores (-DMMA_TF32). ``sources``
    (a 1x1 convolution only): the input is the channel concatenation of ``x`` and these
    tensors, each with the channel block it begins at; ``c_in`` counts the concatenation's
    channels, each source's padded to whole blocks (-DSOURCES)."""
    in_h, in_w = in_hw
    out = Nhwc4Shape.of(out_shape)
    pixels = out.n * out.h * out.w
    in_c4 = channel_blocks(c_in)

    def groups(config: tuple[int, int, int, int]) -> tuple[int, int]:
        return -(-out.c4 // config[1]), -(-pixels // config[0])

    def items(config: tuple[int, int, int, int]) -> int:
        along_n, along_m = groups(config)
        return along_n * along_m * (config[0] // config[2]) * (config[1] // config[3])

    configs = GPU_TILED_CONFIGS if _is_pointwise(window) else GPU_TILED_KXK_CONFIGS
    config = next((c for c in configs if items(c) >= GPU_TARGET_ITEMS), configs[-1])
    tile_m, tile_n, item_m, item_n = config
    chunk = GPU_TILED_CHUNK if in_c4 >= GPU_TILED_CHUNK else 4
    steps = (1 if _is_pointwise(window) else window.kernel[0] * window.kernel[1]) * -(-in_c4 // chunk)
    assert depthwise is None or (_is_pointwise(window) and input_scale is None)
    assert not sources or (_is_pointwise(window) and input_scale is None and depthwise is None)
    assert len(sources) < GATHER_MAX_INPUTS
    slices = max(1, min(GPU_SPLIT_TARGET_ITEMS // items(config), steps // GPU_SPLIT_MIN_STEPS))
    slice_steps = -(-steps // slices)
    slices = -(-steps // slice_steps)  # no empty slice
    split = slices > 1
    local = (tile_n // item_n, tile_m // item_m)
    along_n, along_m = groups(config)
    options = (
        f"-DTILE_M={tile_m}",
        f"-DTILE_N={tile_n}",
        f"-DITEM_M={item_m}",
        f"-DITEM_N={item_n}",
        f"-DCHUNK={chunk}",
        *(("-DPOINTWISE",) if _is_pointwise(window) and depthwise is None else ()),
        *(
            (
                DEPTHWISE_INPUT_OPTION,
                f"-DDW_ACTIVATION=ACT_{ACTIVATIONS[depthwise.activation.kind].macro}",
                *filter_size_options(depthwise.window),
            )
            if depthwise is not None
            else ()
        ),
        *(("-DSPLIT_K",) if split else ()),
        *(("-DSPLIT_K_LAST_GROUP",) if split and last_group_finishes else ()),
        *((INPUT_SCALE_OPTION,) if input_scale is not None else ()),
        *(mma_options(config) if tf32_mma else ()),
        *((f"-DSOURCES={len(sources) + 1}",) if sources else ()),
    )
    # What finishes the output: this launch, unless a split's sum has a launch of its own.
    finishing = ((RESIDUAL_OPTION,) if residual is not None else ()) + activation.build_options()
    two_launches = split and not last_group_finishes
    residual_args = (TensorArg(residual),) if residual is not None else ()
    if split:
        plan.scratch_bytes[SPLIT_SCRATCH] = slices * pixels * out.c4 * 16  # float4 partial sums
    if split and last_group_finishes:
        plan.counters[SPLIT_ARRIVALS] = along_n * along_m  # one per output tile
    tiled = KernelLaunch(
        ProgramSpec("conv2d_gpu", options + (() if two_launches else finishing)),
        "conv2d_gpu_tiled",
        (along_n * local[0], along_m * local[1], *((slices,) if split else ())),
        (
            OutputArg(0),
            x,
            ConstantArg("filter"),
            bias,
            IntArg(pixels),
            IntArg(in_h),
            IntArg(in_w),
            IntArg(in_c4),
            IntArg(out.h),
            IntArg(out.w),
            IntArg(out.c),
            *(() if two_launches else residual_args),
            *((TensorArg(input_scale),) if input_scale is not None else ()),
            *(
                (depthwise.filter, depthwise.bias, *depthwise.activation.kernel_args())
                if depthwise is not None
                else ()
            ),
            *_source_args(x, in_c4, sources),
            *window_args(window if depthwise is None else depthwise.window),
            *(Activation() if two_launches else activation).kernel_args(),
            *((IntArg(slice_steps), ScratchArg(SPLIT_SCRATCH)) if split else ()),
            *((CounterArg(SPLIT_ARRIVALS),) if split and last_group_finishes else ()),
        ),
        # The kernel's __local tiles and reqd_work_group_size assume exactly this size.
        local_size=(*local, *((1,) if split else ())),
    )
    if not two_launches:
        return [tiled]
    sum_global, sum_local = gpu_local_size((out.c4, pixels))
    finish = KernelLaunch(
        ProgramSpec("conv2d_gpu", finishing),
        "conv2d_gpu_split_sum",
        sum_global,
        (
            OutputArg(0),
            ScratchArg(SPLIT_SCRATCH),
            bias,
            IntArg(slices),
            IntArg(pixels),
            IntArg(out.c),
            *residual_args,
            *activation.kernel_args(),
        ),
        tuned_local_sizes=(("gpu", sum_local),),
    )
    return [tiled, finish]
