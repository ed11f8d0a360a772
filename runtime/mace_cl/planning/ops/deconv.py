"""ConvTranspose (1-D and 2-D) -> kernels/deconv2d.cl.

Supports strides, pads, dilations, output_padding, group, auto_pad, output_shape,
an optional bias and a fused activation. The kernel gathers: each output pixel sums
the input pixels whose scattered taps land on it, so no atomics or zero-fill pass.

Weights ``[C_in, C_out/group, KH, KW]`` are regrouped into Conv order
``[C_out, C_in/group, KH, KW]`` and packed with ``pack_blocked_filter`` (ops/conv_kernels.py).
"""

from __future__ import annotations

import numpy as np

from mace_cl.model.graph import Node, is_int_list
from mace_cl.planning.layout import Nhwc4Shape, channel_blocks
from mace_cl.planning.ops.base import (
    ConstantArg,
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
from mace_cl.planning.ops.conv_kernels import (
    OUTPUTS_PER_ITEM,
    bias_arg,
    constant_weights,
    pack_blocked_filter,
    window_args,
)
from mace_cl.planning.ops.fused_activation import fused_activation
from mace_cl.planning.ops.op_inputs import runtime_input
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.ops.spatial import (
    Window,
    kernel_shape_attr,
    output_shape,
    read_window,
    spatial_rank,
    spatial_sizes,
)
from mace_cl.planning.program_spec import ProgramSpec


def _spatial_attr(node: Node, key: str, rank: int) -> list[int] | None:
    """An int-list attribute giving one value per spatial axis (``output_shape`` may
    also list N and C first, as some exporters write it)."""
    value = node.attrs.get(key)
    if value is None:
        return None
    if not is_int_list(value):
        raise OpError(node, f"attribute {key!r} must be a list of ints, got {value!r}")
    if key == "output_shape" and len(value) == rank + 2:
        value = value[2:]
    if len(value) != rank:
        raise OpError(node, f"attribute {key!r} needs {rank} values for this input rank, got {value}")
    return list(value)


def _resolve(
    node: Node,
    window: Window,
    auto_pad: str,
    in_size: tuple[int, int],
    output_padding: tuple[int, int],
    target: tuple[int, int] | None,
) -> tuple[Window, tuple[int, int]]:
    """Pads and output size per the ONNX ConvTranspose formulas."""
    if target is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = (in_size[0] * window.stride[0], in_size[1] * window.stride[1])
    begin, end, out = [0, 0], [0, 0], [0, 0]
    for axis in range(2):
        full = window.stride[axis] * (in_size[axis] - 1) + output_padding[axis] + window.extent(axis)
        if target is not None:
            if target[axis] < 1:
                raise OpError(
                    node, f"output_shape must be positive, got {target[axis]} along spatial axis {axis}"
                )
            total = full - target[axis]
            if total >= 0:
                # SAME_UPPER puts the odd pad pixel at the end; otherwise at the start.
                begin[axis] = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
                end[axis] = total - begin[axis]
            else:
                # A target larger than the covered extent: no pads, and the output rows and
                # columns past it receive no input tap, only the bias (what onnxruntime and
                # ONNX's reference compute: they clamp the total padding at 0). The kernel
                # bounds-checks every tap, so a negative end pad is all this needs.
                end[axis] = total
        elif auto_pad == "NOTSET":
            begin[axis], end[axis] = window.pad_begin[axis], window.pad_end[axis]
        out[axis] = full - begin[axis] - end[axis]
        if out[axis] < 1:
            raise OpError(node, f"the pads remove the whole output along spatial axis {axis}")
    resolved = Window(window.kernel, window.stride, window.dilation, (begin[0], begin[1]), (end[0], end[1]))
    return resolved, (out[0], out[1])


@register_op("ConvTranspose")
def plan_conv_transpose(node: Node, inputs: list[PlanInput]) -> OpPlan:
    expect_input_count(node, inputs, 2, 3)
    x = runtime_input(node, inputs[0])
    rank = spatial_rank(node, x.shape)
    assert x.shape is not None
    weights = constant_weights(node, inputs[1], rank)
    c_in = x.shape[1]
    group = attr_int(node, "group", 1)
    if group < 1 or c_in % group:
        raise OpError(node, f"group {group} must divide the input channels ({c_in})")
    if weights.shape[0] != c_in:
        raise OpError(
            node, f"the weights {list(weights.shape)} must have {c_in} rows (one per input channel)"
        )
    group_in_c, group_out_c = c_in // group, weights.shape[1]
    c_out = group_out_c * group
    kernel = list(weights.shape[2:])
    declared = kernel_shape_attr(node, rank)
    if declared is not None and declared != kernel:
        raise OpError(node, f"kernel_shape {declared} does not match the weights' spatial shape {kernel}")
    window, auto_pad = read_window(node, rank, kernel)
    padding = _spatial_attr(node, "output_padding", rank) or [0] * rank
    if any(p < 0 for p in padding):
        raise OpError(node, f"output_padding {padding} must not be negative")
    target = _spatial_attr(node, "output_shape", rank)
    lift = (lambda v: (v[0], v[1])) if rank == 2 else (lambda v: (1, v[0]))
    in_h, in_w = spatial_sizes(x.shape)
    window, (out_h, out_w) = _resolve(
        node,
        window,
        auto_pad,
        (in_h, in_w),
        (padding[0], padding[1]) if rank == 2 else (0, padding[0]),
        None if target is None else lift(target),
    )
    out_shape = output_shape(x.shape, c_out, (out_h, out_w))

    # [C_in, C_out/g, K...] -> [g, C_in/g, C_out/g, K...] -> [C_out, C_in/g, KH, KW]
    conv_order = (
        weights.reshape(group, group_in_c, group_out_c, *window.kernel)
        .transpose(0, 2, 1, 3, 4)
        .reshape(c_out, group_in_c, *window.kernel)
    )
    plan = OpPlan(output_shapes=[out_shape])
    packed, span = pack_blocked_filter(np.ascontiguousarray(conv_order), group)
    plan.constants["filter"] = packed
    bias = bias_arg(plan, node, inputs[2] if len(inputs) > 2 else None, c_out)
    activation = fused_activation(node)
    plan.launches.append(
        KernelLaunch(
            ProgramSpec("deconv2d", activation.build_options()),
            "deconv2d",
            (Nhwc4Shape.of(out_shape).c4, -(-out_w // OUTPUTS_PER_ITEM), x.shape[0] * out_h),
            (
                OutputArg(0),
                TensorArg(x.name),
                ConstantArg("filter"),
                bias,
                IntArg(in_h),
                IntArg(in_w),
                IntArg(channel_blocks(c_in)),
                IntArg(out_h),
                IntArg(out_w),
                IntArg(c_out),
                *window_args(window),
                IntArg(group_in_c),
                IntArg(group_out_c),
                IntArg(span),
                *activation.kernel_args(),
            ),
        )
    )
    return plan
