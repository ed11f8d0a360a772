"""Op interface (``base``), registry and the fused-activation helper."""

from mace_cl.planning.ops.base import (
    ConstantArg,
    FloatArg,
    IntArg,
    KernelArg,
    KernelLaunch,
    LocalMemArg,
    OpError,
    OpPlan,
    OutputArg,
    PlanContext,
    PlanFn,
    PlanInput,
    ScratchArg,
    Shape,
    TensorArg,
)
from mace_cl.planning.ops.registry import plan_node, planner_for, register_op, supported_op_types

__all__ = [
    "ConstantArg",
    "FloatArg",
    "IntArg",
    "KernelArg",
    "KernelLaunch",
    "LocalMemArg",
    "OpError",
    "OpPlan",
    "OutputArg",
    "PlanContext",
    "PlanFn",
    "PlanInput",
    "ScratchArg",
    "Shape",
    "TensorArg",
    "plan_node",
    "planner_for",
    "register_op",
    "supported_op_types",
]
