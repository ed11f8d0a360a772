"""GatherConv: a 1x1 convolution of channels gathered from several tensors.

An internal op: the converter's gather_conv pass writes it where a ChannelGather's output
is read only by a 1x1 Conv (ShuffleNetV2: each block's branch starts with a 1x1 Conv of
the channels the shuffles picked). Inputs: the gather's sources (1 to GATHER_MAX_INPUTS
rank-4 tensors with the same pixels), then the Conv's weights [C_out, C, 1, 1] and bias
(optional). Attributes: ``channels`` as ChannelGather's, the Conv's fused activation.

GPU plans whose 1x1 convolution runs on conv2d_gpu_tiled read the sources themselves
(``-DSOURCES``): the weights become a matrix over all the sources' channels, zero where a
channel is not gathered, so the gathered tensor is never stored (one launch where there
were two), at the price of reading every source channel; they do so while that is at most
GATHER_CONV_MAX_READ times the gathered channels and every source is a run-time tensor.
Every other plan runs the gather, then the Conv.
"""

from __future__ import annotations

import numpy as np

from mace_cl.model.graph import Node
from mace_cl.planning.layout import channel_blocks, nhwc4_nbytes
from mace_cl.planning.ops.base import (
    SHAPES_CONTEXT,
    OpError,
    OpPlan,
    OutputArg,
    PlanContext,
    PlanInput,
    ScratchArg,
    TensorArg,
)
from mace_cl.planning.ops.chained import chained, retargeted
from mace_cl.planning.ops.channel_gather import plan_channel_gather
from mace_cl.planning.ops.conv import conv2d_gpu_tiled_launches, plan_conv, takes_tiled_pointwise
from mace_cl.planning.ops.conv_kernels import bias_arg, pack_gpu_filter
from mace_cl.planning.ops.copy_kernels import GATHER_MAX_INPUTS
from mace_cl.planning.ops.fused_activation import FUSED_ATTRIBUTES, fused_activation
from mace_cl.planning.ops.op_inputs import attr_ints
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.ops.spatial import read_window

GATHER_CONV_MAX_READ = 8  # source channels read per gathered channel, at most (GPU plans)
GATHERED = "gathered"  # scratch: the gathered tensor, where it is stored


def split_nodes(node: Node) -> tuple[Node, Node]:
    """The ChannelGather and the Conv that ``node`` stands for; the gather writes ``<name>#gathered``."""
    middle = f"{node.name}#gathered"
    *sources, weights, bias = node.inputs
    gather = Node(
        "ChannelGather", node.name, sources, [middle], {"channels": attr_ints(node, "channels") or []}
    )
    conv = Node(
        "Conv",
        node.name,
        [middle, weights, bias],
        list(node.outputs),
        {key: value for key, value in node.attrs.items() if key in FUSED_ATTRIBUTES},
    )
    return gather, conv


@register_op("GatherConv", needs_context=True, internal=True)
def plan_gather_conv(node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT) -> OpPlan:
    if not 3 <= len(inputs) <= GATHER_MAX_INPUTS + 2:
        raise OpError(
            node,
            f"takes 1 to {GATHER_MAX_INPUTS} sources, the weights and the bias, got {len(inputs)} inputs",
        )
    *sources, weights, bias = inputs
    gather, conv = split_nodes(node)
    gather_plan = plan_channel_gather(gather, sources)
    middle = PlanInput(gather.outputs[0], gather_plan.output_shapes[0])
    if weights.value is None or weights.value.ndim != 4 or weights.value.shape[2:] != (1, 1):
        raise OpError(node, f"the weights (input {len(sources)}) must be a constant [C_out, C, 1, 1]")
    conv_plan = plan_conv(conv, [middle, weights, bias], context)
    assert middle.shape is not None
    n, gathered, height, width = middle.shape
    source_shapes = [source.shape for source in sources]
    read = sum(channel_blocks(shape[1]) * 4 for shape in source_shapes if shape is not None)
    if (
        context.gpu
        and all(source.value is None for source in sources)
        and takes_tiled_pointwise(n * height * width, read)
        and read <= GATHER_CONV_MAX_READ * gathered
    ):
        return _fused_plan(node, conv, sources, weights.value, bias, conv_plan.output_shapes[0], context)
    return _chained_plan(gather_plan, conv_plan, middle)


def _fused_plan(
    node: Node,
    conv: Node,
    sources: list[PlanInput],
    weights: np.ndarray,
    bias: PlanInput,
    out_shape: tuple[int, ...],
    context: PlanContext,
) -> OpPlan:
    """One conv2d_gpu_tiled -DSOURCES launch over the sources, the weights spread over their
    channels (each in its NHWC4 blocks, padding lanes included)."""
    starts = [0]
    for source in sources:
        assert source.shape is not None
        starts.append(starts[-1] + channel_blocks(source.shape[1]))
    spread = np.zeros((weights.shape[0], starts[-1] * 4), np.float32)
    flat_starts = np.cumsum([0, *(source.shape[1] for source in sources if source.shape is not None)])
    for column, flat in enumerate(attr_ints(node, "channels") or []):
        index = int(np.searchsorted(flat_starts, flat, side="right")) - 1
        spread[:, starts[index] * 4 + flat - flat_starts[index]] += weights[:, column, 0, 0]
    plan = OpPlan(output_shapes=[out_shape])
    plan.constants["filter"] = pack_gpu_filter(spread[:, :, None, None])
    x = sources[0]
    assert x.shape is not None
    window, _ = read_window(conv, 2, [1, 1])
    plan.launches.extend(
        conv2d_gpu_tiled_launches(
            plan,
            TensorArg(x.name),
            bias_arg(plan, conv, bias, out_shape[1]),
            window,
            (x.shape[2], x.shape[3]),
            starts[-1] * 4,
            out_shape,
            fused_activation(node),
            sources=[
                (TensorArg(source.name), start)
                for source, start in zip(sources[1:], starts[1:-1], strict=True)
            ],
            last_group_finishes=context.device_fence,
            tf32_mma=context.tf32_mma,
        )
    )
    return plan


def _chained_plan(gather_plan: OpPlan, conv_plan: OpPlan, middle: PlanInput) -> OpPlan:
    """The gather into a scratch buffer, then the Conv reading it; the gather's keys take
    the prefix "gather_" so that the two cannot clash."""
    assert middle.shape is not None
    store = ScratchArg(GATHERED)
    return chained(
        retargeted(gather_plan, {OutputArg(0): store}, "gather_"),
        retargeted(conv_plan, {TensorArg(middle.name): store}),
        conv_plan.output_shapes,
        {GATHERED: nhwc4_nbytes(middle.shape)},
    )
