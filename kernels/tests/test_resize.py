"""kernels/resize.cl (ops/resize.py): Resize and Upsample, nearest and (bi)linear.

The reference below follows the ONNX Resize spec formulas in exact rational arithmetic
(fractions.Fraction), one axis at a time; a few cases are cross-checked against
onnx.reference.ReferenceEvaluator and onnxruntime, since coordinate modes are easy to
get subtly wrong in the same way twice.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.model.graph import Node
from mace_cl.planning.ops.base import OpError, PlanInput
from mace_cl.planning.ops.registry import plan_node
from mace_cl.testing import assert_close_half, half_rounded, run_node

# Nearest picks input elements: exact. The plan resolves source coordinates in exact
# arithmetic into per-row/column index tables, so no device rounding decides a pick
# (test_plan_tables_are_exact checks the tables without a device).
# Linear: float32 interpolation of values in [-4, 4] with float32-rounded weights against
# an exact-weight float64 reference; a few roundings of ~2.4e-7 each.
LINEAR_TOL = {"rtol": 1e-5, "atol": 1e-5}

HALF = Fraction(1, 2)
COORDINATE_MODES = [
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_half_pixel_for_nn",
]


def _original(mode: str, x: int, length: int, resized: int, scale: Fraction) -> Fraction:
    """x_original per the spec's coordinate_transformation_mode formulas."""
    if mode == "half_pixel":
        return (x + HALF) / scale - HALF
    if mode == "pytorch_half_pixel":
        return (x + HALF) / scale - HALF if resized > 1 else Fraction(0)
    if mode == "align_corners":
        return Fraction(0) if resized == 1 else Fraction(x * (length - 1), resized - 1)
    if mode == "asymmetric":
        return x / scale
    if mode == "tf_half_pixel_for_nn":
        return (x + HALF) / scale
    if mode == "half_pixel_symmetric":
        adjustment = resized / (scale * length)
        offset = Fraction(length, 2) * (1 - adjustment)
        return offset + (x + HALF) / scale - HALF
    raise AssertionError(mode)


def _nearest(x: Fraction, rule: str, length: int) -> int:
    low = math.floor(x)
    frac = x - low
    index = {
        "round_prefer_floor": low if frac <= HALF else low + 1,
        "round_prefer_ceil": low if frac < HALF else low + 1,
        "floor": low,
        "ceil": math.ceil(x),
    }[rule]
    return min(max(index, 0), length - 1)


def _resize_axis(
    a: np.ndarray, axis: int, resized: int, scale: Fraction, mode: str, coord: str, rule: str
) -> np.ndarray:
    length = a.shape[axis]
    coords = [_original(coord, x, length, resized, scale) for x in range(resized)]
    if mode == "nearest":
        return np.take(a, [_nearest(c, rule, length) for c in coords], axis=axis)
    # Linear: the spec's neighbours come from an edge-padded axis, i.e. a clamped coordinate.
    clamped = [min(max(c, Fraction(0)), Fraction(length - 1)) for c in coords]
    low = [math.floor(c) for c in clamped]
    high = [min(i + 1, length - 1) for i in low]
    shape = [1] * a.ndim
    shape[axis] = resized
    weight = np.array([float(c - i) for c, i in zip(clamped, low, strict=True)]).reshape(shape)
    return np.take(a, low, axis=axis) * (1 - weight) + np.take(a, high, axis=axis) * weight


def resize_reference(
    x: np.ndarray, out_shape: tuple[int, ...], scales: list[Fraction], mode: str, coord: str, rule: str
) -> np.ndarray:
    result = x.astype(np.float64)
    for axis, (resized, scale) in enumerate(zip(out_shape, scales, strict=True)):
        if resized != x.shape[axis] or scale != 1:
            result = _resize_axis(result, axis, resized, scale, mode, coord, rule)
    return result


def _input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-4.0, 4.0, shape).astype(np.float32)


