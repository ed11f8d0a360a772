"""SeparableConv: a depthwise convolution whose output only a 1x1 convolution reads.

An internal op: the converter's separable_conv pass writes it for the Conv (group =
channels) -> Conv (1x1) pairs of MobileNet's and ShuffleNet's blocks. Inputs: x, the
depthwise weights [C, 1, KH, KW] and bias (optional), the 1x1 weights [C_out, C, 1, 1]
and bias (optional), and a residual added to the output (optional, as Conv's input 3).
Attributes: the depthwise convolution's (window, group) with its fused activation under
the prefix ``depthwise_``; the 1x1 convolution's fused activation unprefixed.

GPU plans whose 1x1 convolution runs on conv2d_gpu_tiled compute the depthwise output as
that kernel loads its input (``-DDEPTHWISE_INPUT``): one launch where there were two, the
intermediate tensor never stored. CPU plans whose two convolutions would run on
depthwise_o16 and conv1x1_o32 run depthwise_conv1x1_o32 instead, which does the same
(up to CPU_FUSED_MAX_OUT_C output channels). Every other plan runs the two convolutions
as Conv plans them, the depthwise output in a scratch buffer.
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.layout import nhwc4_nbytes
from mace_cl.planning.ops.base import (
    SHAPES_CONTEXT,
    ConstantArg,
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
from mace_cl.planning.ops.chained import chained, retargeted
from mace_cl.planning.ops.conv import (
    DepthwiseInput,
    conv2d_gpu_tiled_launches,
    depthwise_pointwise_o16_launch,
    fusable_residual,
    plan_conv,
    takes_tiled_pointwise,
)
from mace_cl.planning.ops.conv_kernels import bias_arg, pack_depthwise_filter, pack_gpu_filter
from mace_cl.planning.ops.fused_activation import FUSED_ATTRIBUTES, fused_activation
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.ops.spatial import read_window, resolve_window, spatial_sizes

DEPTHWISE_PREFIX = "depthwise_"  # attributes and plan keys of the depthwise convolution
DEPTHWISE_OUTPUT = "depthwise_output"  # scratch: the depthwise output, where it is stored
# CPU plans fuse the two convolutions while the 1x1 has at most this many output channels.
CPU_FUSED_MAX_OUT_C = 96


def split_nodes(node: Node) -> tuple[Node, Node]:
    """The two Conv nodes ``node`` stands for; the depthwise one writes ``<name>#depthwise``."""
    middle = f"{node.name}#depthwise"
    inputs = list(node.inputs) + [""] * (6 - len(node.inputs))
    fused = {key for key in node.attrs if key in FUSED_ATTRIBUTES}
    prefixed = {key for key in node.attrs if key.startswith(DEPTHWISE_PREFIX)}
    depthwise = Node(
        "Conv",
        node.name,
        [inputs[0], inputs[1], inputs[2]],
        [middle],
        {
            **{key: value for key, value in node.attrs.items() if key not in fused | prefixed},
            **{key.removeprefix(DEPTHWISE_PREFIX): node.attrs[key] for key in prefixed},
        },
    )
    pointwise = Node(
        "Conv",
        node.name,
        [middle, inputs[3], inputs[4], inputs[5]],
        list(node.outputs),
        {key: node.attrs[key] for key in fused},
    )
    return depthwise, pointwise


