"""DepthToSpace and SpaceToDepth (DCR and CRD) on [N, C, H, W] -> kernels/copy.cl.

SpaceToDepth has had a ``mode`` since onnx 1.23 (DCR by default, as before); CRD is
the inverse of DepthToSpace's CRD.
"""

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
    attr_int,
    attr_str,
    expect_attrs,
    expect_input_count,
)
from mace_cl.planning.ops.copy_kernels import COPY_PROGRAM
from mace_cl.planning.ops.op_inputs import data_arg, input_shape
from mace_cl.planning.ops.registry import register_op


@register_op("DepthToSpace", "SpaceToDepth")
def plan_space_depth(node: Node, inputs: list[PlanInput]) -> OpPlan:
    expect_input_count(node, inputs, 1)
    # Both ops, every opset so far: blocksize and mode; a newer attribute must fail loudly.
    expect_attrs(node, ("blocksize", "mode"))
    shape = input_shape(node, inputs[0])
    if len(shape) != 4:
        raise OpError(node, f"the input must be [N, C, H, W]; got shape {list(shape)}")
    block = attr_int(node, "blocksize")
    if block < 1:
        raise OpError(node, f"blocksize must be at least 1, got {block}")
    n, c, h, w = shape
    mode = attr_str(node, "mode", "DCR")
    if mode not in ("DCR", "CRD"):
        raise OpError(node, f"mode {mode!r} is not one of DCR, CRD")
    if node.op_type == "DepthToSpace":
        if c % (block * block):
            raise OpError(node, f"channels {c} are not a multiple of blocksize^2 = {block * block}")
        out_shape = (n, c // (block * block), h * block, w * block)
    else:
        if h % block or w % block:
            raise OpError(node, f"height {h} and width {w} must be multiples of blocksize {block}")
        out_shape = (n, c * block * block, h // block, w // block)
    plan = OpPlan(output_shapes=[out_shape])
    out = Nhwc4Shape.of(out_shape)
    kernel = "depth_to_space" if node.op_type == "DepthToSpace" else "space_to_depth"
    args = (
        OutputArg(0),
        data_arg(plan, "input", inputs[0]),
        IntArg(out.h),
        IntArg(out.w),
        IntArg(out.c),
        IntArg(block),
        IntArg(int(mode == "CRD")),
    )
    plan.launches.append(KernelLaunch(COPY_PROGRAM, kernel, (out.c4, out.w, out.n * out.h), args))
    return plan
