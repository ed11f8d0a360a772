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

Coordinates are resolved here, not in the kernel. Every output row and column maps to
fixed source positions, so the plan evaluates the spec's coordinate formulas in exact
rational arithmetic (``fractions.Fraction``) and hands the kernel one lookup table per
axis. Device float math cannot decide which input element is picked: OpenCL lets a
single-precision division be 2.5 ulp off (NVIDIA returns 1.5000001 for 3.5 * 4 / 7 -
0.5), which moves nearest-mode ties and floors at exact integers to the wrong row.

Packed layout of the constants ``rows`` (one entry per output row, ``out.h`` of them)
and ``cols`` (per output column, ``out.w``): float32 ``[i0, i1, t, 0]``, meaning the
output samples ``in[i0] * (1 - t) + in[i1] * t`` along that axis, with ``i0``, ``i1``
already clamped to ``[0, length)``. Nearest stores ``[i, i, 0, 0]``. Indices are
integers below 2^24, hence exact in float32 (the tables stay float32 in a half model:
``OpPlan.table_constants``), and the kernel's float-to-int conversion of an exact integer
is exact.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from mace_cl.model.graph import Node
from mace_cl.planning.layout import Nhwc4Shape, nchw4_axis
from mace_cl.planning.ops.base import (
    ConstantArg,
    IntArg,
    KernelLaunch,
    OpError,
    OpPlan,
    OutputArg,
    PlanInput,
    attr_int,
    attr_str,
    check_output_size,
    expect_attrs,
)
from mace_cl.planning.ops.op_inputs import (
    attr_ints,
    data_arg,
    float_list,
    input_shape,
    int_list,
    normalize_axes,
)
from mace_cl.planning.ops.registry import register_op
from mace_cl.planning.program_spec import ProgramSpec

MODES = {"nearest": "RESIZE_NEAREST", "linear": "RESIZE_LINEAR", "bilinear": "RESIZE_LINEAR"}
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
COORDINATE_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
)
# cubic_coeff_a only affects cubic, extrapolation_value only tf_crop_and_resize (both
# rejected), exclude_outside only cubic weights: accepted and ignored, as the spec allows.
RESIZE_ATTRS = (
    "mode",
    "coordinate_transformation_mode",
    "nearest_mode",
    "cubic_coeff_a",
    "exclude_outside",
    "extrapolation_value",
    "antialias",
    "axes",
    "keep_aspect_ratio_policy",
)
UPSAMPLE_ATTRS = ("mode", "scales")
# Samples one axis: (i0, i1, t) -> in[i0] * (1 - t) + in[i1] * t
Tap = tuple[int, int, float]
_STORED_H, _STORED_W = 2, 3
# Indices travel as float32; beyond 2^24 not every integer is representable.
_MAX_EXACT_INDEX = 1 << 24


@register_op("Resize", "Upsample")
def plan_resize(node: Node, inputs: list[PlanInput]) -> OpPlan:
    expect_attrs(node, UPSAMPLE_ATTRS if node.op_type == "Upsample" else RESIZE_ATTRS)
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
        if nearest_mode not in NEAREST_MODES:
            raise OpError(node, f"nearest_mode {nearest_mode!r} is not one of {', '.join(NEAREST_MODES)}")
        scales, sizes = float_list(node, inputs, 2, "scales"), int_list(node, inputs, 3, "sizes")
    raw_axes = attr_ints(node, "axes")
    axes = list(range(rank)) if raw_axes is None else normalize_axes(node, raw_axes, rank)
    out_shape, axis_scales = _output_geometry(node, shape, axes, scales, sizes)
    check_output_size(node, node.outputs[0], out_shape)  # before per-pixel work on the host
    linear = MODES[mode] == "RESIZE_LINEAR"
    if linear and attr_int(node, "antialias", 0) and min(axis_scales) < 1:
        raise OpError(node, "antialiased linear downsampling is not supported; set antialias=0")
    taps: dict[int, list[Tap]] = {}
    for axis in range(rank):
        stored = nchw4_axis(rank, axis)
        if stored in (_STORED_H, _STORED_W):
            coords = _source_coords(coordinate_mode, shape[axis], out_shape[axis], axis_scales[axis])
            if linear:
                taps[stored] = [_linear_tap(x, shape[axis]) for x in coords]
            else:
                rule = nearest_mode or ("floor" if axis_scales[axis] >= 1 else "ceil")
                taps[stored] = [_nearest_tap(x, rule, shape[axis]) for x in coords]
        elif axis_scales[axis] != 1 or out_shape[axis] != shape[axis]:
            raise OpError(
                node,
                f"only the spatial axes can be resized; axis {axis} has scale {float(axis_scales[axis])}",
            )

    # rows/cols hold indices: they stay float32 in a half model (half is exact to 2048 only).
    plan = OpPlan(output_shapes=[out_shape], table_constants=frozenset({"rows", "cols"}))
    out, src = Nhwc4Shape.of(out_shape), Nhwc4Shape.of(shape)
    if max(out.h, out.w, src.h, src.w) > _MAX_EXACT_INDEX:
        raise OpError(node, f"spatial axes longer than 2^24 are not supported (shape {list(shape)})")
    # An axis that is not resized (the stored H of a rank-3 tensor) reads straight through.
    plan.constants["rows"] = _pack_taps(taps.get(_STORED_H) or [(i, i, 0.0) for i in range(out.h)])
    plan.constants["cols"] = _pack_taps(taps.get(_STORED_W) or [(i, i, 0.0) for i in range(out.w)])
    args = (
        OutputArg(0),
        data_arg(plan, "input", inputs[0]),
        ConstantArg("rows"),
        ConstantArg("cols"),
        *(IntArg(v) for v in (out.h, out.w, out.c, src.h, src.w)),
    )
    program = ProgramSpec("resize", (f"-DRESIZE_MODE={MODES[mode]}",))
    plan.launches.append(KernelLaunch(program, "resize", (out.c4, out.w, out.n * out.h), args))
    return plan


