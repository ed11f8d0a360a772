"""kernels/reduce.cl (ops/reduce.py): Reduce* over any axes against numpy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.planning.ops import reduce as reduce_ops
from mace_cl.planning.ops.base import OpError
from mace_cl.testing import assert_close_half, half_rounded, run_node

# Sums of up to a few hundred float32 values accumulated in a different order than
# numpy's float64 reference: relative error ~ count * 6e-8, well under 1e-5 here.
# Max/Min pick an element: exact.
SUM_TOL = {"rtol": 1e-5, "atol": 1e-5}

REFERENCE = {
    "ReduceMean": lambda x, axes, keep: np.mean(x, axis=axes, keepdims=keep),
    "ReduceSum": lambda x, axes, keep: np.sum(x, axis=axes, keepdims=keep),
    "ReduceMax": lambda x, axes, keep: np.max(x, axis=axes, keepdims=keep),
    "ReduceMin": lambda x, axes, keep: np.min(x, axis=axes, keepdims=keep),
    "ReduceProd": lambda x, axes, keep: np.prod(x, axis=axes, keepdims=keep),
    "ReduceSumSquare": lambda x, axes, keep: np.sum(x * x, axis=axes, keepdims=keep),
    "ReduceL1": lambda x, axes, keep: np.sum(np.abs(x), axis=axes, keepdims=keep),
    "ReduceL2": lambda x, axes, keep: np.sqrt(np.sum(x * x, axis=axes, keepdims=keep)),
}
EXACT = {"ReduceMax", "ReduceMin"}

AXES_CASES = [
    # (shape, axes): global pooling, channels (C not a multiple of 4), mixed, all, ranks 2/3
    ((2, 9, 7, 7), [2, 3]),
    ((1, 5, 1, 1), [-2, -1]),
    ((2, 5, 3, 4), [1]),
    ((2, 1, 3, 4), [1]),
    ((2, 6, 3, 5), [1, 3]),
    ((3, 5, 2, 3), [0]),
    ((2, 7, 3, 5), [0, 1, 2, 3]),
    ((4, 10), [1]),
    ((4, 10), [0]),
    ((2, 6, 9), [-1]),
    ((2, 6, 9), [0, 1]),
    ((11,), [0]),
]


def _input(shape: tuple[int, ...], op_type: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if op_type == "ReduceMax":
        return rng.uniform(-5.0, -1.0, shape).astype(np.float32)  # a zero padding lane would win
    if op_type == "ReduceMin":
        return rng.uniform(1.0, 5.0, shape).astype(np.float32)  # a zero padding lane would win
    if op_type == "ReduceProd":
        return rng.uniform(0.9, 1.1, shape).astype(
            np.float32
        )  # keeps products O(1); a zero lane would kill it
    return rng.uniform(-4.0, 4.0, shape).astype(np.float32)


def _check(op_type: str, result: np.ndarray, expected: np.ndarray) -> None:
    assert result.shape == expected.shape
    if op_type in EXACT:
        np.testing.assert_array_equal(result, expected)
    else:
        np.testing.assert_allclose(result, expected, **SUM_TOL)


@pytest.mark.parametrize("keepdims", [1, 0])
@pytest.mark.parametrize(("shape", "axes"), AXES_CASES, ids=str)
@pytest.mark.parametrize("op_type", ["ReduceMean", "ReduceMax"])
def test_reduce_axes(op_type: str, shape: tuple[int, ...], axes: list[int], keepdims: int) -> None:
    x = _input(shape, op_type, seed=len(shape) + len(axes))
    (result,) = run_node(op_type, {"x": x}, attrs={"axes": axes, "keepdims": keepdims})
    expected = REFERENCE[op_type](x.astype(np.float64), tuple(axes), bool(keepdims))
    _check(op_type, result, expected)


@pytest.mark.parametrize("op_type", sorted(REFERENCE))
@pytest.mark.parametrize(
    ("shape", "axes"), [((2, 6, 3, 5), [1, 3]), ((2, 5, 4, 4), [2, 3]), ((3, 7), [1])], ids=str
)
def test_every_reduction(op_type: str, shape: tuple[int, ...], axes: list[int]) -> None:
    x = _input(shape, op_type, seed=3)
    (result,) = run_node(op_type, {"x": x}, attrs={"axes": axes, "keepdims": 0})
    _check(op_type, result, REFERENCE[op_type](x.astype(np.float64), tuple(axes), False))


def test_axes_as_input() -> None:  # ReduceSum from opset 13, the others from 18
    x = _input((2, 5, 3, 4), "ReduceMean", seed=4)
    inputs = {"x": x, "axes": np.array([1, -1], np.int64)}
    (result,) = run_node("ReduceMean", inputs, attrs={"keepdims": 0}, constant_inputs={"axes"})
    _check("ReduceMean", result, np.mean(x.astype(np.float64), axis=(1, 3)))


def test_no_axes_reduces_everything() -> None:
    x = _input((2, 5, 3, 4), "ReduceSum", seed=5)
    (result,) = run_node("ReduceSum", {"x": x})
    _check("ReduceSum", result, np.sum(x.astype(np.float64), keepdims=True))


def test_noop_with_empty_axes_copies() -> None:
    x = _input((2, 5, 3, 4), "ReduceSum", seed=6)
    inputs = {"x": x, "axes": np.zeros((0,), np.int64)}
    (result,) = run_node("ReduceSum", inputs, attrs={"noop_with_empty_axes": 1}, constant_inputs={"axes"})
    np.testing.assert_array_equal(result, x)


def test_large_global_mean() -> None:
    # A classifier head: 56x56 spatial, 3136 terms per output; float32 accumulation error
    # grows with the count, so the tolerance is looser here (count * eps ~ 4e-4 relative
    # worst case; values are positive, so no cancellation).
    x = np.random.default_rng(7).uniform(0.0, 2.0, (1, 19, 56, 56)).astype(np.float32)
    (result,) = run_node("ReduceMean", {"x": x}, attrs={"axes": [2, 3], "keepdims": 1})
    np.testing.assert_allclose(result, x.astype(np.float64).mean(axis=(2, 3), keepdims=True), rtol=1e-4)


@pytest.mark.parametrize("lanes", [reduce_ops.GPU_REDUCE_LANES, reduce_ops.GPU_REDUCE_LANES_LARGE])
@pytest.mark.parametrize("op_type", sorted(REFERENCE))
@pytest.mark.parametrize(
    ("shape", "axes"), [((2, 19, 9, 8), [2, 3]), ((1, 37, 5, 7), None), ((3, 10, 4, 5), [0, 1, 3])], ids=str
)
def test_gpu_work_group_reduction(
    op_type: str, shape: tuple[int, ...], axes: list[int] | None, lanes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reduce_wg, as GPU plans choose it for long reductions, with either work-group size.
    monkeypatch.setattr(reduce_ops, "GPU_MIN_FOLDED", 1)
    monkeypatch.setattr(
        reduce_ops, "GPU_REDUCE_LARGE", 1 if lanes == reduce_ops.GPU_REDUCE_LANES_LARGE else 10**9
    )
    x = _input(shape, op_type, seed=11)
    attrs = {"keepdims": 1} if axes is None else {"axes": axes, "keepdims": 1}
    (result,) = run_node(op_type, {"x": x}, attrs=attrs, plan_kind="gpu")
    expected = REFERENCE[op_type](x.astype(np.float64), None if axes is None else tuple(axes), True)
    _check(op_type, result, expected)


@pytest.mark.parametrize("op_type", sorted(REFERENCE))
@pytest.mark.parametrize(("shape", "axes"), [((2, 9, 7, 7), [2, 3]), ((2, 5, 3, 4), [1])], ids=str)
def test_half_storage(op_type: str, shape: tuple[int, ...], axes: list[int]) -> None:
    # Under the cpu plan both cases run reduce; under the gpu plan the 49-pixel fold of
    # the first runs reduce_wg and the 2-block fold of the second reduce. keepdims=1, so
    # the result is the output itself (no copy.cl reshape).
    x = half_rounded(_input(shape, op_type, seed=12))
    (result,) = run_node(op_type, {"x": x}, attrs={"axes": axes, "keepdims": 1}, data_type="fp16_fp32")
    expected = REFERENCE[op_type](x.astype(np.float64), tuple(axes), True)
    assert result.shape == expected.shape
    # One rounding: the output's store. Max/Min pick an input, exact in half: the strict
    # bound (scale 0). The others fold in float32; Mean/Sum cancel, so their float32
    # error is relative to the largest output (the default scale), which is within a
    # small factor of every output for the sums of |x|, x * x and products near 1.
    assert_close_half(result, expected, roundings=1, scale=0.0 if op_type in EXACT else None)


@pytest.mark.parametrize("op_type", ["ReduceMean", "ReduceMax"])
def test_half_storage_reshaped_output(op_type: str) -> None:
    # keepdims=0 stores [2, 8] differently from the keepdims=1 shape [2, 1, 8, 1]: reduce
    # (cpu plan) or reduce_wg (gpu plan: a 3-block by 12-pixel fold) writes a scratch
    # buffer in half, which copy.cl's reshape_copy copies unchanged into the output.
    x = half_rounded(_input((2, 9, 8, 12), op_type, seed=13))
    (result,) = run_node(op_type, {"x": x}, attrs={"axes": [1, 3], "keepdims": 0}, data_type="fp16_fp32")
    expected = REFERENCE[op_type](x.astype(np.float64), (1, 3), False)
    assert result.shape == expected.shape
    # Still one rounding: the scratch store; the copy is exact. Scales as in test_half_storage.
    assert_close_half(result, expected, roundings=1, scale=0.0 if op_type in EXACT else None)


def test_reduce_errors() -> None:
    x = _input((2, 5, 3), "ReduceMean", seed=8)
    with pytest.raises(OpError, match=r"node 'node' \(ReduceMean\).*axes 3 is out of range"):
        run_node("ReduceMean", {"x": x}, attrs={"axes": [3]})
    with pytest.raises(OpError, match=r"name the same axis twice"):
        run_node("ReduceMax", {"x": x}, attrs={"axes": [1, -2]})
    with pytest.raises(OpError, match=r"must be a graph constant"):
        run_node("ReduceSum", {"x": x, "axes": np.zeros((1,), np.float32)})


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
