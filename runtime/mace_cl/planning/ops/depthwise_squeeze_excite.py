"""DepthwiseSqueezeExcite: a depthwise convolution and the squeeze-excite gate of its output.

An internal op: the converter's depthwise_squeeze_excite pass writes it where a depthwise
Conv's output feeds a SqueezeExcite (MobileNetV3's and EfficientNet's blocks; the 1x1
Conv after them reads both outputs). Inputs: x, the depthwise weights [C, 1, KH, KW] and
bias (optional), then SqueezeExcite's w1, b1, w2, b2. Outputs: the depthwise output and
the gate [N, C_out, 1, 1]. Attributes: the depthwise convolution's window and group, its
fused activation under the prefix ``depthwise_``; SqueezeExcite's ``hidden_activation*``
and (the gate's) ``activation*``.

GPU plans with a device fence (PlanContext.device_fence) run it as one
``depthwise_se_gpu`` launch: each work-group sums the outputs it has just computed, and
the last one of an image computes the gate; one launch where there were two, the output
not read back. Every other plan runs the two ops as they plan themselves.
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.layout import channel_blocks
from mace_cl.planning.ops.base import (
    SHAPES_CONTEXT,
    ConstantArg,
    CounterArg,
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
)
from mace_cl.planning.ops.chained import chained, retargeted
from mace_cl.planning.ops.conv import plan_conv
from mace_cl.planning.ops.fused_activation import ACTIVATIONS, FUSED_ATTRIBUTES, fused_activation
from mace_cl.planning.ops.pooling import (
    SE_ARRIVALS,
    SE_LAST_GROUP_LOCAL_SIZE,
    SE_PARTIAL_SCRATCH,
    SE_SQUEEZE_BLOCKS,
    plan_squeeze_excite,
    se_gate_args,
    se_hidden_option,
)
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.program_spec import ProgramSpec

DEPTHWISE_PREFIX = "depthwise_"  # attributes of the depthwise convolution's activation
GATE_ATTRIBUTES = frozenset(FUSED_ATTRIBUTES) | {f"hidden_{key}" for key in FUSED_ATTRIBUTES}


def split_nodes(node: Node) -> tuple[Node, Node]:
    """The depthwise Conv and the SqueezeExcite that ``node`` stands for."""
    inputs = list(node.inputs) + [""] * (7 - len(node.inputs))
    window = {
        key: value
        for key, value in node.attrs.items()
        if key not in GATE_ATTRIBUTES and not key.startswith(DEPTHWISE_PREFIX)
    }
    activation = {
        key.removeprefix(DEPTHWISE_PREFIX): value
        for key, value in node.attrs.items()
        if key.startswith(DEPTHWISE_PREFIX)
    }
    depthwise = Node("Conv", node.name, inputs[:3], [node.outputs[0]], {**window, **activation})
    gate = Node(
        "SqueezeExcite",
        node.name,
        [node.outputs[0], *inputs[3:7]],
        [node.outputs[1]],
        {key: value for key, value in node.attrs.items() if key in GATE_ATTRIBUTES},
    )
    return depthwise, gate


@register_op("DepthwiseSqueezeExcite", needs_context=True, internal=True)
def plan_depthwise_squeeze_excite(
    node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT
) -> OpPlan:
    if not 6 <= len(inputs) <= 7:
        raise OpError(
            node, f"expects 6 or 7 inputs (x, depthwise weights and bias, w1, b1, w2, b2), got {len(inputs)}"
        )
    # The depthwise bias, b1 and b2 may be omitted.
    for index, what in ((0, "x"), (1, "the depthwise weights"), (3, "w1"), (5, "w2")):
        if not inputs[index].present:
            raise OpError(node, f"input {index} ({what}) is required but omitted")
    if len(node.outputs) != 2:
        raise OpError(node, f"has two outputs (the depthwise output, the gate), got {len(node.outputs)}")
    x = inputs[0]
    channels = x.shape[1] if x.shape is not None and len(x.shape) == 4 else None
    group = attr_int(node, "group", 1)
    dw_weights = inputs[1]
    if channels is None or group != channels or (dw_weights.shape or ())[:2] != (channels, 1):
        raise OpError(
            node,
            f"input 0 must be rank 4 [N, C, H, W] and the depthwise weights (input 1) [C, 1, KH, KW] "
            f"with group C; got {list(x.shape or ())}, {list(dw_weights.shape or ())}, group {group}",
        )
    depthwise, gate = split_nodes(node)
    dw_plan = plan_conv(depthwise, inputs[:3], context)
    padded = [*inputs, PlanInput("", None), PlanInput("", None)][:7]
    middle = PlanInput(node.outputs[0], dw_plan.output_shapes[0])
    se_plan = plan_squeeze_excite(gate, [middle, *padded[3:7]], context)
    (dw_launch, *more) = dw_plan.launches
    if context.gpu and context.device_fence and dw_launch.kernel == "depthwise_gpu" and not more:
        return _fused_plan(node, gate, dw_plan, dw_launch, se_plan)
    return _chained_plan(dw_plan, se_plan, middle)


def _fused_plan(node: Node, gate: Node, dw_plan: OpPlan, dw_launch: KernelLaunch, se_plan: OpPlan) -> OpPlan:
    """One depthwise_se_gpu launch: depthwise_gpu's arguments, then the gate's."""
    batch, channels, height, width = dw_plan.output_shapes[0]
    gate_shape = se_plan.output_shapes[0]
    hidden_size = se_plan.constants["b1"].shape[0]
    pixels = height * width
    size = SE_LAST_GROUP_LOCAL_SIZE
    blocks = channel_blocks(channels)
    group_blocks = min(SE_SQUEEZE_BLOCKS, 1 << (blocks - 1).bit_length())
    slices = size // group_blocks  # pixels per work-group
    groups = -(-blocks // group_blocks)
    count = groups * -(-pixels // slices)
    gate_args, _ = se_gate_args(gate, size, count, hidden_size, gate_shape[1], one_group=True)
    gate_activation = fused_activation(gate)
    options = (
        *dw_launch.program.options,
        *se_hidden_option(gate),
        f"-DGATE_ACTIVATION=ACT_{ACTIVATIONS[gate_activation.kind].macro}",
        f"-DSE_LOCAL_X={group_blocks}",
        f"-DSE_LOCAL_Y={slices}",
    )
    launch = KernelLaunch(
        ProgramSpec(dw_launch.program.name, options),
        "depthwise_se_gpu",
        (groups * group_blocks, -(-pixels // slices) * slices, batch),
        (
            *dw_launch.args,
            OutputArg(1),
            ConstantArg("w1"),
            *gate_args[:1],  # b1
            IntArg(hidden_size),
            *gate_args[1:],
            ScratchArg(SE_PARTIAL_SCRATCH),
            CounterArg(SE_ARRIVALS),
            LocalMemArg(size * 16),
            LocalMemArg(hidden_size * 4),
            LocalMemArg(size * 4),
        ),
        local_size=(group_blocks, slices, 1),
    )
    assert not set(dw_plan.constants) & set(se_plan.constants)
    return OpPlan(
        output_shapes=[dw_plan.output_shapes[0], gate_shape],
        launches=[launch],
        constants={**dw_plan.constants, **se_plan.constants},
        scratch_bytes={SE_PARTIAL_SCRATCH: batch * count * hidden_size * 4},  # float each
        counters={SE_ARRIVALS: batch},
    )


def _chained_plan(dw_plan: OpPlan, se_plan: OpPlan, middle: PlanInput) -> OpPlan:
    """The depthwise plan, then the gate's reading output 0 and writing output 1; the gate's
    keys take the prefix "se_" so that the two cannot clash."""
    return chained(
        dw_plan,
        retargeted(se_plan, {TensorArg(middle.name): OutputArg(0), OutputArg(0): OutputArg(1)}, "se_"),
        [*dw_plan.output_shapes, *se_plan.output_shapes],
    )
