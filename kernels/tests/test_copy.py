"""kernels/copy.cl: Concat, Split, Slice, Transpose, Reshape, Flatten, Squeeze, Unsqueeze,
Dropout, DepthToSpace, SpaceToDepth and the internal ChannelGather against numpy references written from the ONNX spec."""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.model.graph import Graph, Node, TensorInfo
from mace_cl.planning.kernel_sources import kernels_dir
from mace_cl.planning.ops.base import OpError
from mace_cl.planning.planner import plan_graph
from mace_cl.testing import half_rounded, plan_kind_under_test, run_node

# Pure data movement: every output element is a copy of one input element, so results
# must be bit-identical (assert_array_equal, no tolerance).

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def _data(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    # Distinct values, so a wrong index cannot go unnoticed by coincidence.
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))) + 1).astype(np.float32).reshape(shape) * 0.5


def _ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


# ---- Concat -------------------------------------------------------------------------

CONCAT_CASES = [
    # (input shapes, axis)
    ([(2, 3, 4, 5), (2, 6, 4, 5)], 1),  # channel axis, first input ends mid-block
    ([(1, 1, 3, 3), (1, 5, 3, 3), (1, 2, 3, 3), (1, 4, 3, 3)], 1),  # C=1, shared blocks, aligned tail
    ([(2, 4, 2, 3), (2, 8, 2, 3)], -3),  # aligned channel concat (vector path), negative axis
    ([(1, 7, 1, 1), (1, 9, 1, 1)], 1),  # classifier-style 1x1 spatial
    ([(2, 5, 3, 4), (1, 5, 3, 4)], 0),  # batch
    ([(2, 5, 3, 4), (2, 5, 2, 4)], 2),  # height
    ([(2, 5, 3, 4), (2, 5, 3, 1), (2, 5, 3, 2)], -1),  # width
    ([(3, 2), (3, 7)], 1),  # rank 2: channels
    ([(3, 5), (2, 5)], 0),
    ([(2, 3, 7), (2, 3, 2)], 2),  # rank 3: L is the stored W
    ([(2, 3, 7), (2, 1, 7)], 1),
    ([(3,), (6,), (1,)], 0),  # rank 1 is the channel axis
]


@pytest.mark.parametrize(("shapes", "axis"), CONCAT_CASES, ids=str)
def test_concat(shapes: list[tuple[int, ...]], axis: int) -> None:
    arrays = {f"x{i}": _data(shape, seed=i) for i, shape in enumerate(shapes)}
    (result,) = run_node("Concat", arrays, attrs={"axis": axis})
    np.testing.assert_array_equal(result, np.concatenate(list(arrays.values()), axis=axis))


def test_concat_constant_input() -> None:
    x, w = _data((2, 3, 2, 2)), _data((2, 2, 2, 2), seed=5)
    (result,) = run_node("Concat", {"x": x, "w": w}, attrs={"axis": 1}, constant_inputs={"w"})
    np.testing.assert_array_equal(result, np.concatenate([x, w], axis=1))


def test_concat_rejects_mismatched_shapes() -> None:
    with pytest.raises(OpError, match=r"node 'node' \(Concat\).*differ outside axis 1"):
        run_node("Concat", {"a": _data((2, 3, 4)), "b": _data((2, 3, 5))}, attrs={"axis": 1})


# ---- Split --------------------------------------------------------------------------

SPLIT_CASES = [
    # (shape, axis, split sizes or None for equal parts)
    ((2, 7, 3, 5), 1, [3, 4]),  # channel split, second part starts mid-block
    ((1, 9, 2, 2), 1, [1, 2, 4, 2]),
    ((2, 8, 3, 3), 1, None),  # equal aligned parts
    ((4, 3, 2, 5), 0, [1, 3]),
    ((2, 3, 6, 5), 2, None),
    ((2, 3, 4, 5), -1, [2, 1, 2]),
    ((3, 10), 1, [5, 5]),
    ((2, 6, 9), 2, [4, 5]),
]


