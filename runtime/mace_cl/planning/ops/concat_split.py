"""Concat and Split along any axis -> copy_box in kernels/copy.cl (ops/copy_kernels.py).

Concat enqueues one box copy per input at its offset along the stored axis. Along the
channel axis an input whose channel count is not a multiple of 4 shares a float4 block
with the next input; the later launch keeps the lanes the earlier one wrote. Split is
one offset box copy per output.
"""

from __future__ import annotations

import math

from mace_cl.model.graph import Node
from mace_cl.planning.layout import as_nchw4, nchw4_axis
from mace_cl.planning.ops.base import OpError, OpPlan, OutputArg, PlanInput, attr_int
from mace_cl.planning.ops.copy_kernels import Quad, StridedSource, copy_box_launch
from mace_cl.planning.ops.op_inputs import data_arg, input_shape, int_list, normalize_axis
from mace_cl.planning.ops.registry import register_op


@register_op("Concat")
def plan_concat(node: Node, inputs: list[PlanInput]) -> OpPlan:
    if not inputs or not all(item.present for item in inputs):
        raise OpError(node, "every input must be given")
    shapes = [input_shape(node, item) for item in inputs]
    rank = len(shapes[0])
    if rank == 0:
        raise OpError(node, "scalars cannot be concatenated; inputs need at least one axis")
    axis = normalize_axis(node, attr_int(node, "axis"), rank)
    for shape in shapes[1:]:
        if len(shape) != rank or any(
            a != b for i, (a, b) in enumerate(zip(shape, shapes[0], strict=True)) if i != axis
        ):
            raise OpError(
                node,
                f"input shapes {[list(s) for s in shapes]} differ outside axis {axis}; "
                "only the concatenation axis may differ",
            )
    out_shape = list(shapes[0])
    out_shape[axis] = sum(shape[axis] for shape in shapes)
    plan = OpPlan(output_shapes=[tuple(out_shape)])
    stored_axis = nchw4_axis(rank, axis)
    offset = 0
    for i, (item, shape) in enumerate(zip(inputs, shapes, strict=True)):
        origin = [0, 0, 0, 0]
        origin[stored_axis] = offset
        source = StridedSource.whole(data_arg(plan, f"input{i}", item), shape)
        plan.launches.append(
            copy_box_launch(OutputArg(0), tuple(out_shape), source, _quad(origin), as_nchw4(shape))
        )
        offset += shape[axis]
    return plan


@register_op("Split")
def plan_split(node: Node, inputs: list[PlanInput]) -> OpPlan:
    if not inputs or not inputs[0].present:
        raise OpError(node, "the data input is required")
    shape = input_shape(node, inputs[0])
    if not shape:
        raise OpError(node, "a scalar cannot be split")
    axis = normalize_axis(node, attr_int(node, "axis", 0), len(shape))
    sizes = _split_sizes(node, inputs, shape[axis])
    plan = OpPlan(output_shapes=[])
    arg = data_arg(plan, "input", inputs[0])
    strides = StridedSource.whole(arg, shape).strides
    axis_stride = strides[nchw4_axis(len(shape), axis)]
    offset = 0
    for index, size in enumerate(sizes):
        out_shape = (*shape[:axis], size, *shape[axis + 1 :])
        plan.output_shapes.append(out_shape)
        if node.outputs[index]:  # an unused output gets no buffer and no launch
            source = StridedSource(arg, offset * axis_stride, strides)
            plan.launches.append(copy_box_launch(OutputArg(index), out_shape, source))
        offset += size
    return plan


def _split_sizes(node: Node, inputs: list[PlanInput], length: int) -> list[int]:
    """Part lengths: ``split`` (input 1 from opset 13, else attribute), else equal parts."""
    count = len(node.outputs)
    sizes = int_list(node, inputs, 1, "split")
    if sizes is not None:
        if len(sizes) != count:
            raise OpError(node, f"split {sizes} has {len(sizes)} entries but the node has {count} outputs")
        if sum(sizes) != length or min(sizes) <= 0:
            raise OpError(
                node,
                f"split {sizes} must be positive lengths summing to the axis length {length} "
                "(empty outputs are not supported)",
            )
        return sizes
    if "num_outputs" in node.attrs:
        # Opset 18: ceil-sized parts, the last one possibly smaller.
        num_outputs = attr_int(node, "num_outputs")
        if num_outputs != count:
            raise OpError(node, f"num_outputs is {num_outputs} but the node has {count} outputs")
        chunk = math.ceil(length / count)
        sizes = [min(chunk, length - i * chunk) for i in range(count)]
        if min(sizes) <= 0:
            raise OpError(node, f"an axis of length {length} cannot be split into {count} non-empty parts")
        return sizes
    if count == 0 or length % count:
        raise OpError(
            node, f"an axis of length {length} cannot be split into {count} equal parts; give 'split' sizes"
        )
    return [length // count] * count


def _quad(values: list[int]) -> Quad:
    return (values[0], values[1], values[2], values[3])