@register_op("SeparableConv", needs_context=True, internal=True)
def plan_separable_conv(node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT) -> OpPlan:
    expect_input_count(node, inputs, 2, 6)  # input 2, the depthwise bias, may be omitted
    if len(inputs) < 4 or not inputs[3].present:
        raise OpError(node, "input 3 (the 1x1 convolution's weights) is required but omitted")
    x, dw_weights, dw_bias, pw_weights = inputs[:4]
    pw_bias = inputs[4] if len(inputs) > 4 else PlanInput("", None)
    residual = inputs[5] if len(inputs) > 5 and inputs[5].present else None
    depthwise, pointwise = split_nodes(node)
    if x.shape is None or len(x.shape) != 4:
        raise OpError(node, f"input 0 must be a rank-4 tensor, got shape {list(x.shape or ())}")
    channels = x.shape[1]
    if attr_int(node, "group", 1) != channels or dw_weights.shape != (
        channels,
        1,
        *(dw_weights.shape or ())[2:],
    ):
        raise OpError(
            node,
            f"the depthwise weights (input 1) must have shape [{channels}, 1, KH, KW] with group "
            f"{channels}, got {list(dw_weights.shape or ())} and group {attr_int(node, 'group', 1)}",
        )
    if pw_weights.shape is None or len(pw_weights.shape) != 4 or pw_weights.shape[1:] != (channels, 1, 1):
        raise OpError(
            node,
            f"the 1x1 weights (input 3) must have shape [C_out, {channels}, 1, 1], "
            f"got {list(pw_weights.shape or ())}",
        )
    # plan_conv checks these too, but names the inputs as a Conv's (weights input 1, bias
    # unnumbered): checked here first, numbered as this node's.
    for index, what in ((1, "depthwise weights"), (3, "1x1 weights")):
        if inputs[index].value is None:
            raise OpError(
                node,
                f"the {what} (input {index}) must be a graph constant; run-time weights are not supported",
            )
    for index, what, size in ((2, "depthwise bias", channels), (4, "1x1 bias", pw_weights.shape[0])):
        if index < len(inputs) and inputs[index].present and inputs[index].shape != (size,):
            raise OpError(
                node,
                f"the {what} (input {index}) must have shape [{size}], got {list(inputs[index].shape or ())}",
            )
    dw_plan = plan_conv(depthwise, [x, dw_weights, dw_bias], context)
    middle = PlanInput(depthwise.outputs[0], dw_plan.output_shapes[0])
    out_shape = (x.shape[0], pw_weights.shape[0], *dw_plan.output_shapes[0][2:])
    if residual is not None and fusable_residual(residual, out_shape) is None:
        raise OpError(
            node,
            f"the residual (input 5) must be a run-time tensor of the output's shape {list(out_shape)}, "
            f"got {'a constant of shape ' if residual.value is not None else ''}{list(residual.shape or ())}",
        )
    pw_inputs = [middle, pw_weights, pw_bias, *([residual] if residual is not None else [])]
    pw_plan = plan_conv(pointwise, pw_inputs, context)
    mid_n, _, mid_h, mid_w = middle.shape or (0, 0, 0, 0)
    if (
        context.gpu
        and dw_weights.value is not None
        and (not dw_bias.present or dw_bias.value is not None)
        and takes_tiled_pointwise(mid_n * mid_h * mid_w, channels)
    ):
        return _fused_plan(node, depthwise, pointwise, x, dw_weights, dw_bias, pw_inputs, context)
    if _cpu_fusable(dw_plan, pw_plan, pw_weights.shape[0]):
        return _cpu_fused_plan(node, depthwise, x, dw_weights, dw_plan, pw_plan, middle, residual)
    return _chained_plan(dw_plan, pw_plan, middle)


def _cpu_fusable(dw_plan: OpPlan, pw_plan: OpPlan, c_out: int) -> bool:
    """Whether the chained plan would run depthwise_o16 then conv1x1_o32, for a 1x1 of at
    most CPU_FUSED_MAX_OUT_C output channels. The fused kernel computes the depthwise
    output again for each 32 output channels: up to three times it still beat or matched
    storing and reading it back on PoCL (14x14 layers 0.64-0.91x, a 56x56 one 0.99-1.02x), at
    five to ten times (MobileNetV2's 7x7 end, 160 and 320 channels) it lost (1.04x, 1.11x)."""
    return (
        c_out <= CPU_FUSED_MAX_OUT_C
        and [launch.kernel for launch in dw_plan.launches] == ["depthwise_o16"]
        and [launch.kernel for launch in pw_plan.launches] == ["conv1x1_o32"]
    )