def _compare(result: np.ndarray, expected: np.ndarray, mode: str) -> None:
    assert result.shape == expected.shape
    if mode == "nearest":
        np.testing.assert_array_equal(result, expected.astype(np.float32))
    else:
        np.testing.assert_allclose(result, expected, **LINEAR_TOL)


def _run_sizes(x: np.ndarray, sizes: tuple[int, ...], attrs: dict) -> np.ndarray:
    inputs = {"x": x, "roi": None, "scales": None, "sizes": np.array(sizes, np.int64)}
    (result,) = run_node("Resize", inputs, attrs=attrs, constant_inputs={"sizes"})
    return result


def _run_scales(x: np.ndarray, scales: list[float], attrs: dict) -> np.ndarray:
    inputs = {"x": x, "roi": None, "scales": np.array(scales, np.float32)}
    (result,) = run_node("Resize", inputs, attrs=attrs, constant_inputs={"scales"})
    return result


SIZE_CASES = [
    # (input shape, output sizes): up, down by non-integer ratios, from 1x1, to 1 row, rank 3
    ((2, 5, 4, 6), (2, 5, 7, 9)),
    ((2, 5, 7, 9), (2, 5, 3, 4)),
    ((1, 1, 1, 1), (1, 1, 3, 2)),
    ((1, 3, 5, 5), (1, 3, 1, 8)),
    ((2, 6, 9), (2, 6, 13)),
]


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("coord", COORDINATE_MODES)
@pytest.mark.parametrize(("shape", "sizes"), SIZE_CASES, ids=str)
def test_resize_sizes(shape: tuple[int, ...], sizes: tuple[int, ...], coord: str, mode: str) -> None:
    x = _input(shape)
    attrs = {"mode": mode, "coordinate_transformation_mode": coord}
    result = _run_sizes(x, sizes, attrs)
    scales = [Fraction(o, i) for o, i in zip(sizes, shape, strict=True)]
    _compare(result, resize_reference(x, sizes, scales, mode, coord, "round_prefer_floor"), mode)


# Scales that are exact binary fractions; 2 and 0.5 put half_pixel/asymmetric
# coordinates exactly on .5 ties, which is where the nearest modes differ.
SCALE_CASES = [
    ((2, 5, 4, 6), [1.0, 1.0, 2.0, 0.5]),
    ((1, 7, 3, 5), [1.0, 1.0, 1.5, 2.5]),
    ((2, 3, 8, 8), [1.0, 1.0, 0.75, 0.625]),
]


