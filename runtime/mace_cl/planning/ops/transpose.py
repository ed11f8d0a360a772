"""Transpose of rank <= 4 -> copy_box in kernels/copy.cl.

Output axis k reads input axis perm[k]: the output's stored axis for k gets the input
float stride of the stored axis for perm[k]. A permutation that moves the channel axis
reads channels with a gather stride; one that keeps it reads whole float4 blocks.
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.layout import nchw4_axis
from mace_cl.planning.ops.base import OpError, OpPlan, OutputArg, PlanInput, expect_input_count
from mace_cl.planning.ops.copy_kernels import StridedSource, copy_box_launch
from mace_cl.planning.ops.op_inputs import attr_ints, data_arg, input_shape
from mace_cl.planning.ops.registry import register_op


@register_op("Transpose")
def plan_transpose(node: Node, inputs: list[PlanInput]) -> OpPlan:
    expect_input_count(node, inputs, 1)
    shape = input_shape(node, inputs[0])
    rank = len(shape)
    perm = attr_ints(node, "perm")
    perm = list(range(rank))[::-1] if perm is None else perm
    if sorted(perm) != list(range(rank)):
        raise OpError(node, f"perm {perm} is not a permutation of the {rank} input axes")
    out_shape = tuple(shape[axis] for axis in perm)
    plan = OpPlan(output_shapes=[out_shape])
    source = StridedSource.whole(data_arg(plan, "input", inputs[0]), shape)
    strides = [0, 0, 0, 0]  # stored axes without a logical axis have size 1
    for out_axis, in_axis in enumerate(perm):
        strides[nchw4_axis(rank, out_axis)] = source.strides[nchw4_axis(rank, in_axis)]
    permuted = StridedSource(source.arg, 0, (strides[0], strides[1], strides[2], strides[3]))
    plan.launches.append(copy_box_launch(OutputArg(0), out_shape, permuted))
    return plan