@pytest.mark.parametrize(("shape", "axis", "sizes"), SPLIT_CASES, ids=str)
def test_split(shape: tuple[int, ...], axis: int, sizes: list[int] | None) -> None:
    x = _data(shape)
    count = len(sizes) if sizes else 3 if shape[axis] % 3 == 0 else 2
    attrs = {"axis": axis} | ({"split": sizes} if sizes else {})
    results = run_node("Split", {"x": x}, attrs=attrs, num_outputs=count)
    bounds = np.cumsum(sizes)[:-1] if sizes else count
    expected = np.split(x, bounds, axis=axis)
    assert [r.shape for r in results] == [e.shape for e in expected]
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_split_sizes_as_input() -> None:  # opset >= 13
    x = _data((2, 6, 3, 3))
    results = run_node(
        "Split", {"x": x, "split": _ints(1, 5)}, attrs={"axis": 1}, constant_inputs={"split"}, num_outputs=2
    )
    np.testing.assert_array_equal(results[0], x[:, :1])
    np.testing.assert_array_equal(results[1], x[:, 1:])


def test_split_num_outputs_uneven() -> None:  # opset 18: ceil-sized parts, last one shorter
    x = _data((2, 7, 3, 2))
    results = run_node("Split", {"x": x}, attrs={"axis": 1, "num_outputs": 3}, num_outputs=3)
    for got, (lo, hi) in zip(results, [(0, 3), (3, 6), (6, 7)], strict=True):
        np.testing.assert_array_equal(got, x[:, lo:hi])


def test_split_rejects_bad_sizes() -> None:
    with pytest.raises(OpError, match=r"node 'node' \(Split\).*summing to the axis length 7"):
        run_node("Split", {"x": _data((1, 7, 2, 2))}, attrs={"axis": 1, "split": [3, 3]}, num_outputs=2)
    with pytest.raises(OpError, match=r"cannot be split into 2 equal parts"):
        run_node("Split", {"x": _data((1, 7, 2, 2))}, attrs={"axis": 1}, num_outputs=2)


# ---- Slice --------------------------------------------------------------------------

SLICE_CASES = [
    # (shape, starts, ends, axes, steps, numpy index); numpy's slice semantics agree with
    # ONNX's clamping for these values, ends of INT64_MIN with negative steps excepted,
    # which mean "through index 0" (None in numpy).
    ((2, 7, 3, 5), [1], [6], [1], None, np.s_[:, 1:6]),  # channels from mid-block
    ((2, 9, 3, 5), [4], [9], [1], None, np.s_[:, 4:9]),  # aligned channel start
    ((2, 7, 3, 5), [-1, 8], [INT64_MIN, 0], [1, 3], [-1, -2], np.s_[:, ::-1, :, 8:0:-2]),
    ((2, 7, 3, 5), [0, 1, -2], [1, 3, 100], [0, 2, -1], [1, 1, 1], np.s_[0:1, :, 1:3, -2:]),
    ((3, 6, 4, 4), [1, 5, 0], [3, 0, 4], [0, 1, 2], [1, -2, 3], np.s_[1:3, 5:0:-2, 0:4:3]),
    ((1, 1, 5, 5), [-3], [INT64_MAX], [-2], [2], np.s_[:, :, -3::2]),
    ((4, 10), [2, -7], [4, -1], [0, 1], [1, 2], np.s_[2:4, -7:-1:2]),
    ((2, 6, 9), [8], [INT64_MIN], [2], [-3], np.s_[:, :, 8::-3]),
    ((11,), [-2], [-12], [0], [-1], np.s_[-2:-12:-1]),
]


@pytest.mark.parametrize(("shape", "starts", "ends", "axes", "steps", "index"), SLICE_CASES, ids=str)
def test_slice(shape, starts, ends, axes, steps, index) -> None:
    x = _data(shape)
    inputs = {"x": x, "starts": _ints(*starts), "ends": _ints(*ends), "axes": _ints(*axes)}
    if steps is not None:
        inputs["steps"] = _ints(*steps)
    (result,) = run_node("Slice", inputs, constant_inputs=set(inputs) - {"x"})
    np.testing.assert_array_equal(result, x[index])


