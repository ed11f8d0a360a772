"""Slice (attributes in opset 1, constant inputs from opset 10) -> copy_box in kernels/copy.cl.

A slice is a strided read: the source offset is the start element and each stored
axis's stride is multiplied by its step, so negative steps walk backwards.
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.layout import nchw4_axis
from mace_cl.planning.ops.base import OpError, OpPlan, OutputArg, PlanInput
from mace_cl.planning.ops.copy_kernels import StridedSource, copy_box_launch
from mace_cl.planning.ops.op_inputs import data_arg, input_shape, int_list, normalize_axes
from mace_cl.planning.ops.registry import register_op


@register_op("Slice")
def plan_slice(node: Node, inputs: list[PlanInput]) -> OpPlan:
    if not inputs or not inputs[0].present:
        raise OpError(node, "the data input is required")
    shape = input_shape(node, inputs[0])
    rank = len(shape)
    starts = int_list(node, inputs, 1, "starts")
    ends = int_list(node, inputs, 2, "ends")
    if starts is None or ends is None or len(starts) != len(ends):
        raise OpError(node, "starts and ends must be given, with one entry per sliced axis")
    axes_given = int_list(node, inputs, 3, "axes")
    axes = normalize_axes(node, list(range(len(starts))) if axes_given is None else axes_given, rank)
    steps = int_list(node, inputs, 4, "steps") or [1] * len(starts)
    if not len(axes) == len(steps) == len(starts):
        raise OpError(
            node,
            f"starts, ends, axes and steps must have the same length; got {starts}, {ends}, {axes}, {steps}",
        )

    plan = OpPlan(output_shapes=[])
    source = StridedSource.whole(data_arg(plan, "input", inputs[0]), shape)
    out_shape = list(shape)
    base = 0
    strides = list(source.strides)
    for axis, start, end, step in zip(axes, starts, ends, steps, strict=True):
        first, length = _slice_range(node, shape[axis], start, end, step)
        if length == 0:
            raise OpError(node, f"the slice along axis {axis} is empty; empty tensors are not supported")
        stored = nchw4_axis(rank, axis)
        base += first * strides[stored]
        strides[stored] *= step
        out_shape[axis] = length
    plan.output_shapes.append(tuple(out_shape))
    strided = StridedSource(source.arg, base, (strides[0], strides[1], strides[2], strides[3]))
    plan.launches.append(copy_box_launch(OutputArg(0), tuple(out_shape), strided))
    return plan


def _slice_range(node: Node, dim: int, start: int, end: int, step: int) -> tuple[int, int]:
    """(first index, element count) of one axis, clamped as the ONNX Slice spec says."""
    if step == 0:
        raise OpError(node, "slice steps must not be 0")
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    return start, len(range(start, end, step))
