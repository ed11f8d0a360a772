"""Unary activations and PRelu -> kernels/activation.cl."""

from __future__ import annotations

import math

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
from mace_cl.planning.ops.fused_activation import Activation
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.program_spec import ProgramSpec

# ONNX op type -> (activation kind, {ONNX attribute: (default, "alpha" | "beta")})
_UNARY: dict[str, tuple[str, dict[str, tuple[float, str]]]] = {
    "Identity": ("none", {}),
    "Relu": ("relu", {}),
    "LeakyRelu": ("leaky_relu", {"alpha": (0.01, "alpha")}),
    "Sigmoid": ("sigmoid", {}),
    "Tanh": ("tanh", {}),
    "HardSigmoid": ("hard_sigmoid", {"alpha": (0.2, "alpha"), "beta": (0.5, "beta")}),
    "HardSwish": ("hard_swish", {}),
    "Swish": ("swish", {"alpha": (1.0, "alpha")}),
    "Elu": ("elu", {"alpha": (1.0, "alpha")}),
}


@register_op(*_UNARY)
def plan_unary(node: Node, inputs: list[PlanInput]) -> OpPlan:
    expect_input_count(node, inputs, 1)
    kind, params = _UNARY[node.op_type]
    values = {"alpha": 0.0, "beta": 0.0}
    for onnx_name, (default, slot) in params.items():
        values[slot] = attr_float(node, onnx_name, default)
    return _activation_plan(node, inputs[0], Activation(kind, values["alpha"], values["beta"]))


@register_op("Clip")
def plan_clip(node: Node, inputs: list[PlanInput]) -> OpPlan:
    """Clip: bounds from constant inputs 1/2 (opset >= 11) or attributes min/max (older)."""
    expect_input_count(node, inputs, 1, 3)
    low = attr_float(node, "min", -math.inf)
    high = attr_float(node, "max", math.inf)
    for index, item in enumerate(inputs[1:3], start=1):
        if not item.present:
            continue
        if item.value is None or item.value.size != 1:
            raise OpError(node, f"bound input {index} ({item.name!r}) must be a constant scalar")
        bound = float(item.value.reshape(()))
        low, high = (bound, high) if index == 1 else (low, bound)
    return _activation_plan(node, inputs[0], Activation("clip", low, high))


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
