"""Conv (1-D and 2-D, groups, dilation, auto_pad, fused activation) -> kernels/conv2d_o16.cl
or kernels/conv2d.cl.

Variants, chosen at planning time:

- 16-channel kernels of ``kernels/conv2d_o16.cl`` (explicit ``float16`` vectors,
  several outputs per work-item held in registers) whenever they apply and the bias is
  a constant (or absent), because they are several times faster on CPU devices, where
  a float4 work-item wastes most of the SIMD width:
  ``conv1x1_o32`` for group-1 1x1 convolutions with stride 1 and no padding (pixels
  flattened), ``conv2d_o32`` (``conv2d_o16`` up to 16 output channels) for any other
  group-1 convolution, ``depthwise_o16`` for depthwise ones whose C4 is a multiple of 4.
  Filters packed by ``pack_o16_filter`` and ``pack_depthwise_o16_filter``. On CPU
  devices they run one work-item per work-group (``cpu_local_sizes``). The work split
  (work-items per pixel block, channel pairs) is tuned for CPUs; see
  docs/performance.md.
- ``depthwise_conv2d`` (conv2d.cl) for other depthwise convolutions
  (``group == C_in == C_out`` > 1): one float4 of 4 channels per tap. Filter packed as
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
``conv1x1_o32`` adds it before its store (``-DRESIDUAL``), which saves the Add's
launch and its pass over the tensor; every other variant (and every GPU plan) runs
the convolution without the activation and then the ``eltwise`` Add that the graph had
before fusion, with the activation.
"""

from __future__ import annotations

import numpy as np

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape, channel_blocks
from mace_cl.planning.ops.base import (
    SHAPES_CONTEXT,
    ConstantArg,
    IntArg,
    KernelArg,
    KernelLaunch,
    LocalMemArg,
    OpError,
    OpPlan,
    OutputArg,
    PlanContext,
    PlanInput,
    Shape,
    TensorArg,
    attr_int,
    expect_input_count,
)
from mace_cl.planning.ops.broadcast import BroadcastOperand, broadcast_operand
from mace_cl.planning.ops.eltwise import eltwise_launch
from mace_cl.planning.ops.fused_activation import Activation, fused_activation
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
from mace_cl.planning.program_spec import ProgramSpec

OUTPUTS_PER_ITEM = 4  # horizontally adjacent outputs computed by one work-item

# kernels/conv2d_o16.cl: channels per vector, pixels per work-item.
O16 = 16
O16_POINTWISE_PIXELS = 7  # PW_PIXELS (conv1x1_o32)
O16_POINTWISE_SMALL_PIXELS = 64  # see pointwise_items
O16_POINTWISE_MIN_ITEMS = 16
O16_ROW_PIXELS = 4  # ROW_PIXELS (conv2d_o16) and PAIR_PIXELS (conv2d_o32)
O16_DW_PIXELS = 8  # DW_PIXELS (depthwise_o16)
RESIDUAL_OPTION = "-DRESIDUAL"  # conv1x1_o32 adds a residual input before its store
# Packed filters and biases hold an even number of 16-channel groups: conv1x1_o32
# reads groups in pairs.
O16_PACK = 2 * O16