@pytest.mark.parametrize("rule", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
@pytest.mark.parametrize("coord", ["half_pixel", "asymmetric", "align_corners", "half_pixel_symmetric"])
@pytest.mark.parametrize(("shape", "scales"), SCALE_CASES, ids=str)
def test_resize_nearest_scales(shape: tuple[int, ...], scales: list[float], coord: str, rule: str) -> None:
    x = _input(shape, seed=1)
    result = _run_scales(
        x, scales, {"mode": "nearest", "coordinate_transformation_mode": coord, "nearest_mode": rule}
    )
    out_shape = tuple(math.floor(d * s) for d, s in zip(shape, scales, strict=True))
    expected = resize_reference(x, out_shape, [Fraction(s) for s in scales], "nearest", coord, rule)
    _compare(result, expected, "nearest")


@pytest.mark.parametrize("coord", ["half_pixel", "pytorch_half_pixel", "half_pixel_symmetric"])
@pytest.mark.parametrize(("shape", "scales"), SCALE_CASES, ids=str)
def test_resize_linear_scales(shape: tuple[int, ...], scales: list[float], coord: str) -> None:
    x = _input(shape, seed=2)
    result = _run_scales(x, scales, {"mode": "linear", "coordinate_transformation_mode": coord})
    out_shape = tuple(math.floor(d * s) for d, s in zip(shape, scales, strict=True))
    expected = resize_reference(x, out_shape, [Fraction(s) for s in scales], "linear", coord, "")
    _compare(result, expected, "linear")


def test_plan_tables_are_exact() -> None:
    # The case that broke on NVIDIA: h = 3 of a 4 -> 7 half_pixel resize has source row
    # (3.5 * 4 / 7) - 0.5 = 1.5 exactly, a round_prefer_floor tie that belongs to row 1;
    # a 2.5-ulp float division gave 1.5000001 -> row 2. The plan's table now holds the
    # index itself, so check the tables against the exact reference for every mode.
    for coord in COORDINATE_MODES:
        for rule in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
            node = Node(
                "Resize",
                "node",
                ["x", "", "", "sizes"],
                ["y"],
                {"mode": "nearest", "coordinate_transformation_mode": coord, "nearest_mode": rule},
            )
            inputs = [
                PlanInput("x", (1, 1, 4, 9)),
                PlanInput("", None),
                PlanInput("", None),
                PlanInput("sizes", (4,), np.array([1, 1, 7, 4], np.int64)),
            ]
            plan = plan_node(node, inputs)
            for key, length, resized in [("rows", 4, 7), ("cols", 9, 4)]:
                scale = Fraction(resized, length)
                want = [
                    _nearest(_original(coord, x, length, resized, scale), rule, length)
                    for x in range(resized)
                ]
                table = plan.constants[key]
                assert table.dtype == np.float32 and table.shape == (resized, 4)
                assert table[:, 0].tolist() == want, (coord, rule, key)


# ---- opset variants -----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_opset7_attribute_and_opset9_input(mode: str) -> None:
    # Upsample: asymmetric coordinates, nearest floors (scales >= 1).
    x = _input((2, 5, 3, 4), seed=3)
    scales = [1.0, 1.0, 2.0, 1.5]
    expected = resize_reference(x, (2, 5, 6, 6), [Fraction(s) for s in scales], mode, "asymmetric", "floor")
    (from_attr,) = run_node("Upsample", {"x": x}, attrs={"mode": mode, "scales": scales})
    _compare(from_attr, expected, mode)
    inputs = {"x": x, "scales": np.array(scales, np.float32)}
    (from_input,) = run_node("Upsample", inputs, attrs={"mode": mode}, constant_inputs={"scales"})
    _compare(from_input, expected, mode)


def test_resize_opset10_downsample_uses_ceil() -> None:
    # Opset 10 has no coordinate attributes; onnxruntime ceils when shrinking an axis.
    x = _input((1, 3, 8, 8), seed=4)
    scales = [1.0, 1.0, 0.5, 0.75]
    inputs = {"x": x, "scales": np.array(scales, np.float32)}
    (result,) = run_node("Resize", inputs, attrs={"mode": "nearest"}, constant_inputs={"scales"})
    expected = resize_reference(
        x, (1, 3, 4, 6), [Fraction(s) for s in scales], "nearest", "asymmetric", "ceil"
    )
    _compare(result, expected, "nearest")


def test_axes_and_keep_aspect_ratio() -> None:  # opset 18
    x = _input((1, 2, 4, 6), seed=5)
    for policy, out_hw, scale in [
        ("not_larger", (6, 9), Fraction(3, 2)),
        ("not_smaller", (8, 12), Fraction(2)),
    ]:
        attrs = {"mode": "linear", "axes": [-2, 3], "keep_aspect_ratio_policy": policy}
        result = _run_sizes(x, (6, 12) if policy == "not_larger" else (8, 9), attrs)
        expected = resize_reference(
            x, (1, 2, *out_hw), [Fraction(1), Fraction(1), scale, scale], "linear", "half_pixel", ""
        )
        _compare(result, expected, "linear")


# ---- half storage (data_type fp16_fp32: -DSTORAGE_HALF) -----------------------------
# Input and output are half in device memory; the rows/cols tables stay float32
# (OpPlan.table_constants), so indices past 2048, which half cannot hold, still pick the
# right element. Nearest copies half-exact inputs: exact. Linear rounds once to half, at
# the output (roundings=1); the default scale (the largest output) covers the float32
# interpolation, whose absolute error (a few 2^-24 of the inputs' magnitude) would exceed
# a bound relative to outputs that interpolate to nearly 0.

HALF_CASES = [
    # (input shape, output sizes, coordinate_transformation_mode)
    ((2, 5, 4, 6), (2, 5, 7, 9), "half_pixel"),  # up
    ((2, 5, 7, 9), (2, 5, 3, 4), "align_corners"),  # down
    ((2, 6, 9), (2, 6, 13), "asymmetric"),  # rank 3
    ((1, 1, 2, 2500), (1, 1, 3, 3001), "half_pixel"),  # column indices past half's 2048
]


@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize(("shape", "sizes", "coord"), HALF_CASES, ids=str)
def test_resize_half_storage(shape: tuple[int, ...], sizes: tuple[int, ...], coord: str, mode: str) -> None:
    x = half_rounded(_input(shape, seed=3))
    inputs = {"x": x, "roi": None, "scales": None, "sizes": np.array(sizes, np.int64)}
    attrs = {"mode": mode, "coordinate_transformation_mode": coord}
    (result,) = run_node("Resize", inputs, attrs=attrs, constant_inputs={"sizes"}, data_type="fp16_fp32")
    scales = [Fraction(o, i) for o, i in zip(sizes, shape, strict=True)]
    expected = resize_reference(x, sizes, scales, mode, coord, "round_prefer_floor")
    assert result.shape == expected.shape
    if mode == "nearest":
        np.testing.assert_array_equal(result, expected.astype(np.float32))
    else:
        assert_close_half(result, expected, roundings=1)


# ---- cross-checks against ONNX's reference implementation and onnxruntime ---------

CROSS_CHECK_CASES = [
    # (opset, op, input shape, scales or None, sizes or None, attributes)
    (19, "Resize", (2, 5, 4, 6), None, (2, 5, 7, 9), {"mode": "linear"}),
    (
        19,
        "Resize",
        (1, 3, 5, 7),
        None,
        (1, 3, 3, 4),
        {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
    ),
    (
        19,
        "Resize",
        (1, 2, 5, 5),
        [1.0, 1.0, 1.5, 0.75],
        None,
        {"mode": "nearest", "nearest_mode": "round_prefer_ceil"},
    ),
    (
        19,
        "Resize",
        (1, 2, 3, 3),
        [1.0, 1.0, 2.0, 3.0],
        None,
        {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
    ),
    (
        19,
        "Resize",
        (1, 4, 6, 6),
        None,
        (1, 4, 1, 4),
        {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
    ),
    (
        19,
        "Resize",
        (1, 2, 4, 4),
        None,
        (1, 2, 7, 3),
        {"mode": "nearest", "coordinate_transformation_mode": "tf_half_pixel_for_nn"},
    ),
    (
        19,
        "Resize",
        (1, 3, 5, 6),
        [1.0, 1.0, 1.25, 0.75],
        None,
        {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"},
    ),
    (13, "Resize", (2, 6, 9), None, (2, 6, 5), {"mode": "linear"}),
    (10, "Resize", (1, 2, 4, 8), [1.0, 1.0, 2.0, 0.75], None, {"mode": "nearest"}),  # ceil when shrinking
    (10, "Resize", (1, 2, 4, 5), [1.0, 1.0, 2.0, 1.5], None, {"mode": "linear"}),
    (9, "Upsample", (1, 2, 3, 4), [1.0, 1.0, 2.0, 3.0], None, {"mode": "nearest"}),
]


def _onnx_model(opset: int, op: str, shape: tuple[int, ...], scales, sizes, attrs: dict):
    from onnx import TensorProto, helper, numpy_helper

    initializers = []
    if op == "Upsample" or opset == 10:
        names = ["x", "scales"]
    else:
        names = ["x", "", "scales" if scales else "", "sizes" if sizes else ""]
    if scales:
        initializers.append(numpy_helper.from_array(np.array(scales, np.float32), "scales"))
    if sizes:
        initializers.append(numpy_helper.from_array(np.array(sizes, np.int64), "sizes"))
    graph = helper.make_graph(
        [helper.make_node(op, names, ["y"], **attrs)],
        "resize",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    # onnx stamps its own newest IR version, which an older onnxruntime refuses; IR 8 holds
    # every opset used here.
    model.ir_version = 8
    return model


def _run_mace(op: str, opset: int, x: np.ndarray, scales, sizes, attrs: dict) -> np.ndarray:
    if op == "Upsample" or opset == 10:
        inputs = {"x": x, "scales": np.array(scales, np.float32)}
    else:
        inputs = {
            "x": x,
            "roi": None,
            "scales": None if scales is None else np.array(scales, np.float32),
            "sizes": None if sizes is None else np.array(sizes, np.int64),
        }
    (result,) = run_node(op, inputs, attrs=attrs, constant_inputs={"scales", "sizes"})
    return result


@pytest.mark.parametrize(("opset", "op", "shape", "scales", "sizes", "attrs"), CROSS_CHECK_CASES, ids=str)
def test_matches_onnxruntime(opset, op, shape, scales, sizes, attrs) -> None:
    import onnxruntime as ort  # imported here: its import is slow and noisy

    x = _input(shape, seed=6)
    model = _onnx_model(opset, op, shape, scales, sizes, attrs)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {"x": x})
    _compare(_run_mace(op, opset, x, scales, sizes, attrs), expected, attrs["mode"])


@pytest.mark.parametrize(
    ("opset", "op", "shape", "scales", "sizes", "attrs"),
    # The reference has no opset-10 semantics and no tf_half_pixel_for_nn.
    [c for c in CROSS_CHECK_CASES if c[0] >= 11 and "tf_half_pixel_for_nn" not in c[5].values()],
    ids=str,
)
def test_matches_onnx_reference(opset, op, shape, scales, sizes, attrs) -> None:
    from onnx.reference import ReferenceEvaluator

    x = _input(shape, seed=7)
    (expected,) = ReferenceEvaluator(_onnx_model(opset, op, shape, scales, sizes, attrs)).run(None, {"x": x})
    _compare(_run_mace(op, opset, x, scales, sizes, attrs), expected, attrs["mode"])


# ---- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "scales", "message"),
    [
        ({"mode": "cubic"}, [1.0, 1.0, 2.0, 2.0], r"mode 'cubic' is not supported"),
        (
            {"coordinate_transformation_mode": "tf_crop_and_resize"},
            [1.0, 1.0, 2.0, 2.0],
            r"tf_crop_and_resize",
        ),
        ({"nearest_mode": "round_half_even"}, [1.0, 1.0, 2.0, 2.0], r"nearest_mode 'round_half_even'"),
        ({}, [1.0, 2.0, 1.0, 1.0], r"only the spatial axes can be resized; axis 1"),
        ({"mode": "linear", "antialias": 1}, [1.0, 1.0, 0.5, 0.5], r"antialiased"),
        ({}, [1.0, 2.0], r"one entry per resized axis"),
        ({"roi_mode": "x"}, [1.0, 1.0, 2.0, 2.0], r"attribute\(s\) 'roi_mode' not supported"),
    ],
)
def test_resize_errors(attrs: dict, scales: list[float], message: str) -> None:
    with pytest.raises(OpError, match=r"node 'node' \(Resize\).*" + message):
        _run_scales(_input((1, 2, 4, 4)), scales, attrs)


def test_resize_needs_constant_scales() -> None:
    x = _input((1, 2, 4, 4))
    with pytest.raises(OpError, match=r"must be a graph constant"):
        run_node("Resize", {"x": x, "roi": None, "scales": np.ones(4, np.float32)})
    with pytest.raises(OpError, match=r"exactly one of scales and sizes"):
        run_node("Resize", {"x": x, "roi": None, "scales": None, "sizes": None})


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
