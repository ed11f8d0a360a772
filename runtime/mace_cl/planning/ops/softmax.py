"""Softmax / LogSoftmax over one axis (ONNX opset >= 13 semantics) -> kernels/softmax.cl.

Older opsets (< 13) flatten the input to 2-D at ``axis``; that equals single-axis
softmax only when ``axis`` is the last axis, so the converter must rewrite other cases.
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape, nchw4_axis
from mace_cl.planning.ops.base import (
    IntArg,
    KernelLaunch,
    OpError,
    OpPlan,
    OutputArg,
    PlanInput,
    TensorArg,
    attr_int,
    expect_input_count,
)
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.program_spec import ProgramSpec

_AXIS_N, _AXIS_C, _AXIS_H, _AXIS_W = range(4)


@register_op("Softmax", "LogSoftmax")
def plan_softmax(node: Node, inputs: list[PlanInput]) -> OpPlan:
    expect_input_count(node, inputs, 1)
    (item,) = inputs
    if item.shape is None or item.is_constant:
        raise OpError(
            node,
            "the input must be a tensor computed at run time (fold constants in the converter)",
        )
    rank = len(item.shape)
    if rank == 0:
        raise OpError(
            node,
            "softmax of a scalar is not defined; the input needs at least one axis",
        )
    axis = attr_int(node, "axis", -1)
    if not -rank <= axis < rank:
        raise OpError(node, f"axis {axis} is out of range for an input of rank {rank}")
    stored_axis = nchw4_axis(rank, axis)
    geo = Nhwc4Shape.of(item.shape)
    options = ("-DLOG_SOFTMAX",) if node.op_type == "LogSoftmax" else ()
    program = ProgramSpec("softmax", options)
    if stored_axis == _AXIS_C:
        launch = KernelLaunch(
            program,
            "softmax_channel",
            (geo.n * geo.h * geo.w,),
            (OutputArg(0), TensorArg(item.name), IntArg(geo.c)),
        )
    else:
        # In float4 units the buffer is [N][H][W][C4]: axis length and inner extent.
        axis_len, inner = {
            _AXIS_N: (geo.n, geo.h * geo.w * geo.c4),
            _AXIS_H: (geo.h, geo.w * geo.c4),
            _AXIS_W: (geo.w, geo.c4),
        }[stored_axis]
        outer = geo.num_float4 // (axis_len * inner)
        launch = KernelLaunch(
            program,
            "softmax_axis",
            (inner, outer),
            (OutputArg(0), TensorArg(item.name), IntArg(axis_len), IntArg(geo.c)),
        )
    return OpPlan(output_shapes=[item.shape], launches=[launch])