def test_slice_opset1_attributes() -> None:
    x = _data((2, 5, 4, 3))
    (result,) = run_node("Slice", {"x": x}, attrs={"starts": [1, -3], "ends": [5, -1], "axes": [1, 2]})
    np.testing.assert_array_equal(result, x[:, 1:5, -3:-1])


def test_slice_rejects_runtime_starts_and_zero_step() -> None:
    x = _data((2, 5))
    with pytest.raises(OpError, match=r"node 'node' \(Slice\).*must be a graph constant"):
        run_node(
            "Slice", {"x": x, "starts": np.zeros(1, np.float32), "ends": _ints(1)}, constant_inputs={"ends"}
        )
    with pytest.raises(OpError, match=r"steps must not be 0"):
        inputs = {"x": x, "s": _ints(0), "e": _ints(2), "a": _ints(1), "t": _ints(0)}
        run_node("Slice", inputs, constant_inputs={"s", "e", "a", "t"})


# ---- Transpose ----------------------------------------------------------------------

TRANSPOSE_CASES = (
    [((2, 5, 3, 7), perm) for perm in itertools.permutations(range(4))]
    + [((2, 6, 9), perm) for perm in itertools.permutations(range(3))]
    + [((3, 10), (1, 0)), ((1, 1, 4, 1), (0, 2, 3, 1)), ((1, 9, 1, 1), (0, 2, 3, 1))]
)


@pytest.mark.parametrize(("shape", "perm"), TRANSPOSE_CASES, ids=str)
def test_transpose(shape: tuple[int, ...], perm: tuple[int, ...]) -> None:
    x = _data(shape)
    (result,) = run_node("Transpose", {"x": x}, attrs={"perm": list(perm)})
    np.testing.assert_array_equal(result, np.transpose(x, perm))


def test_transpose_default_reverses_axes() -> None:
    x = _data((2, 3, 5))
    (result,) = run_node("Transpose", {"x": x})
    np.testing.assert_array_equal(result, x.T)


def test_transpose_rejects_bad_perm() -> None:
    with pytest.raises(OpError, match=r"node 'node' \(Transpose\).*not a permutation"):
        run_node("Transpose", {"x": _data((2, 3, 5))}, attrs={"perm": [0, 0, 1]})


# ---- Reshape family ----------------------------------------------------------------

RESHAPE_CASES = [
    # (input shape, requested shape, numpy result shape)
    ((2, 5, 3, 7), [2, -1], (2, 105)),
    ((2, 5, 3, 7), [0, 0, -1], (2, 5, 21)),  # 0 copies the input dimension
    ((2, 5, 3, 7), [-1], (210,)),
    ((2, 5, 3, 7), [7, 5, 0, 2], (7, 5, 3, 2)),
    ((2, 6), [2, 6, 1, 1], (2, 6, 1, 1)),  # same stored view: the input's buffer, no copy
    ((1, 12, 1, 1), [1, 3, 2, 2], (1, 3, 2, 2)),
    ((3, 1, 4, 5), [3, 20, 1], (3, 20, 1)),
    ((4, 9), [6, 6], (6, 6)),
    ((2, 6, 9), [2, 3, 2, 9], (2, 3, 2, 9)),
]


@pytest.mark.parametrize(("shape", "requested", "expected_shape"), RESHAPE_CASES, ids=str)
def test_reshape(shape: tuple[int, ...], requested: list[int], expected_shape: tuple[int, ...]) -> None:
    x = _data(shape)
    (result,) = run_node("Reshape", {"x": x, "shape": _ints(*requested)}, constant_inputs={"shape"})
    assert result.shape == expected_shape
    np.testing.assert_array_equal(result, x.reshape(expected_shape))


def test_reshape_errors() -> None:
    x = _data((2, 6))
    with pytest.raises(OpError, match=r"node 'node' \(Reshape\).*empty tensor"):
        run_node("Reshape", {"x": x, "s": _ints(0, 12)}, attrs={"allowzero": 1}, constant_inputs={"s"})
    with pytest.raises(OpError, match=r"at most one -1"):
        run_node("Reshape", {"x": x, "s": _ints(-1, -1)}, constant_inputs={"s"})
    with pytest.raises(OpError, match=r"cannot reshape \[2, 6\]"):
        run_node("Reshape", {"x": x, "s": _ints(5, -1)}, constant_inputs={"s"})
    with pytest.raises(OpError, match=r"must be a graph constant"):
        run_node("Reshape", {"x": x, "s": np.ones((2,), np.float32)})