def cpu_local_sizes(rank: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """One work-item per work-group on CPU devices, for the explicitly vectorised
    kernels. PoCL turns a work-group into loops over its work-items and tries to
    vectorise across them; that only gets in the way of code that is already float16,
    and on this machine (PoCL 7.1, AVX-512) local size 1 ran these kernels 1.1x to 3x
    faster than PoCL's own choice or any larger size (docs/performance.md)."""
    return (("cpu", (1,) * rank),)


# ---- filter packing ---------------------------------------------------------------


def input_block_span(c_out: int, group_in_c: int, group_out_c: int) -> int:
    """Input channel blocks any output block of 4 channels needs (the max over blocks)."""
    span = 1
    for ob in range(channel_blocks(c_out)):
        first_group = 4 * ob // group_out_c
        last_group = min(4 * ob + 3, c_out - 1) // group_out_c
        begin = first_group * group_in_c // 4
        end = -(-(last_group + 1) * group_in_c // 4)
        span = max(span, end - begin)
    return span


def first_input_block(ob: int, group_in_c: int, group_out_c: int, in_c4: int, span: int) -> int:
    """First input block read by output block ``ob``; kernels/conv2d.cl computes the same."""
    return min((4 * ob // group_out_c) * group_in_c // 4, in_c4 - span)


def pack_blocked_filter(weights: np.ndarray, group: int) -> tuple[np.ndarray, int]:
    """Pack Conv weights ``[C_out, C_in/group, KH, KW]`` for ``conv2d``/``deconv2d``.

    Layout ``float [C_out4][KH][KW][span*4][4]``: for output block ``ob`` and tap
    ``(kh, kw)``, input channel ``first_input_block(ob)*4 + i`` contributes
    ``x[i] * filter[ob][kh][kw][i][0:4]`` to the float4 of output channels
    ``4*ob .. 4*ob+3``. Entries for padding channels and for channel pairs in different
    groups are zero. Returns (flat float32 array, span).
    """
    c_out, group_in_c, kh, kw = weights.shape
    group_out_c = c_out // group
    in_c4 = channel_blocks(group_in_c * group)
    span = input_block_span(c_out, group_in_c, group_out_c)
    packed = np.zeros((channel_blocks(c_out), kh, kw, span * 4, 4), np.float32)
    for oc in range(c_out):
        ob, lane = divmod(oc, 4)
        start = first_input_block(ob, group_in_c, group_out_c, in_c4, span) * 4
        first = (oc // group_out_c) * group_in_c - start
        packed[ob, :, :, first : first + group_in_c, lane] = weights[oc].transpose(1, 2, 0)
    return packed.reshape(-1), span


def pack_depthwise_filter(weights: np.ndarray) -> np.ndarray:
    """Depthwise weights ``[C, 1, KH, KW]`` -> ``float4 [C4][KH][KW]`` (flat float32)."""
    channels, _, kh, kw = weights.shape
    padded = np.zeros((channel_blocks(channels) * 4, kh, kw), np.float32)
    padded[:channels] = weights[:, 0]
    return np.ascontiguousarray(padded.reshape(-1, 4, kh, kw).transpose(0, 2, 3, 1)).reshape(-1)


def pack_o16_filter(weights: np.ndarray) -> np.ndarray:
    """Group-1 Conv weights ``[C_out, C_in, KH, KW]`` for the ``*_o16`` kernels.

    Layout ``float [OC16][KH][KW][C_in4*4][16]``: element ``[g][kh][kw][i][l]`` is the
    weight from input channel ``i`` to output channel ``16*g + l`` at tap ``(kh, kw)``;
    zero for padding channels on either side. OC16 is rounded up to even (O16_PACK).
    Returns the flat float32 array.
    """
    c_out, c_in, kh, kw = weights.shape
    groups = -(-c_out // O16_PACK) * 2
    padded = np.zeros((groups * O16, channel_blocks(c_in) * 4, kh, kw), np.float32)
    padded[:c_out, :c_in] = weights
    # [g, l, i, kh, kw] -> [g, kh, kw, i, l]
    blocked = padded.reshape(groups, O16, -1, kh, kw).transpose(0, 3, 4, 2, 1)
    return np.ascontiguousarray(blocked).reshape(-1)


def pack_depthwise_o16_filter(weights: np.ndarray) -> np.ndarray:
    """Depthwise weights ``[C, 1, KH, KW]`` -> ``float [C16][KH][KW][16]`` (flat float32)."""
    channels, _, kh, kw = weights.shape
    groups = -(-channels // O16)
    padded = np.zeros((groups * O16, kh, kw), np.float32)
    padded[:channels] = weights[:, 0]
    return np.ascontiguousarray(padded.reshape(groups, O16, kh, kw).transpose(0, 2, 3, 1)).reshape(-1)


def o16_padded_bias(values: np.ndarray) -> np.ndarray:
    """A per-channel bias padded with zeros the way the o16 kernels read it."""
    padded = np.zeros(-(-len(values) // O16_PACK) * O16_PACK, np.float32)
    padded[: len(values)] = values
    return padded


def o16_bias(item: PlanInput | None, channels: int) -> np.ndarray | None:
    """``float[OC16*16]`` bias (zeros past C, OC16 rounded up to even) for the o16
    kernels, which read whole groups of 16 channels; None for a run-time bias (its NHWC4
    buffer is shorter)."""
    if item is None or not item.present:
        return o16_padded_bias(np.zeros(channels, np.float32))
    if item.value is None or item.shape != (channels,):
        return None  # run-time or malformed: the float4 kernels handle (or report) it
    return o16_padded_bias(np.asarray(item.value, np.float32))


def bias_arg(plan: OpPlan, node: Node, item: PlanInput | None, channels: int) -> KernelArg:
    """float4[C4] bias with zero padding lanes: a run-time [C] tensor already is one in
    NHWC4; a constant is packed; a missing bias becomes zeros."""
    if item is None or not item.present:
        plan.constants["bias"] = np.zeros(channel_blocks(channels) * 4, np.float32)
        return ConstantArg("bias")
    if item.shape != (channels,):
        raise OpError(node, f"the bias must have shape [{channels}], got {list(item.shape or ())}")
    if item.value is None:
        return TensorArg(item.name)
    packed = np.zeros(channel_blocks(channels) * 4, np.float32)
    packed[:channels] = item.value
    plan.constants["bias"] = packed
    return ConstantArg("bias")


def runtime_input(node: Node, item: PlanInput) -> PlanInput:
    if item.value is not None:
        raise OpError(node, "input 0 is a constant; fold constant subgraphs in the converter")
    return item


def constant_weights(node: Node, item: PlanInput, rank: int) -> np.ndarray:
    if item.value is None:
        raise OpError(
            node, "the weights (input 1) must be a graph constant; run-time weights are not supported"
        )
    if item.value.ndim != rank + 2:
        raise OpError(
            node, f"the weights must have rank {rank + 2} for this input, got shape {list(item.value.shape)}"
        )
    return np.asarray(item.value, dtype=np.float32)


def window_args(window: Window) -> tuple[IntArg, ...]:
    """filter_h, filter_w, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w."""
    return tuple(
        IntArg(v)
        for v in (
            *window.kernel,
            *window.stride,
            window.pad_begin[0],
            window.pad_begin[1],
            *window.dilation,
        )
    )


def filter_size_options(window: Window) -> tuple[str, ...]:
    if window.kernel == (3, 3):
        return ("-DFILTER_H=3", "-DFILTER_W=3")
    return ()


# ---- Conv ---------------------------------------------------------------------------


@register_op("Conv")
def plan_conv(node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT) -> OpPlan:
    expect_input_count(node, inputs, 2, 4)
    residual = inputs[3] if len(inputs) > 3 and inputs[3].present else None
    activation = fused_activation(node)
    if residual is None:
        return plan_convolution(node, inputs[:3], context, activation, None)
    plan = plan_convolution(node, inputs[:3], context, activation, residual)
    out_shape = plan.output_shapes[0]
    if residual.shape != out_shape:
        raise OpError(
            node,
            f"the residual (input 3) must have the output's shape {list(out_shape)}, "
            f"got {list(residual.shape or ())}",
        )
    if uses_residual(plan):
        return plan
    # No kernel variant took the residual: convolve without the activation, then Add
    # (planned again because the activation is built into the convolution's program).
    plan = plan_convolution(node, inputs[:3], context, Activation(), None)
    geo = Nhwc4Shape.of(out_shape)
    own_output = BroadcastOperand(OutputArg(0), geo.float_strides())
    operand = broadcast_operand(plan, "residual", residual, out_shape)
    plan.launches.append(eltwise_launch("OP_ADD", own_output, operand, geo, activation))
    return plan


def uses_residual(plan: OpPlan) -> bool:
    return any(RESIDUAL_OPTION in launch.program.options for launch in plan.launches)


def plan_convolution(
    node: Node,
    inputs: list[PlanInput],
    context: PlanContext,
    activation: Activation,
    residual: PlanInput | None,
) -> OpPlan:
    """plan_conv without the fallback Add: ``residual`` reaches only the kernels that can
    add it (a run-time tensor of the output's shape), the others ignore it."""
    x = runtime_input(node, inputs[0])
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

    plan = OpPlan(output_shapes=[out_shape])
    bias_item = inputs[2] if len(inputs) > 2 else None
    n = x.shape[0]
    out = Nhwc4Shape.of(out_shape)
    in_c4 = channel_blocks(c_in)
    unpadded = window.pad_begin == (0, 0) and window.pad_end == (0, 0)

    if context.gpu and group == 1:
        bias = bias_arg(plan, node, bias_item, c_out)
        if window.kernel == (1, 1) and unpadded and window.stride == (1, 1):
            plan.launches.append(
                gpu_pointwise_launch(plan, TensorArg(x.name), bias, weights, n * in_h * in_w, activation)
            )
        else:
            plan.constants["filter"] = pack_gpu_filter(weights)
            launch = conv2d_gpu_tiled_launch if in_c4 >= GPU_TILED_MIN_C4 else conv2d_gpu_launch
            plan.launches.append(
                launch(TensorArg(x.name), bias, window, (in_h, in_w), c_in, out_shape, activation)
            )
        return plan

    bias16 = o16_bias(bias_item, c_out)
    depthwise = group == c_in == c_out and group > 1
    if not context.gpu and bias16 is not None and (group == 1 or (depthwise and out.c4 % 4 == 0)):
        plan.constants["bias"] = bias16
        if depthwise:
            plan.constants["filter"] = pack_depthwise_o16_filter(weights)
            plan.launches.append(depthwise_o16_launch(x.name, window, in_h, in_w, out_shape, activation))
        elif window.kernel == (1, 1) and unpadded and window.stride == (1, 1):
            plan.constants["filter"] = pack_o16_filter(weights)
            fusable = residual is not None and residual.value is None and residual.shape == out_shape
            fused_residual = residual.name if fusable and residual is not None else None
            plan.launches.append(
                pointwise_o16_launch(
                    TensorArg(x.name), n * in_h * in_w, c_in, c_out, activation, fused_residual
                )
            )
        else:
            plan.constants["filter"] = pack_o16_filter(weights)
            plan.launches.append(conv2d_o16_launch(x.name, window, in_h, in_w, c_in, out_shape, activation))
        return plan

    bias = bias_arg(plan, node, bias_item, c_out)

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
                    TensorArg(x.name),
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
    if window.kernel == (1, 1) and unpadded and window.stride == (1, 1):
        plan.launches.append(
            pointwise_launch(TensorArg(x.name), bias, n * in_h * in_w, c_in, c_out, group, span, activation)
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
                TensorArg(x.name),
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
    ``pack_blocked_filter``. Also the fully-connected path of Gemm/MatMul: an [N, K]
    tensor is N pixels of K channels in NHWC4."""
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


def o16_groups(channels: int) -> int:
    return -(-channels // O16)


def pointwise_items(pixels: int, c_out: int) -> int:
    """Work-items along the pixels of ``conv1x1_o32``, which loops over the blocks of
    ``O16_POINTWISE_PIXELS`` beyond them.

    One block each, except for few pixels (the 7x7 end of a CNN, where the weights are
    many times larger than the activations): then a work-item keeps its 32 weight
    columns in cache for all blocks instead of each block streaming them again (7% less
    pointwise time for MobileNetV2 on PoCL), while keeping at least
    ``O16_POINTWISE_MIN_ITEMS`` work-items so that the CPU threads stay balanced."""
    blocks = -(-pixels // O16_POINTWISE_PIXELS)
    if pixels > O16_POINTWISE_SMALL_PIXELS:
        return blocks
    pairs = -(-c_out // O16_PACK)
    return min(blocks, -(-O16_POINTWISE_MIN_ITEMS // pairs))


def pointwise_o16_launch(
    x: KernelArg, pixels: int, c_in: int, c_out: int, activation: Activation, residual: str | None = None
) -> KernelLaunch:
    """``conv1x1_o32`` over ``pixels`` NHWC4 pixels of ``c_in`` channels (the filter and
    bias are ``plan.constants["filter"]`` / ``["bias"]``, packed by ``pack_o16_filter``
    and ``o16_bias``). Also the fully-connected path of Gemm/MatMul: an [N, K] tensor is
    N pixels of K channels in NHWC4. Fewer pixels than one work-item's block use the
    one-pixel kernel, so that no work-item computes mostly clamped duplicates.
    ``residual`` (a tensor shaped like the output, added before the activation) is
    taken by ``conv1x1_o32`` only; ``uses_residual`` tells whether it was."""
    single = pixels < O16_POINTWISE_PIXELS
    fused_residual = None if single else residual
    fused = fused_residual is not None
    return KernelLaunch(
        ProgramSpec("conv2d_o16", (RESIDUAL_OPTION,) * fused + activation.build_options()),
        "conv1x1_o16_single" if single else "conv1x1_o32",
        (o16_groups(c_out), pixels) if single else (-(-c_out // O16_PACK), pointwise_items(pixels, c_out)),
        (
            OutputArg(0),
            x,
            ConstantArg("filter"),
            ConstantArg("bias"),
            IntArg(pixels),
            IntArg(channel_blocks(c_in)),
            IntArg(c_out),
            *((TensorArg(fused_residual),) if fused_residual is not None else ()),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=cpu_local_sizes(2),
    )


def conv2d_o16_launch(
    x: str, window: Window, in_h: int, in_w: int, c_in: int, out_shape: Shape, activation: Activation
) -> KernelLaunch:
    """``conv2d_o32`` (pairs of 16-channel groups share each input load: 22 % faster on
    MobileNetV2's stem than ``conv2d_o16``), or ``conv2d_o16`` for at most 16 output
    channels, where the second group would be all padding."""
    out = Nhwc4Shape.of(out_shape)
    pairs = out.c > O16
    return KernelLaunch(
        ProgramSpec("conv2d_o16", filter_size_options(window) + activation.build_options()),
        "conv2d_o32" if pairs else "conv2d_o16",
        (-(-out.c // O16_PACK), -(-out.w // O16_ROW_PIXELS), out.n * out.h)
        if pairs
        else (o16_groups(out.c), -(-out.w // O16_ROW_PIXELS), out.n * out.h),
        (
            OutputArg(0),
            TensorArg(x),
            ConstantArg("filter"),
            ConstantArg("bias"),
            IntArg(in_h),
            IntArg(in_w),
            IntArg(channel_blocks(c_in)),
            IntArg(out.h),
            IntArg(out.w),
            IntArg(out.c),
            *window_args(window),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=cpu_local_sizes(3),
    )


def depthwise_o16_launch(
    x: str, window: Window, in_h: int, in_w: int, out_shape: Shape, activation: Activation
) -> KernelLaunch:
    out = Nhwc4Shape.of(out_shape)
    return KernelLaunch(
        ProgramSpec("conv2d_o16", filter_size_options(window) + activation.build_options()),
        "depthwise_o16",
        (o16_groups(out.c), -(-out.w // O16_DW_PIXELS), out.n * out.h),
        (
            OutputArg(0),
            TensorArg(x),
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


# ---- GPU plans (PlanContext.gpu): kernels/conv2d_gpu.cl ----------------------------

# Work-items a GPU launch should have before a work-item takes more than one output
# pixel: an H100/H200 keeps ~2048 threads resident on each of its 132 SMs, so anything
# below ~16k leaves most of it idle, and the 7x7 end of a CNN only has a few thousand
# output float4s.
GPU_TARGET_ITEMS = 16384
GPU_PIXEL_CHOICES = (4, 2, 1)  # OUT_PIXELS of conv2d_gpu, most work per item first
GPU_GROUP_ITEMS = 128  # work-items per work-group the GPU launches aim for
FC_LANES = 64  # work-items splitting the input channels of one fc_gpu output block
# 1x1 convolutions over at most this many pixels run as fc_gpu (one work-group per
# output block and pixel), where conv2d_gpu would have only OC4 * pixels work-items.
FC_MAX_ROWS = 8


def _pow2_at_most(value: int) -> int:
    return 1 << (max(1, value).bit_length() - 1)


def gpu_local_size(global_size: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(padded global size, local size) of ~GPU_GROUP_ITEMS work-items for a kernel
    that returns early past the end of its first two dimensions. Powers of two along
    the first (fastest, the output channel blocks) then the second dimension, each
    padding its dimension by at most 1/8; along the third (not padded) a divisor."""
    local = []
    budget = GPU_GROUP_ITEMS
    for index, size in enumerate(global_size):
        choice = 1
        candidate = _pow2_at_most(budget) if index < 2 else 1
        while candidate > 1:
            if (-(-size // candidate) * candidate - size) * 8 <= size:
                choice = candidate
                break
            candidate //= 2
        if index >= 2:  # not padded: the largest divisor that fits
            choice = max(d for d in range(1, min(size, budget) + 1) if size % d == 0)
        budget //= choice
        local.append(choice)
    padded_global = tuple(-(-size // lsize) * lsize for size, lsize in zip(global_size, local, strict=True))
    return padded_global, tuple(local)


def gpu_divisor_local_sizes(global_size: tuple[int, ...]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """A "gpu" local size for kernels that need the exact global size: per dimension the
    largest divisor within the remaining budget of GPU_GROUP_ITEMS * 2 work-items.
    Nothing (the driver picks) when that makes groups of fewer than 32."""
    budget = GPU_GROUP_ITEMS * 2
    local = []
    for size in global_size:
        choice = max(d for d in range(1, min(size, budget) + 1) if size % d == 0)
        local.append(choice)
        budget //= choice
    if np.prod(local) < 32:
        return ()
    return (("gpu", tuple(local)),)


def pack_gpu_filter(weights: np.ndarray) -> np.ndarray:
    """Group-1 Conv weights ``[C_out, C_in, KH, KW]`` -> ``float4 [KH][KW][C_in4*4][OC4]``
    for conv2d_gpu: element ``[kh][kw][i][ob]`` lane ``l`` is the weight from input
    channel ``i`` to output channel ``4*ob + l``; zero for padding channels."""
    c_out, c_in, kh, kw = weights.shape
    out_c4, in_c4 = channel_blocks(c_out), channel_blocks(c_in)
    padded = np.zeros((out_c4 * 4, in_c4 * 4, kh, kw), np.float32)
    padded[:c_out, :c_in] = weights
    # [ob, l, i, kh, kw] -> [kh, kw, i, ob, l]
    blocked = padded.reshape(out_c4, 4, in_c4 * 4, kh, kw).transpose(3, 4, 2, 0, 1)
    return np.ascontiguousarray(blocked).reshape(-1)


def conv2d_gpu_launch(
    x: KernelArg,
    bias: KernelArg,
    window: Window,
    in_hw: tuple[int, int],
    c_in: int,
    out_shape: Shape,
    activation: Activation,
) -> KernelLaunch:
    """conv2d_gpu over ``x`` (``in_hw`` = its H, W) with ``plan.constants["filter"]``
    packed by ``pack_gpu_filter``. Each work-item takes the most output pixels
    (OUT_PIXELS) that still leave GPU_TARGET_ITEMS work-items."""
    in_h, in_w = in_hw
    out = Nhwc4Shape.of(out_shape)
    pixels = next(
        (p for p in GPU_PIXEL_CHOICES if out.c4 * -(-out.w // p) * out.n * out.h >= GPU_TARGET_ITEMS), 1
    )
    global_size, local = gpu_local_size((out.c4, -(-out.w // pixels), out.n * out.h))
    kh, kw = window.kernel
    return KernelLaunch(
        ProgramSpec(
            "conv2d_gpu",
            (f"-DFILTER_H={kh}", f"-DFILTER_W={kw}", f"-DOUT_PIXELS={pixels}", *activation.build_options()),
        ),
        "conv2d_gpu",
        global_size,
        (
            OutputArg(0),
            x,
            ConstantArg("filter"),
            bias,
            IntArg(in_h),
            IntArg(in_w),
            IntArg(channel_blocks(c_in)),
            IntArg(out.h),
            IntArg(out.w),
            IntArg(out.c),
            *window_args(window),
            *activation.kernel_args(),
        ),
        tuned_local_sizes=(("gpu", local),),
    )


# conv2d_gpu_tiled (implicit GEMM through __local memory) configurations, most work per
# work-item first: (TILE_M pixels, TILE_N output float4 blocks, ITEM_M, ITEM_N) per
# work-group / work-item. More outputs per work-item reuse each __local read more often
# but leave fewer work-items; a plan takes the first one with GPU_TARGET_ITEMS
# work-items, else the last (batch-1 CNNs: the 7x7 and 14x14 layers have only a few
# hundred pixels, and then parallelism matters more than reuse).
GPU_TILED_CONFIGS = ((64, 16, 4, 2), (32, 16, 2, 2), (16, 8, 2, 1))
# Input channel blocks below which the convolution stays on conv2d_gpu: a K step loads
# GPU_TILED_CHUNK blocks (4 for fewer than 8), so an RGB stem would load mostly zeros.
GPU_TILED_MIN_C4 = 4
GPU_TILED_CHUNK = 8


def conv2d_gpu_tiled_launch(
    x: KernelArg,
    bias: KernelArg,
    window: Window,
    in_hw: tuple[int, int],
    c_in: int,
    out_shape: Shape,
    activation: Activation,
) -> KernelLaunch:
    """conv2d_gpu_tiled over ``x`` (``in_hw`` = its H, W) with ``plan.constants["filter"]``
    packed by ``pack_gpu_filter``, configured by GPU_TILED_CONFIGS."""
    in_h, in_w = in_hw
    out = Nhwc4Shape.of(out_shape)
    pixels = out.n * out.h * out.w
    in_c4 = channel_blocks(c_in)

    def groups(config: tuple[int, int, int, int]) -> tuple[int, int]:
        return -(-out.c4 // config[1]), -(-pixels // config[0])

    def items(config: tuple[int, int, int, int]) -> int:
        along_n, along_m = groups(config)
        return along_n * along_m * (config[0] // config[2]) * (config[1] // config[3])

    tile_m, tile_n, item_m, item_n = next(
        (c for c in GPU_TILED_CONFIGS if items(c) >= GPU_TARGET_ITEMS), GPU_TILED_CONFIGS[-1]
    )
    chunk = GPU_TILED_CHUNK if in_c4 >= GPU_TILED_CHUNK else 4
    local = (tile_n // item_n, tile_m // item_m)
    along_n, along_m = groups((tile_m, tile_n, item_m, item_n))
    options = (
        f"-DTILE_M={tile_m}",
        f"-DTILE_N={tile_n}",
        f"-DITEM_M={item_m}",
        f"-DITEM_N={item_n}",
        f"-DCHUNK={chunk}",
    )
    return KernelLaunch(
        ProgramSpec("conv2d_gpu", options + activation.build_options()),
        "conv2d_gpu_tiled",
        (along_n * local[0], along_m * local[1]),
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
            *window_args(window),
            *activation.kernel_args(),
        ),
        # The kernel's __local tiles and reqd_work_group_size assume exactly this size.
        local_size=local,
    )


def gpu_pointwise_launch(
    plan: OpPlan, x: KernelArg, bias: KernelArg, weights: np.ndarray, pixels: int, activation: Activation
) -> KernelLaunch:
    """A 1x1 convolution (stride 1, no padding) with ``weights [C_out, C_in, 1, 1]`` over
    ``pixels`` NHWC4 pixels, for GPUs; also the fully-connected path of Gemm/MatMul (an
    [N, K] tensor is N pixels of K channels). Packs ``plan.constants["filter"]``; the
    bias is a float4[OC4] argument (``bias_arg``). Few pixels: ``fc_gpu`` (a work-group
    per output block splits the input channels); else ``conv2d_gpu`` over the pixels
    as one row."""
    c_out, c_in = weights.shape[:2]
    if pixels <= FC_MAX_ROWS:
        plan.constants["filter"], _ = pack_blocked_filter(weights, 1)
        return KernelLaunch(
            ProgramSpec("conv2d_gpu", activation.build_options()),
            "fc_gpu",
            (channel_blocks(c_out) * FC_LANES, pixels),
            (
                OutputArg(0),
                x,
                ConstantArg("filter"),
                bias,
                IntArg(channel_blocks(c_in)),
                IntArg(c_out),
                *activation.kernel_args(),
                LocalMemArg(FC_LANES * 16),
            ),
            local_size=(FC_LANES, 1),
        )
    plan.constants["filter"] = pack_gpu_filter(weights)
    unit = Window(kernel=(1, 1), stride=(1, 1), dilation=(1, 1), pad_begin=(0, 0), pad_end=(0, 0))
    return conv2d_gpu_launch(x, bias, unit, (1, pixels), c_in, (1, c_out, 1, pixels), activation)
