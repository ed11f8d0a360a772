"""Binary element-wise ops (Add, Sub, Mul, Div, Max, Min, Sum) -> kernels/eltwise.cl.

This module is the worked example in docs/runtime.md.
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape
from mace_cl.planning.ops.base import IntArg, KernelArg, KernelLaunch, OpError, OpPlan, OutputArg, PlanInput
from mace_cl.planning.ops.broadcast import BroadcastOperand, broadcast_operand, broadcast_shapes
from mace_cl.planning.ops.fused_activation import Activation, fused_activation
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.program_spec import ProgramSpec

# ONNX op type -> OP_* macro in eltwise.cl
KERNEL_OP = {
    "Add": "OP_ADD",
    "Sub": "OP_SUB",
    "Mul": "OP_MUL",
    "Div": "OP_DIV",
    "Max": "OP_MAX",
    "Min": "OP_MIN",
    "Sum": "OP_ADD",
}
_VARIADIC = frozenset({"Max", "Min", "Sum"})


@register_op(*KERNEL_OP)
def plan_eltwise(node: Node, inputs: list[PlanInput]) -> OpPlan:
    if not inputs or not all(item.present for item in inputs):
        raise OpError(node, "every input must be given")
    if node.op_type not in _VARIADIC and len(inputs) != 2:
        raise OpError(node, f"expects 2 inputs, got {len(inputs)}")
    try:
        out_shape = broadcast_shapes(*(item.shape for item in inputs if item.shape is not None))
    except ValueError as exc:
        raise OpError(node, str(exc)) from None
    activation = fused_activation(node)
    plan = OpPlan(output_shapes=[out_shape])
    geo = Nhwc4Shape.of(out_shape)
    operands = [broadcast_operand(plan, f"input{i}", item, out_shape) for i, item in enumerate(inputs)]
    if len(operands) == 1:
        # Max/Min/Sum of a single tensor is that tensor; max(x, x) copies it.
        plan.launches.append(eltwise_launch("OP_MAX", operands[0], operands[0], geo, activation))
        return plan
    # Variadic ops fold left in place: later launches read the output they write.
    # It has the output's shape, so each work-item reads only the float4 it overwrites.
    own_output = BroadcastOperand(OutputArg(0), geo.float_strides())
    accumulated = operands[0]
    for i, operand in enumerate(operands[1:], start=1):
        last = i == len(operands) - 1
        act = activation if last else Activation()
        plan.launches.append(eltwise_launch(KERNEL_OP[node.op_type], accumulated, operand, geo, act))
        accumulated = own_output
    return plan


def eltwise_launch(
    op: str,
    a: BroadcastOperand,
    b: BroadcastOperand,
    geo: Nhwc4Shape,
    activation: Activation,
    dest: KernelArg | None = None,
) -> KernelLaunch:
    """One eltwise.cl launch writing ``dest``, by default this node's output 0 (also used
    by other ops)."""
    options = (
        f"-DELTWISE_OP={op}",
        f"-DA_MODE={a.load_mode}",
        f"-DB_MODE={b.load_mode}",
    )
    return KernelLaunch(
        program=ProgramSpec("eltwise", options + activation.build_options()),
        kernel="eltwise",
        global_size=(geo.c4, geo.w, geo.n * geo.h),
        args=(
            OutputArg(0) if dest is None else dest,
            a.arg,
            b.arg,
            IntArg(geo.h),
            IntArg(geo.w),
            IntArg(geo.c),
            *a.stride_args(),
            *b.stride_args(),
            *activation.kernel_args(),
        ),
    )
