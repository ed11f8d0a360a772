"""Resize (opsets 10-19) and Upsample (opsets 7/9) along H and W -> kernels/resize.cl.

Supported: modes ``nearest`` and ``linear`` (bilinear over the stored H and W axes; a
rank-3 ``[N, C, L]`` input resizes L); every ``coordinate_transformation_mode`` except
``tf_crop_and_resize``; every ``nearest_mode``; ``scales`` or ``sizes`` (constants),
``axes`` and ``keep_aspect_ratio_policy`` (opset 18). Not supported, with an OpError:
``cubic``, ``tf_crop_and_resize``, antialiased downsampling, and resizing the batch or
channel axis.

Legacy semantics: Upsample and the opset-10 Resize (two inputs: X, scales) have no
coordinate attributes; like onnxruntime they map coordinates asymmetrically
(x / scale) and pick the nearest pixel by flooring when enlarging and by ceiling when
shrinking an axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mace.graph import Node
from mace.layout import Nhwc4Shape, nchw4_axis
from mace.ops.base import (
    FloatArg,
    IntArg,
    KernelLaunch,
    OpError,
    OpPlan,
    OutputArg,
    PlanInput,
    attr_int,
    attr_str,
)
from mace.ops.op_inputs import attr_ints, data_arg, float_list, input_shape, int_list, normalize_axes
from mace.ops.registry import register_op
from mace.programs import ProgramSpec

MODES = {"nearest": "RESIZE_NEAREST", "linear": "RESIZE_LINEAR", "bilinear": "RESIZE_LINEAR"}
# nearest_mode -> NEAREST_* code in resize.cl
ROUNDING = {"round_prefer_floor": 0, "round_prefer_ceil": 1, "floor": 2, "ceil": 3}
COORDINATE_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
)
_STORED_H, _STORED_W = 2, 3


@dataclass(frozen=True)
class AxisMap:
    """x_original = (x_resized + pre) * mul / div + post, and the nearest rounding code."""

    pre: float
    mul: float
    div: float
    post: float
    rounding: int

    def float_args(self) -> tuple[FloatArg, ...]:
        return tuple(FloatArg(v) for v in (self.pre, self.mul, self.div, self.post))


@register_op("Resize", "Upsample")
def plan_resize(node: Node, inputs: list[PlanInput]) -> OpPlan:
    if not inputs or not inputs[0].present:
        raise OpError(node, "the data input is required")
    shape = input_shape(node, inputs[0])
    rank = len(shape)
    legacy = node.op_type == "Upsample" or len(inputs) == 2
    mode = attr_str(node, "mode", "nearest")
    if mode not in MODES or (mode == "bilinear" and not legacy):
        raise OpError(
            node, f"mode {mode!r} is not supported; use nearest or linear (cubic is not implemented)"
        )
    if legacy:
        coordinate_mode, nearest_mode = "asymmetric", None
        scales, sizes = float_list(node, inputs, 1, "scales"), None
    else:
        coordinate_mode = attr_str(node, "coordinate_transformation_mode", "half_pixel")
        nearest_mode = attr_str(node, "nearest_mode", "round_prefer_floor")
        if coordinate_mode not in COORDINATE_MODES:
            raise OpError(
                node,
                f"coordinate_transformation_mode {coordinate_mode!r} is not supported; supported: "
                + ", ".join(COORDINATE_MODES),
            )
        if nearest_mode not in ROUNDING:
            raise OpError(node, f"nearest_mode {nearest_mode!r} is not one of {', '.join(ROUNDING)}")
        scales, sizes = float_list(node, inputs, 2, "scales"), int_list(node, inputs, 3, "sizes")
    raw_axes = attr_ints(node, "axes")
    axes = list(range(rank)) if raw_axes is None else normalize_axes(node, raw_axes, rank)
    out_shape, axis_scales, from_sizes = _output_geometry(node, shape, axes, scales, sizes)
    if MODES[mode] == "RESIZE_LINEAR" and attr_int(node, "antialias", 0) and min(axis_scales) < 1.0:
        raise OpError(node, "antialiased linear downsampling is not supported; set antialias=0")

    maps = {}
    for axis in range(rank):
        stored = nchw4_axis(rank, axis)
        if stored in (_STORED_H, _STORED_W):
            maps[stored] = _axis_map(
                coordinate_mode, nearest_mode, shape[axis], out_shape[axis], axis_scales[axis], from_sizes
            )
        elif axis_scales[axis] != 1.0 or out_shape[axis] != shape[axis]:
            raise OpError(
                node, f"only the spatial axes can be resized; axis {axis} has scale {axis_scales[axis]}"
            )
    identity = AxisMap(0.0, 1.0, 1.0, 0.0, ROUNDING["floor"])
    h_map, w_map = maps.get(_STORED_H, identity), maps.get(_STORED_W, identity)

    plan = OpPlan(output_shapes=[out_shape])
    out, src = Nhwc4Shape.of(out_shape), Nhwc4Shape.of(shape)
    args = (
        OutputArg(0),
        data_arg(plan, "input", inputs[0]),
        *(IntArg(v) for v in (out.h, out.w, out.c, src.h, src.w)),
        *h_map.float_args(),
        *w_map.float_args(),
        IntArg(h_map.rounding),
        IntArg(w_map.rounding),
    )
    program = ProgramSpec("resize", (f"-DRESIZE_MODE={MODES[mode]}",))
    plan.launches.append(KernelLaunch(program, "resize", (out.c4, out.w, out.n * out.h), args))
    return plan


def _output_geometry(
    node: Node, shape: tuple[int, ...], axes: list[int], scales: list[float] | None, sizes: list[int] | None
) -> tuple[tuple[int, ...], list[float], bool]:
    """(output shape, scale per axis, whether the scales came from ``sizes``) per the ONNX spec."""
    if (scales is None) == (sizes is None):
        raise OpError(node, "exactly one of scales and sizes must be given (as a constant)")
    given = scales if scales is not None else sizes
    assert given is not None
    if len(given) != len(axes):
        raise OpError(
            node,
            f"{'scales' if scales else 'sizes'} {given} must have one entry per resized axis ({len(axes)})",
        )
    out = list(shape)
    axis_scales = [1.0] * len(shape)
    if scales is not None:
        for axis, scale in zip(axes, scales, strict=True):
            if not scale > 0:
                raise OpError(node, f"scales {scales} must be positive")
            axis_scales[axis] = scale
            out[axis] = math.floor(shape[axis] * scale)
    else:
        assert sizes is not None
        if min(sizes) <= 0:
            raise OpError(node, f"sizes {sizes} must be positive")
        policy = attr_str(node, "keep_aspect_ratio_policy", "stretch")
        ratios = [size / shape[axis] for axis, size in zip(axes, sizes, strict=True)]
        if policy == "stretch":
            for axis, size, ratio in zip(axes, sizes, ratios, strict=True):
                out[axis], axis_scales[axis] = size, ratio
        elif policy in ("not_larger", "not_smaller"):
            common = min(ratios) if policy == "not_larger" else max(ratios)
            for axis in axes:
                out[axis], axis_scales[axis] = int(common * shape[axis] + 0.5), common
            return _checked(node, tuple(out)), axis_scales, False
        else:
            raise OpError(
                node, f"keep_aspect_ratio_policy {policy!r} is not one of stretch, not_larger, not_smaller"
            )
    return _checked(node, tuple(out)), axis_scales, sizes is not None


def _checked(node: Node, out_shape: tuple[int, ...]) -> tuple[int, ...]:
    if min(out_shape, default=1) <= 0:
        raise OpError(node, f"the output shape {list(out_shape)} is empty; empty tensors are not supported")
    return out_shape


def _axis_map(
    coordinate_mode: str, nearest_mode: str | None, length: int, resized: int, scale: float, from_sizes: bool
) -> AxisMap:
    """Resolve one axis's coordinate transform (ONNX Resize spec) to pre/mul/div/post."""
    if nearest_mode is None:  # legacy rounding
        rounding = ROUNDING["floor"] if scale >= 1.0 else ROUNDING["ceil"]
    else:
        rounding = ROUNDING[nearest_mode]
    # 1 / scale; from sizes it is exactly length / resized, kept as a ratio of integers.
    mul, div = (float(length), float(resized)) if from_sizes else (1.0, scale)
    if coordinate_mode == "asymmetric":
        return AxisMap(0.0, mul, div, 0.0, rounding)
    if coordinate_mode == "tf_half_pixel_for_nn":
        return AxisMap(0.5, mul, div, 0.0, rounding)
    if coordinate_mode == "align_corners":
        if resized == 1:
            return AxisMap(0.0, 0.0, 1.0, 0.0, rounding)
        return AxisMap(0.0, float(length - 1), float(resized - 1), 0.0, rounding)
    if coordinate_mode == "pytorch_half_pixel" and resized == 1:
        return AxisMap(0.0, 0.0, 1.0, 0.0, rounding)
    if coordinate_mode == "half_pixel_symmetric":
        # The spec's offset + (x + 0.5) / scale - 0.5, with offset = length/2 * (1 - resized /
        # (scale * length)), rearranged so that pre and post are exact half-integers.
        return AxisMap(0.5 - resized / 2, mul, div, (length - 1) / 2, rounding)
    return AxisMap(0.5, mul, div, -0.5, rounding)  # half_pixel, pytorch_half_pixel
