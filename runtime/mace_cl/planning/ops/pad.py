"""Pad (opsets 1-23: constant inputs pads, constant_value, axes; the attributes ``pads``/
``value`` of older opsets reach it as those inputs, see op_inputs.MOVED_TO_INPUTS) ->
kernels/pad.cl.

Pads may be given on any axis, the channel axis included, and may be negative: like
onnxruntime, negative pads crop first and the remaining window is then padded, so
reflect/edge/wrap fold within the window.
Modes: constant, reflect, edge, wrap. The kernel folds each output coordinate back into
the input per mode, so a program variant exists per mode only.
"""

from __future__ import annotations

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape, as_nchw4, nchw4_axis
from mace_cl.planning.ops.base import (
    FloatArg,
    IntArg,
    KernelLaunch,
    OpError,
    OpPlan,
    OutputArg,
    PlanInput,
    attr_str,
)
from mace_cl.planning.ops.op_inputs import constant_input, data_arg, input_shape, int_list, normalize_axes
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.program_spec import ProgramSpec

PAD_MODES = {"constant": "PAD_CONSTANT", "reflect": "PAD_REFLECT", "edge": "PAD_EDGE", "wrap": "PAD_WRAP"}


@register_op("Pad")
def plan_pad(node: Node, inputs: list[PlanInput]) -> OpPlan:
    if not inputs or not inputs[0].present:
        raise OpError(node, "the data input is required")
    shape = input_shape(node, inputs[0])
    rank = len(shape)
    mode = attr_str(node, "mode", "constant")
    if mode not in PAD_MODES:
        raise OpError(node, f"mode {mode!r} is not one of {', '.join(PAD_MODES)}")
    pads = int_list(node, inputs, 1, "pads")
    if pads is None:
        raise OpError(node, "pads are required (input 1 from opset 11, attribute 'pads' before)")
    axes_given = int_list(node, inputs, 3, "axes")
    axes = list(range(rank)) if axes_given is None else normalize_axes(node, axes_given, rank)
    if len(pads) != 2 * len(axes):
        raise OpError(node, f"pads {pads} must have 2 entries per padded axis ({2 * len(axes)})")

    begins, ends = [0] * rank, [0] * rank
    for i, axis in enumerate(axes):
        begins[axis], ends[axis] = pads[i], pads[i + len(axes)]
    out_shape = tuple(d + b + e for d, b, e in zip(shape, begins, ends, strict=True))
    if min(out_shape, default=1) <= 0:
        raise OpError(
            node,
            f"pads {pads} crop shape {list(shape)} to {list(out_shape)}; empty tensors are not supported",
        )

    # Per stored axis (n, c, h, w): the non-negative pad before, and the window of the
    # input left after negative pads crop it (onnxruntime crops first, then pads).
    window = [[0, 0, d] for d in as_nchw4(shape)]  # [begin, first, length]
    for axis, (b, e) in enumerate(zip(begins, ends, strict=True)):
        length = shape[axis] - max(-b, 0) - max(-e, 0)
        if length <= 0:
            raise OpError(node, f"pads {pads} crop away all of axis {axis} (length {shape[axis]})")
        window[nchw4_axis(rank, axis)] = [max(b, 0), max(-b, 0), length]
    plan = OpPlan(output_shapes=[out_shape])
    out, src = Nhwc4Shape.of(out_shape), Nhwc4Shape.of(shape)
    ints = (out.h, out.w, out.c, src.h, src.w, src.c, *(v for axis in window for v in axis))
    plan.launches.append(
        KernelLaunch(
            ProgramSpec("pad", (f"-DPAD_MODE={PAD_MODES[mode]}",)),
            "pad",
            (out.c4, out.w, out.n * out.h),
            (
                OutputArg(0),
                data_arg(plan, "input", inputs[0]),
                *(IntArg(v) for v in ints),
                FloatArg(_constant_value(node, inputs)),
            ),
        )
    )
    return plan


def _constant_value(node: Node, inputs: list[PlanInput]) -> float:
    value = constant_input(node, inputs, 2, "constant_value")
    if value is None:
        return 0.0
    if value.size != 1:
        raise OpError(node, f"constant_value must be a scalar, got shape {list(value.shape)}")
    return float(value.reshape(-1)[0])
