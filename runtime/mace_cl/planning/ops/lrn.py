"""LRN (local response normalization across channels, ONNX opset 1/13) -> kernels/lrn.cl.

Inputs of rank 3 or 4 ([N, C, D] or [N, C, H, W]); ``size`` is required, ``alpha``,
``beta`` and ``bias`` default to the ONNX values (1e-4, 0.75, 1.0).
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape
from mace_cl.planning.ops.base import (
    FloatArg,
    IntArg,
    KernelLaunch,
    OpError,
    OpPlan,
    OutputArg,
    PlanInput,
    TensorArg,
    attr_float,
    attr_int,
    expect_input_count,
)
from mace_cl.planning.ops.op_inputs import runtime_input
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.program_spec import ProgramSpec


@register_op("LRN")
def plan_lrn(node: Node, inputs: list[PlanInput]) -> OpPlan:
    expect_input_count(node, inputs, 1)
    x = runtime_input(node, inputs[0])
    if x.shape is None or len(x.shape) not in (3, 4):
        raise OpError(node, f"the input must have rank 3 or 4 ([N, C, ...]), got shape {x.shape}")
    if "size" not in node.attrs:
        raise OpError(node, "attribute 'size' is required")
    size = attr_int(node, "size")
    if size < 1:
        raise OpError(node, f"attribute 'size' must be at least 1, got {size}")
    alpha = attr_float(node, "alpha", 1e-4)
    beta = attr_float(node, "beta", 0.75)
    bias = attr_float(node, "bias", 1.0)
    geo = Nhwc4Shape.of(x.shape)
    launch = KernelLaunch(
        ProgramSpec("lrn"),
        "lrn",
        (geo.c4, geo.w, geo.n * geo.h),
        (
            OutputArg(0),
            TensorArg(x.name),
            IntArg(geo.w),
            IntArg(geo.c),
            # The window is [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)].
            IntArg((size - 1) // 2),
            IntArg(size // 2),
            FloatArg(alpha / size),
            FloatArg(beta),
            FloatArg(bias),
        ),
    )
    return OpPlan(output_shapes=[x.shape], launches=[launch])
