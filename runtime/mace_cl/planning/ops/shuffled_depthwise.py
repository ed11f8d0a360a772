"""ShuffledDepthwiseConv: a depthwise convolution of channel-shuffled input.

An internal op: the converter's shuffle_depthwise pass writes it where a channel shuffle
(ShuffleNet's Reshape -> Transpose -> Reshape, a permutation Conv since the channel_shuffle
pass) is read only by a depthwise Conv. Inputs as that Conv's: x (before the shuffle), the
weights [C, 1, KH, KW] and the bias (optional). Attributes: the Conv's, and
``shuffle_groups`` g: channel c of the convolved tensor is channel (c % g) * (C / g) + c // g
of x.

CPU plans whose convolution runs on depthwise_o16 read x through the shuffle
(``-DSHUFFLE_GROUPS``, g in FUSED_SHUFFLE_GROUPS, C / g >= 16): x holds the shuffled tensor as g runs of
C / g channels; a work-item convolves 16 adjacent channels of every run (weights and bias
packed in that order) and puts the lanes in channel order before the store, so the
shuffled tensor is never stored. Every other plan runs the shuffle (copy.cl's
permute_channels) into a scratch buffer, then the Conv.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mace_cl.model.graph import Node
from mace_cl.planning.layout import nhwc4_nbytes
from mace_cl.planning.ops.base import (
    SHAPES_CONTEXT,
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
from mace_cl.planning.ops.conv import permute_channels_plan, plan_conv
from mace_cl.planning.ops.conv_kernels import O16, pack_depthwise_o16_filter
from mace_cl.planning.ops.registry import register_op

SHUFFLE_GROUPS = "shuffle_groups"  # the attribute
FUSED_SHUFFLE_GROUPS = (2, 4, 8)  # the -DSHUFFLE_GROUPS values conv2d_o16.cl takes
SHUFFLED = "shuffled"  # scratch: the shuffled tensor, where it is stored


def takes_fused_shuffle(channels: int, groups: int) -> bool:
    """Whether depthwise_o16 -DSHUFFLE_GROUPS reads a shuffle of ``groups`` groups: runs of
    at least O16 channels, so that a 16-wide load of a run's last channels ends inside the
    pixel (in the next run) or, for the last run, in the next pixel, which the kernel
    guards against at the tensor's last pixel only."""
    return groups in FUSED_SHUFFLE_GROUPS and channels // groups >= O16


def shuffle_source(channels: int, groups: int) -> np.ndarray:
    """Channel c of x shuffled in ``groups`` groups is channel ``source[c]`` of x."""
    c = np.arange(channels)
    return (c % groups) * (channels // groups) + c // groups


def run_order(channels: int, groups: int) -> np.ndarray:
    """The shuffled channel that each filter and bias lane of depthwise_o16 -DSHUFFLE_GROUPS
    computes (-1 past the runs), over [Q][g][16], Q = ceil(C / g / 16): work-item q, run r,
    lane t is channel (16 * q + t) * g + r."""
    run = channels // groups
    q, r, t = np.meshgrid(np.arange(-(-run // O16)), np.arange(groups), np.arange(O16), indexing="ij")
    j = q * O16 + t  # the channel's index within its run of x
    return np.where(j < run, j * groups + r, -1).reshape(-1)


def in_run_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``values`` (per channel along axis 0) at the lanes of ``order``, zero at -1, and any
    rows past ``order`` (padding) left zero."""
    out = np.zeros((max(len(order), len(values)), *values.shape[1:]), values.dtype)
    lanes = np.flatnonzero(order >= 0)
    out[lanes] = values[order[lanes]]
    return out


def split_nodes(node: Node) -> Node:
    """The Conv that ``node`` stands for, reading the shuffled tensor ``<name>#shuffled``."""
    conv_attrs = {key: value for key, value in node.attrs.items() if key != SHUFFLE_GROUPS}
    return Node(
        "Conv", node.name, [f"{node.name}#shuffled", *node.inputs[1:]], list(node.outputs), conv_attrs
    )


@register_op("ShuffledDepthwiseConv", needs_context=True, internal=True)
def plan_shuffled_depthwise_conv(
    node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT
) -> OpPlan:
    expect_input_count(node, inputs, 2, 3)
    x = inputs[0]
    if x.shape is None or len(x.shape) != 4:
        raise OpError(node, f"input 0 must be a rank-4 tensor, got shape {list(x.shape or ())}")
    channels = x.shape[1]
    groups = attr_int(node, SHUFFLE_GROUPS, 0)
    if groups < 2 or channels % groups:
        raise OpError(
            node,
            f"attribute '{SHUFFLE_GROUPS}' must be at least 2 and divide the input's {channels} "
            f"channels, got {groups}",
        )
    if attr_int(node, "group", 1) != channels:
        raise OpError(
            node,
            f"must be a depthwise convolution (group = {channels} channels), got group "
            f"{attr_int(node, 'group', 1)}",
        )
    conv = split_nodes(node)
    middle = PlanInput(conv.inputs[0], x.shape)
    conv_plan = plan_conv(conv, [middle, *inputs[1:]], context)
    kernels = [launch.kernel for launch in conv_plan.launches]
    if takes_fused_shuffle(channels, groups) and kernels == ["depthwise_o16"]:
        return _fused_plan(conv_plan, x, middle, inputs[1], groups)
    shuffle_plan = permute_channels_plan(TensorArg(x.name), x.shape, shuffle_source(channels, groups))
    store = ScratchArg(SHUFFLED)
    return chained(
        retargeted(shuffle_plan, {OutputArg(0): store}, "shuffle_"),
        retargeted(conv_plan, {TensorArg(middle.name): store}),
        conv_plan.output_shapes,
        {SHUFFLED: nhwc4_nbytes(x.shape)},
    )


def _fused_plan(
    conv_plan: OpPlan, x: PlanInput, middle: PlanInput, weights: PlanInput, groups: int
) -> OpPlan:
    """conv_plan's depthwise_o16 launch reading x through the shuffle: its weights and bias
    repacked in run order, one work-item per 16 channels of every run and O16 / g outputs."""
    assert x.shape is not None and weights.value is not None  # plan_conv checked the weights
    order = run_order(x.shape[1], groups)
    plan = retargeted(conv_plan, {TensorArg(middle.name): TensorArg(x.name)})
    plan.constants["filter"] = pack_depthwise_o16_filter(in_run_order(weights.value, order))
    plan.constants["bias"] = in_run_order(plan.constants["bias"], order)
    (launch,) = plan.launches
    n, _, out_h, out_w = conv_plan.output_shapes[0]
    program = replace(launch.program, options=(*launch.program.options, f"-DSHUFFLE_GROUPS={groups}"))
    global_size = (len(order) // (groups * O16), -(-out_w // (O16 // groups)), n * out_h)
    plan.launches = [replace(launch, program=program, global_size=global_size)]
    return plan