@pytest.mark.parametrize("axis", [0, 1, 2, -1, 4])
def test_flatten(axis: int) -> None:
    x = _data((2, 5, 3, 7))
    (result,) = run_node("Flatten", {"x": x}, attrs={"axis": axis})
    split = axis % 4 if axis != 4 else 4
    np.testing.assert_array_equal(result, x.reshape(int(np.prod(x.shape[:split])), -1))


@pytest.mark.parametrize(
    ("shape", "axes", "as_input"),
    [
        ((1, 5, 1, 3), [0, 2], False),
        ((2, 1, 1, 3), [-3], True),
        ((3, 1, 6), None, False),
        ((1, 7, 1, 1), [2, 3], True),
    ],
    ids=str,
)
def test_squeeze(shape: tuple[int, ...], axes: list[int] | None, as_input: bool) -> None:
    x = _data(shape)
    inputs, attrs = {"x": x}, {}
    if as_input:
        inputs["axes"] = _ints(*axes)
    elif axes is not None:
        attrs["axes"] = axes
    (result,) = run_node("Squeeze", inputs, attrs=attrs, constant_inputs={"axes"})
    expected = np.squeeze(x, axis=None if axes is None else tuple(axes))
    assert result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)


def test_squeeze_rejects_axis_of_size_above_one() -> None:
    with pytest.raises(OpError, match=r"node 'node' \(Squeeze\).*cannot be squeezed"):
        run_node("Squeeze", {"x": _data((1, 3, 1))}, attrs={"axes": [1]})


@pytest.mark.parametrize(
    ("shape", "axes", "as_input"),
    [((5, 3), [0], False), ((5, 3), [1, -1], True), ((7,), [0, 2, 3], False), ((2, 6, 9), [2], True)],
    ids=str,
)
def test_unsqueeze(shape: tuple[int, ...], axes: list[int], as_input: bool) -> None:
    x = _data(shape)
    inputs = {"x": x, "axes": _ints(*axes)} if as_input else {"x": x}
    attrs = {} if as_input else {"axes": axes}
    (result,) = run_node("Unsqueeze", inputs, attrs=attrs, constant_inputs={"axes"})
    expected = np.expand_dims(x, tuple(axes))
    assert result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)


def test_dropout_is_identity_at_inference() -> None:
    x = _data((2, 5, 3, 3))
    (result,) = run_node("Dropout", {"x": x, "ratio": np.array(0.5, np.float32)}, constant_inputs={"ratio"})
    np.testing.assert_array_equal(result, x)


def test_dropout_rejects_mask_and_training() -> None:
    x = _data((2, 5))
    with pytest.raises(OpError, match=r"node 'node' \(Dropout\).*mask output"):
        run_node("Dropout", {"x": x}, num_outputs=2)
    with pytest.raises(OpError, match=r"training_mode is true"):
        inputs = {"x": x, "ratio": np.array(0.5, np.float32), "training": np.array(True)}
        run_node("Dropout", inputs, constant_inputs={"ratio", "training"})


# ---- DepthToSpace / SpaceToDepth ----------------------------------------------------


