"""Unary activations (the ONNX ops of fused_activation.ACTIVATIONS) and PRelu -> kernels/activation.cl."""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape
from mace_cl.planning.ops.base import (
    IntArg,
    KernelLaunch,
    OpError,
    OpPlan,
    OutputArg,
    PlanInput,
    TensorArg,
    attr_float,
    expect_input_count,
)
from mace_cl.planning.ops.broadcast import broadcast_operand, broadcast_shapes
from mace_cl.planning.ops.fused_activation import ACTIVATIONS, ONNX_ACTIVATIONS, Activation, Parameter
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.program_spec import ProgramSpec


@register_op(*ONNX_ACTIVATIONS)
def plan_activation(node: Node, inputs: list[PlanInput]) -> OpPlan:
    """The ONNX ops of fused_activation.ACTIVATIONS, on their own: one activation.cl launch."""
    name = ONNX_ACTIVATIONS[node.op_type]
    kind = ACTIVATIONS[name]
    parameters = (kind.alpha, kind.beta)
    last_input = max((p.input for p in parameters if p is not None and p.input is not None), default=0)
    expect_input_count(node, inputs, 1, last_input + 1)
    alpha, beta = (_parameter(node, inputs, p) for p in parameters)
    return _activation_plan(node, inputs[0], Activation(name, alpha, beta))


def _parameter(node: Node, inputs: list[PlanInput], parameter: Parameter | None) -> float:
    if parameter is None:
        return 0.0
    index = parameter.input
    if index is None:
        return attr_float(node, parameter.onnx, parameter.default)
    if index >= len(inputs) or not inputs[index].present:
        return parameter.default
    item = inputs[index]
    if item.value is None or item.value.size != 1:
        raise OpError(node, f"{parameter.onnx} input {index} ({item.name!r}) must be a constant scalar")
    return float(item.value.reshape(()))


def _activation_plan(node: Node, item: PlanInput, activation: Activation) -> OpPlan:
    if item.shape is None or item.is_constant:
        raise OpError(
            node,
            "the input must be a tensor computed at run time (fold constants in the converter)",
        )
    geo = Nhwc4Shape.of(item.shape)
    launch = KernelLaunch(
        program=ProgramSpec("activation", activation.build_options()),
        kernel="activation",
        global_size=(geo.num_float4,),
        args=(
            OutputArg(0),
            TensorArg(item.name),
            IntArg(geo.c),
            *activation.kernel_args(),
        ),
    )
    return OpPlan(output_shapes=[item.shape], launches=[launch])


@register_op("PRelu")
def plan_prelu(node: Node, inputs: list[PlanInput]) -> OpPlan:
    """PRelu: slope broadcast unidirectionally to X (e.g. [C,1,1] per channel, or [1])."""
    expect_input_count(node, inputs, 2)
    x, slope = inputs
    if x.shape is None or slope.shape is None or x.is_constant:
        raise OpError(node, "X must be a tensor computed at run time")
    try:
        broadcast_ok = broadcast_shapes(x.shape, slope.shape) == x.shape
    except ValueError:
        broadcast_ok = False
    if not broadcast_ok:
        raise OpError(
            node,
            f"slope shape {list(slope.shape)} does not broadcast to X shape {list(x.shape)}",
        )
    plan = OpPlan(output_shapes=[x.shape])
    operand = broadcast_operand(plan, "slope", slope, x.shape)
    geo = Nhwc4Shape.of(x.shape)
    plan.launches.append(
        KernelLaunch(
            program=ProgramSpec("activation", (f"-DSLOPE_MODE={operand.load_mode}",)),
            kernel="prelu",
            global_size=(geo.c4, geo.w, geo.n * geo.h),
            args=(
                OutputArg(0),
                TensorArg(x.name),
                operand.arg,
                IntArg(geo.h),
                IntArg(geo.w),
                IntArg(geo.c),
                *operand.stride_args(),
            ),
        )
    )
    return plan
