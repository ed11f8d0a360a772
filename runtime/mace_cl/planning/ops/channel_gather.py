"""ChannelGather: each output channel is one channel of one input (copy.cl's gather_channels).

An internal op: the converter's channel_gather pass writes it where channel Concats,
Slices, Splits and shuffles follow each other (ShuffleNet's blocks), so that one launch
does what they did in turn. Inputs are rank-4 tensors with the same batch and pixels;
the attribute ``channels`` lists, per output channel, an index into the inputs' channels
taken in input order (channel ``j`` of input 1 is ``C_0 + j``).
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.ops.base import ConstantArg, OpError, OpPlan, OutputArg, PlanInput
from mace_cl.planning.ops.copy_kernels import (
    GATHER_INPUT_STRIDE,
    GATHER_MAX_INPUTS,
    gather_channels_launch,
    gather_channels_table,
)
from mace_cl.planning.ops.op_inputs import attr_ints, data_arg, input_shape
from mace_cl.planning.ops.registry import register_op


@register_op("ChannelGather", internal=True)
def plan_channel_gather(node: Node, inputs: list[PlanInput]) -> OpPlan:
    if not 1 <= len(inputs) <= GATHER_MAX_INPUTS or not all(item.present for item in inputs):
        raise OpError(node, f"takes 1 to {GATHER_MAX_INPUTS} inputs, all given")
    shapes = [input_shape(node, item) for item in inputs]
    if any(len(shape) != 4 for shape in shapes) or len({(s[0], s[2], s[3]) for s in shapes}) != 1:
        raise OpError(
            node, f"inputs must be rank 4 with the same batch and pixels, got {[list(s) for s in shapes]}"
        )
    channels = attr_ints(node, "channels")
    if not channels:
        raise OpError(node, "attribute 'channels' must list at least one channel")
    starts = [sum(shape[1] for shape in shapes[:k]) for k in range(len(shapes) + 1)]
    picks = []
    for flat in channels:
        if not 0 <= flat < starts[-1]:
            raise OpError(node, f"channel {flat} is outside the inputs' {starts[-1]} channels")
        index = max(k for k in range(len(shapes)) if starts[k] <= flat)
        if flat - starts[index] >= GATHER_INPUT_STRIDE:
            raise OpError(
                node, f"channel {flat - starts[index]} of input {index} is past {GATHER_INPUT_STRIDE}"
            )
        picks.append((index, flat - starts[index]))
    n, _, h, w = shapes[0]
    out_shape = (n, len(channels), h, w)
    plan = OpPlan(output_shapes=[out_shape], table_constants=frozenset({"source"}))
    plan.constants["source"] = gather_channels_table(picks, len(channels))
    sources = [
        (data_arg(plan, f"input{k}", item), shape)
        for k, (item, shape) in enumerate(zip(inputs, shapes, strict=True))
    ]
    plan.launches.append(gather_channels_launch(OutputArg(0), out_shape, ConstantArg("source"), sources))
    return plan