def _depth_to_space(x: np.ndarray, block: int, mode: str) -> np.ndarray:
    # The reshape-transpose-reshape definitions from the ONNX operator spec.
    n, c, h, w = x.shape
    if mode == "DCR":
        tmp = x.reshape(n, block, block, c // block**2, h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        tmp = x.reshape(n, c // block**2, block, block, h, w).transpose(0, 1, 4, 2, 5, 3)
    return tmp.reshape(n, c // block**2, h * block, w * block)


def _space_to_depth(x: np.ndarray, block: int, mode: str) -> np.ndarray:
    # DCR: the spec's reshape-transpose-reshape (the only order before onnx 1.23).
    # CRD: the inverse of DepthToSpace CRD, i.e. that op's steps undone in reverse.
    n, c, h, w = x.shape
    tmp = x.reshape(n, c, h // block, block, w // block, block)
    tmp = tmp.transpose(0, 3, 5, 1, 2, 4) if mode == "DCR" else tmp.transpose(0, 1, 3, 5, 2, 4)
    return tmp.reshape(n, c * block**2, h // block, w // block)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (1, 5, 6, 3)], ids=str)
def test_space_to_depth_reference_inverts_depth_to_space(shape: tuple[int, ...], mode: str) -> None:
    # Checks the reference itself (no device): per the spec the two ops are inverses.
    x, block = _data(shape), 2 if shape[2] % 2 == 0 and shape[3] % 2 == 0 else 3
    np.testing.assert_array_equal(_depth_to_space(_space_to_depth(x, block, mode), block, mode), x)


@pytest.mark.parametrize("mode", ["DCR", "CRD", None])
@pytest.mark.parametrize(
    ("shape", "block"), [((2, 3, 4, 6), 2), ((1, 1, 2, 2), 2), ((1, 5, 6, 3), 3), ((1, 2, 4, 6), 2)], ids=str
)
def test_space_to_depth(shape: tuple[int, ...], block: int, mode: str | None) -> None:
    x = _data(shape)
    attrs = {"blocksize": block} if mode is None else {"blocksize": block, "mode": mode}
    (result,) = run_node("SpaceToDepth", {"x": x}, attrs=attrs)
    np.testing.assert_array_equal(result, _space_to_depth(x, block, mode or "DCR"))


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_space_to_depth_round_trip(mode: str) -> None:
    # Device against device: DepthToSpace(SpaceToDepth(x)) == x in either mode.
    x = _data((2, 3, 6, 4))
    (packed,) = run_node("SpaceToDepth", {"x": x}, attrs={"blocksize": 2, "mode": mode})
    (result,) = run_node("DepthToSpace", {"x": packed}, attrs={"blocksize": 2, "mode": mode})
    np.testing.assert_array_equal(result, x)


@pytest.mark.parametrize("op", ["SpaceToDepth", "DepthToSpace"])
def test_space_depth_reject_unknown_mode_and_attributes(op: str) -> None:
    x = _data((1, 4, 2, 2))
    with pytest.raises(OpError, match=rf"\({op}\).*mode 'NHWC' is not one of DCR, CRD"):
        run_node(op, {"x": x}, attrs={"blocksize": 2, "mode": "NHWC"})
    with pytest.raises(OpError, match=rf"\({op}\).*attribute\(s\) 'layout' not supported"):
        run_node(op, {"x": x}, attrs={"blocksize": 2, "layout": "NCHW"})


def test_depth_to_space_rejects_indivisible_channels() -> None:
    with pytest.raises(OpError, match=r"node 'node' \(DepthToSpace\).*multiple of blocksize"):
        run_node("DepthToSpace", {"x": _data((1, 6, 2, 2))}, attrs={"blocksize": 2})


# ---- ChannelGather (internal: the converter's channel_gather pass) ------------------


def _gather_reference(arrays: list[np.ndarray], channels: list[int]) -> np.ndarray:
    return np.concatenate(arrays, axis=1)[:, channels]


GATHER_CASES = [
    # (input channel counts, output channels as indices into the inputs' channels in order)
    ([6], [3, 0, 4, 1, 5, 2]),  # one input: a shuffle
    ([3, 5], [4, 0, 7, 1, 6, 2, 5]),  # two inputs mid-block, 7 outputs (a padding lane)
    ([1, 2, 3, 4, 5, 6, 7, 8], list(range(35, -1, -1))),  # every input slot, reversed
    ([4, 4], [0, 0, 5, 5]),  # a channel read twice
]


@pytest.mark.parametrize(("counts", "channels"), GATHER_CASES, ids=str)
def test_channel_gather(counts: list[int], channels: list[int]) -> None:
    arrays = [_data((2, c, 3, 5), seed=i) for i, c in enumerate(counts)]
    inputs = {f"x{i}": a for i, a in enumerate(arrays)}
    (result,) = run_node("ChannelGather", inputs, attrs={"channels": channels})
    np.testing.assert_array_equal(result, _gather_reference(arrays, channels))


def test_channel_gather_constant_input() -> None:
    x, w = _data((1, 3, 2, 2)), _data((1, 2, 2, 2), seed=5)
    (result,) = run_node(
        "ChannelGather", {"x": x, "w": w}, attrs={"channels": [4, 0, 3]}, constant_inputs={"w"}
    )
    np.testing.assert_array_equal(result, _gather_reference([x, w], [4, 0, 3]))


@pytest.mark.parametrize(
    ("inputs", "channels", "message"),
    [
        ({"a": _data((1, 2, 3, 3)), "b": _data((1, 2, 3, 4))}, [0], "same batch and pixels"),
        ({"a": _data((1, 2, 3, 3))}, [2], "channel 2 is outside the inputs' 2 channels"),
        ({f"x{i}": _data((1, 1, 2, 2)) for i in range(9)}, [0], "takes 1 to 8 inputs"),
    ],
)
def test_channel_gather_rejects(inputs: dict, channels: list[int], message: str) -> None:
    with pytest.raises(OpError, match=re.escape(message)):
        run_node("ChannelGather", inputs, attrs={"channels": channels})


# ---- half storage (data_type fp16_fp32: -DSTORAGE_HALF) -----------------------------
# Tensors and constants are half in device memory; the kernels widen each value to float
# and store it back rounded to nearest even, which returns a half value unchanged. Moving
# half-exact inputs must therefore be exact, as in float32.


def _half_data(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    # _data's distinct multiples of 0.5, with alternating signs; half holds them exactly
    # up to 2048 elements (11 significant bits).
    x = _data(shape, seed)
    x = x * np.where(np.arange(x.size) % 2, -1.0, 1.0).astype(np.float32).reshape(shape)
    assert np.array_equal(half_rounded(x), x)
    return x


_X = _half_data((2, 5, 3, 7))
_C3, _C6 = _half_data((2, 3, 4, 5), seed=1), _half_data((2, 6, 4, 5), seed=2)
_W = _half_data((2, 2, 4, 5), seed=3)
_S2D = _half_data((2, 3, 4, 6), seed=4)
_D2S = _half_data((1, 12, 2, 3), seed=5)
# A channel shuffle of 6 channels in 2 groups as the converter writes it, a 1x1 Conv with a
# permutation matrix (output a*2 + b is input b*3 + a), which runs as permute_channels.
_SHUFFLE_SOURCE = np.arange(6).reshape(2, 3).T.reshape(-1)
_SHUFFLE_WEIGHTS = np.eye(6, dtype=np.float32)[_SHUFFLE_SOURCE].reshape(6, 6, 1, 1)

HalfCase = tuple[str, dict, dict, set, list[np.ndarray], set]
# (op type, inputs, attributes, constant inputs, numpy outputs, kernels of copy.cl launched)
HALF_CASES: dict[str, HalfCase] = {
    # Channel concat, the second input from mid-block: copy_box's LOAD4 path for the first
    # launch, the lane-by-lane path (re-reading the output's lanes below c0) for the second.
    "concat_channels": (
        "Concat",
        {"a": _C3, "b": _C6},
        {"axis": 1},
        set(),
        [np.concatenate([_C3, _C6], axis=1)],
        {"copy_box"},
    ),
    # A constant input: uploaded as half.
    "concat_constant": (
        "Concat",
        {"a": _C3, "w": _W},
        {"axis": 1},
        {"w"},
        [np.concatenate([_C3, _W], axis=1)],
        {"copy_box"},
    ),
    "split_channels": (
        "Split",
        {"x": _X},
        {"axis": 1, "split": [3, 2]},
        set(),
        np.split(_X, [3], axis=1),
        {"copy_box"},
    ),
    "slice_negative_steps": (
        "Slice",
        {
            "x": _X,
            "starts": _ints(-1, 6),
            "ends": _ints(INT64_MIN, 0),
            "axes": _ints(1, 3),
            "steps": _ints(-1, -2),
        },
        {},
        {"starts", "ends", "axes", "steps"},
        [_X[:, ::-1, :, 6:0:-2]],
        {"copy_box"},
    ),
    "transpose": (
        "Transpose",
        {"x": _X},
        {"perm": [2, 0, 3, 1]},
        set(),
        [np.transpose(_X, (2, 0, 3, 1))],
        {"copy_box"},
    ),
    "reshape": (
        "Reshape",
        {"x": _X, "shape": _ints(7, 5, 0, 2)},
        {},
        {"shape"},
        [_X.reshape(7, 5, 3, 2)],
        {"reshape_copy"},
    ),
    "reshape_same_stored_view": (
        "Reshape",
        {"x": _X.reshape(2, 105), "shape": _ints(2, 105, 1, 1)},
        {},
        {"shape"},
        [_X.reshape(2, 105, 1, 1)],
        set(),  # the output is the input's buffer: no launch
    ),
    "flatten": ("Flatten", {"x": _X}, {"axis": 2}, set(), [_X.reshape(10, 21)], {"reshape_copy"}),
    **{
        f"space_to_depth_{mode}": (
            "SpaceToDepth",
            {"x": _S2D},
            {"blocksize": 2, "mode": mode},
            set(),
            [_space_to_depth(_S2D, 2, mode)],
            {"space_to_depth"},
        )
        for mode in ("DCR", "CRD")
    },
    **{
        f"depth_to_space_{mode}": (
            "DepthToSpace",
            {"x": _D2S},
            {"blocksize": 2, "mode": mode},
            set(),
            [_depth_to_space(_D2S, 2, mode)],
            {"depth_to_space"},
        )
        for mode in ("DCR", "CRD")
    },
    "channel_gather": (
        "ChannelGather",
        {"a": _C3, "b": _C6},
        {"channels": [8, 0, 3, 1, 7, 2, 4]},
        set(),
        [np.concatenate([_C3, _C6], axis=1)[:, [8, 0, 3, 1, 7, 2, 4]]],
        {"gather_channels"},
    ),
    "channel_shuffle_conv": (
        "Conv",
        {"x": _D2S[:, :6], "w": _SHUFFLE_WEIGHTS},
        {},
        {"w"},
        [_D2S[:, _SHUFFLE_SOURCE]],
        {"permute_channels"},
    ),
}


def _half_plan_kernels(op_type: str, inputs: dict, attrs: dict, constants: set, num_outputs: int) -> set[str]:
    """The kernels the half-storage plan of the node launches (each from a -DSTORAGE_HALF build)."""
    graph_inputs = [
        TensorInfo(name, np.shape(value)) for name, value in inputs.items() if name not in constants
    ]
    node = Node(op_type, "node", list(inputs), [f"y{i}" for i in range(num_outputs)], attrs)
    graph = Graph(graph_inputs, [], [node], {name: inputs[name] for name in constants}, data_type="fp16_fp32")
    (plan,) = plan_graph(graph, device_kind=plan_kind_under_test() or "cpu").node_plans
    assert all("-DSTORAGE_HALF" in launch.program.options for launch in plan.launches)
    return {launch.kernel for launch in plan.launches}


@pytest.mark.parametrize("case", HALF_CASES)
def test_half_storage(case: str) -> None:
    op_type, inputs, attrs, constants, expected, kernels = HALF_CASES[case]
    assert _half_plan_kernels(op_type, inputs, attrs, constants, len(expected)) == kernels
    results = run_node(
        op_type,
        inputs,
        attrs=attrs,
        constant_inputs=constants,
        num_outputs=len(expected),
        data_type="fp16_fp32",
    )
    for got, want in zip(results, expected, strict=True):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_half_cases_launch_every_copy_kernel() -> None:
    source = (kernels_dir() / "copy.cl").read_text()
    defined = set(re.findall(r"__kernel\s+void\s+(\w+)", source))
    assert set().union(*(case[-1] for case in HALF_CASES.values())) == defined


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