def _output_geometry(
    node: Node, shape: tuple[int, ...], axes: list[int], scales: list[float] | None, sizes: list[int] | None
) -> tuple[tuple[int, ...], list[Fraction]]:
    """(output shape, exact scale per axis) per the ONNX spec.

    Scales from ``sizes`` are the exact ratios output / input (the spec's intent; a float
    ratio such as 7/3 would put coordinates next to, not on, a rounding tie). Given
    ``scales`` are floats, converted exactly.
    """
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
    axis_scales = [Fraction(1)] * len(shape)
    if scales is not None:
        for axis, scale in zip(axes, scales, strict=True):
            if not scale > 0 or not math.isfinite(scale):
                raise OpError(node, f"scales {scales} must be positive and finite")
            axis_scales[axis] = Fraction(scale)
            out[axis] = math.floor(shape[axis] * axis_scales[axis])
    else:
        assert sizes is not None
        if min(sizes) <= 0:
            raise OpError(node, f"sizes {sizes} must be positive")
        policy = attr_str(node, "keep_aspect_ratio_policy", "stretch")
        ratios = [Fraction(size, shape[axis]) for axis, size in zip(axes, sizes, strict=True)]
        if policy == "stretch":
            for axis, size, ratio in zip(axes, sizes, ratios, strict=True):
                out[axis], axis_scales[axis] = size, ratio
        elif policy in ("not_larger", "not_smaller"):
            common = min(ratios) if policy == "not_larger" else max(ratios)
            for axis in axes:
                # The spec rounds scale * length half up.
                out[axis], axis_scales[axis] = math.floor(common * shape[axis] + Fraction(1, 2)), common
        else:
            raise OpError(
                node, f"keep_aspect_ratio_policy {policy!r} is not one of stretch, not_larger, not_smaller"
            )
    if min(out, default=1) <= 0:
        raise OpError(node, f"the output shape {out} is empty; empty tensors are not supported")
    return tuple(out), axis_scales


def _source_coords(mode: str, length: int, resized: int, scale: Fraction) -> list[Fraction]:
    """x_original of every output index x, per the spec's coordinate_transformation_mode."""
    half = Fraction(1, 2)
    xs = range(resized)
    if mode == "asymmetric":
        return [x / scale for x in xs]
    if mode == "tf_half_pixel_for_nn":
        return [(x + half) / scale for x in xs]
    if mode == "align_corners":
        return [Fraction(x * (length - 1), resized - 1) if resized > 1 else Fraction(0) for x in xs]
    if mode == "pytorch_half_pixel":
        return [(x + half) / scale - half if resized > 1 else Fraction(0) for x in xs]
    if mode == "half_pixel_symmetric":
        # offset = length / 2 * (1 - adjustment), adjustment = resized / (scale * length)
        offset = Fraction(length, 2) * (1 - resized / (scale * length))
        return [offset + (x + half) / scale - half for x in xs]
    assert mode == "half_pixel", mode
    return [(x + half) / scale - half for x in xs]


def _nearest_tap(x: Fraction, rule: str, length: int) -> Tap:
    low = math.floor(x)
    frac = x - low
    if rule == "round_prefer_floor":
        index = low if frac <= Fraction(1, 2) else low + 1
    elif rule == "round_prefer_ceil":
        index = low if frac < Fraction(1, 2) else low + 1
    elif rule == "floor":
        index = low
    else:
        index = math.ceil(x)
    index = min(max(index, 0), length - 1)
    return index, index, 0.0


def _linear_tap(x: Fraction, length: int) -> Tap:
    # The spec reads neighbours from an edge-padded axis, which is the same as clamping
    # the coordinate into [0, length - 1].
    clamped = min(max(x, Fraction(0)), Fraction(length - 1))
    low = math.floor(clamped)
    return low, min(low + 1, length - 1), float(clamped - low)


def _pack_taps(taps: list[Tap]) -> np.ndarray:
    packed = np.zeros((len(taps), 4), np.float32)
    packed[:, :3] = np.asarray(taps, np.float64)
    return packed