def _cpu_fused_plan(
    node: Node,
    depthwise: Node,
    x: PlanInput,
    dw_weights: PlanInput,
    dw_plan: OpPlan,
    pw_plan: OpPlan,
    middle: PlanInput,
    residual: PlanInput | None,
) -> OpPlan:
    """One depthwise_conv1x1_o32 launch, with the two sub-plans' packed constants."""
    assert x.shape is not None and middle.shape is not None and dw_weights.shape is not None
    assert not (dw_plan.scratch_bytes or dw_plan.counters or pw_plan.scratch_bytes or pw_plan.counters)
    window, auto_pad = read_window(depthwise, 2, list(dw_weights.shape[2:]))
    window, _ = resolve_window(depthwise, window, auto_pad, spatial_sizes(x.shape))
    return OpPlan(
        output_shapes=pw_plan.output_shapes,
        launches=[
            depthwise_pointwise_o16_launch(
                TensorArg(x.name),
                window,
                spatial_sizes(x.shape),
                middle.shape,
                pw_plan.output_shapes[0][1],
                fused_activation(node, DEPTHWISE_PREFIX),
                fused_activation(node),
                residual.name if residual is not None else None,
            )
        ],
        constants={
            "filter": pw_plan.constants["filter"],
            "bias": pw_plan.constants["bias"],
            "dw_filter": dw_plan.constants["filter"],
            "dw_bias": dw_plan.constants["bias"],
        },
    )


def _fused_plan(
    node: Node,
    depthwise: Node,
    pointwise: Node,
    x: PlanInput,
    dw_weights: PlanInput,
    dw_bias: PlanInput,
    pw_inputs: list[PlanInput],
    context: PlanContext,
) -> OpPlan:
    """One conv2d_gpu_tiled launch that computes the depthwise output as it loads it."""
    middle, pw_weights, pw_bias = pw_inputs[:3]
    # plan_conv has planned both convolutions: their weights are constants, shapes known.
    assert x.shape is not None and middle.shape is not None
    assert dw_weights.value is not None and pw_weights.value is not None
    out_shape = (middle.shape[0], pw_weights.value.shape[0], *middle.shape[2:])
    kernel = list(dw_weights.value.shape[2:])
    window, auto_pad = read_window(depthwise, 2, kernel)
    window, _ = resolve_window(depthwise, window, auto_pad, spatial_sizes(x.shape))
    pointwise_window, _ = read_window(pointwise, 2, [1, 1])
    plan = OpPlan(output_shapes=[out_shape])
    # bias_arg writes plan.constants["bias"]: the depthwise bias first, then moved aside.
    bias_arg(plan, depthwise, dw_bias, x.shape[1])
    plan.constants[DEPTHWISE_PREFIX + "bias"] = plan.constants.pop("bias")
    plan.constants[DEPTHWISE_PREFIX + "filter"] = pack_depthwise_filter(dw_weights.value)
    plan.constants["filter"] = pack_gpu_filter(pw_weights.value)
    residual = pw_inputs[3] if len(pw_inputs) > 3 else None
    plan.launches.extend(
        conv2d_gpu_tiled_launches(
            plan,
            TensorArg(x.name),
            bias_arg(plan, pointwise, pw_bias, out_shape[1]),
            pointwise_window,
            spatial_sizes(x.shape),
            x.shape[1],
            out_shape,
            fused_activation(node),
            fusable_residual(residual, out_shape),
            depthwise=DepthwiseInput(
                ConstantArg(DEPTHWISE_PREFIX + "filter"),
                ConstantArg(DEPTHWISE_PREFIX + "bias"),
                window,
                fused_activation(node, DEPTHWISE_PREFIX),
            ),
            last_group_finishes=context.device_fence,
            tf32_mma=context.tf32_mma,
        )
    )
    return plan


def _chained_plan(dw_plan: OpPlan, pw_plan: OpPlan, middle: PlanInput) -> OpPlan:
    """The two Conv plans one after the other, the depthwise output in a scratch buffer;
    the depthwise plan's keys take DEPTHWISE_PREFIX so that the two cannot clash."""
    assert middle.shape is not None
    store = ScratchArg(DEPTHWISE_OUTPUT)
    return chained(
        retargeted(dw_plan, {OutputArg(0): store}, DEPTHWISE_PREFIX),
        retargeted(pw_plan, {TensorArg(middle.name): store}),
        pw_plan.output_shapes,
        {DEPTHWISE_OUTPUT: nhwc4_nbytes(middle.shape)},
    )
