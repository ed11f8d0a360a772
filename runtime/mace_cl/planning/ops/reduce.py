"""ReduceMean/Sum/Max/Min/Prod/L1/L2/SumSquare over any axes -> kernels/reduce.cl.

``axes`` come from the attribute (older opsets) or a constant input (ReduceSum from
opset 13, the others from 18); empty or absent axes reduce everything unless
``noop_with_empty_axes`` is set. The kernel writes the keepdims=1 shape. With
keepdims=0 the result usually has the same stored view (e.g. global H, W pooling
``[N, C, H, W] -> [N, C]``); when it does not (e.g. reducing the channel axis of
``[N, C, H, W]`` to ``[N, H, W]``), the kernel writes a scratch buffer and copy.cl's
reshape_copy moves it into the output.
"""

from __future__ import annotations

import math

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape, as_nchw4, nchw4_axis, nhwc4_nbytes
from mace_cl.planning.ops.base import (
    SHAPES_CONTEXT,
    FloatArg,
    IntArg,
    KernelArg,
    KernelLaunch,
    LocalMemArg,
    OpError,
    OpPlan,
    OutputArg,
    PlanContext,
    PlanInput,
    ScratchArg,
    attr_int,
)
from mace_cl.planning.ops.copy_kernels import StridedSource, copy_box_launch, reshape_launch
from mace_cl.planning.ops.op_inputs import data_arg, input_shape, int_list, normalize_axes
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.program_spec import ProgramSpec

# ONNX op type -> REDUCE_* macro in reduce.cl
KERNEL_OP = {
    "ReduceMean": "REDUCE_SUM",
    "ReduceSum": "REDUCE_SUM",
    "ReduceSumSquare": "REDUCE_SUM_SQUARE",
    "ReduceL1": "REDUCE_L1",
    "ReduceL2": "REDUCE_L2",
    "ReduceMax": "REDUCE_MAX",
    "ReduceMin": "REDUCE_MIN",
    "ReduceProd": "REDUCE_PROD",
}


# GPU plans: reductions folding at least GPU_MIN_FOLDED float4s per output use
# reduce_wg with this many work-items per output (more for very long ones).
GPU_MIN_FOLDED = 32
GPU_REDUCE_LANES = 64
GPU_REDUCE_LANES_LARGE = 256
GPU_REDUCE_LARGE = 16384


@register_op(*KERNEL_OP, needs_context=True)
def plan_reduce(node: Node, inputs: list[PlanInput], context: PlanContext = SHAPES_CONTEXT) -> OpPlan:
    if not inputs or not inputs[0].present:
        raise OpError(node, "the data input is required")
    shape = input_shape(node, inputs[0])
    rank = len(shape)
    keepdims = attr_int(node, "keepdims", 1) != 0
    axes = int_list(node, inputs, 1, "axes")
    if not axes:
        if attr_int(node, "noop_with_empty_axes", 0):
            plan = OpPlan(output_shapes=[shape])
            plan.launches.append(
                copy_box_launch(
                    OutputArg(0), shape, StridedSource.whole(data_arg(plan, "input", inputs[0]), shape)
                )
            )
            return plan
        axes = list(range(rank))
    reduced = set(normalize_axes(node, axes, rank))
    keep_shape = tuple(1 if axis in reduced else d for axis, d in enumerate(shape))
    out_shape = keep_shape if keepdims else tuple(d for axis, d in enumerate(shape) if axis not in reduced)
    plan = OpPlan(output_shapes=[out_shape])

    stored_reduced = {nchw4_axis(rank, axis) for axis in reduced}
    src, kept = Nhwc4Shape.of(shape), Nhwc4Shape.of(keep_shape)
    extents = [dim if axis in stored_reduced else 1 for axis, dim in enumerate(as_nchw4(shape))]
    direct = as_nchw4(keep_shape) == as_nchw4(out_shape)
    dest: KernelArg = OutputArg(0) if direct else ScratchArg("keepdims")
    count = math.prod(shape[axis] for axis in reduced)
    scale = 1.0 / count if node.op_type == "ReduceMean" else 1.0
    args = (
        dest,
        data_arg(plan, "input", inputs[0]),
        *(IntArg(v) for v in (src.h, src.w, src.c, kept.h, kept.w, kept.c)),
        *(IntArg(extents[axis]) for axis in (0, 2, 3)),
        IntArg(int(1 in stored_reduced)),
        FloatArg(scale),
    )
    program = ProgramSpec("reduce", (f"-DREDUCE_OP={KERNEL_OP[node.op_type]}",))
    folded = math.prod(extents[axis] for axis in (0, 2, 3)) * (src.c4 if 1 in stored_reduced else 1)
    if context.gpu and folded >= GPU_MIN_FOLDED:
        # A work-group per output float4 instead of one work-item looping over all.
        lanes = GPU_REDUCE_LANES_LARGE if folded >= GPU_REDUCE_LARGE else GPU_REDUCE_LANES
        plan.launches.append(
            KernelLaunch(
                program,
                "reduce_wg",
                (kept.c4 * lanes, kept.w, kept.n * kept.h),
                (*args, LocalMemArg(lanes * 16)),
                local_size=(lanes, 1, 1),
            )
        )
    else:
        plan.launches.append(KernelLaunch(program, "reduce", (kept.c4, kept.w, kept.n * kept.h), args))
    if not direct:
        plan.scratch_bytes["keepdims"] = nhwc4_nbytes(keep_shape)
        plan.launches.append(reshape_launch(OutputArg(0), out_shape, ScratchArg("keepdims"), keep_shape))
    return plan
