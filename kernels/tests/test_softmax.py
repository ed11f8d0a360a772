"""kernels/softmax.cl (ops/softmax.py): Softmax / LogSoftmax over any axis."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.planning.ops.base import OpError
from mace_cl.testing import assert_close_half, half_rounded, run_node

# exp/log may be off by 3 ulp (OpenCL C 1.2, section 7.4) and the float32 sum over the
# axis is accumulated in a different order than numpy's: ~1e-6 relative for these sizes.
SOFTMAX_TOL = {"rtol": 1e-5, "atol": 1e-6}
# log-softmax values are O(1..10); their error is absolute (log(sum) + subtraction).
LOG_SOFTMAX_TOL = {"rtol": 1e-5, "atol": 1e-5}


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


CASES = [((2, 5, 3, 7), axis) for axis in range(-4, 4)] + [
    ((1, 1, 2, 3), 1),  # C = 1 on the softmax axis: all ones
    ((2, 9, 1, 1), 1),  # classifier head, C not a multiple of 4
    ((3, 1000), -1),  # long channel axis
    ((3, 10), 0),
    ((2, 6, 9), 1),
    ((2, 6, 9), 2),
    ((2, 6, 9), 0),
    ((7,), 0),
]


@pytest.mark.parametrize(("shape", "axis"), CASES, ids=str)
def test_softmax(shape: tuple[int, ...], axis: int) -> None:
    x = np.random.default_rng(len(shape) + axis).normal(0.0, 3.0, shape).astype(np.float32)
    (result,) = run_node("Softmax", {"x": x}, attrs={"axis": axis})
    expected = _softmax(x.astype(np.float64), axis)
    np.testing.assert_allclose(result, expected, **SOFTMAX_TOL)
    np.testing.assert_allclose(result.sum(axis=axis), 1.0, rtol=1e-5)


@pytest.mark.parametrize(("shape", "axis"), [((2, 5, 3, 7), 1), ((2, 5, 3, 7), -1), ((3, 10), 1)], ids=str)
def test_log_softmax(shape: tuple[int, ...], axis: int) -> None:
    x = np.random.default_rng(3).normal(0.0, 3.0, shape).astype(np.float32)
    (result,) = run_node("LogSoftmax", {"x": x}, attrs={"axis": axis})
    np.testing.assert_allclose(result, _log_softmax(x.astype(np.float64), axis), **LOG_SOFTMAX_TOL)


@pytest.mark.parametrize("axis", [1, 3])
def test_large_logits_are_stable(axis: int) -> None:
    # exp(1000) overflows float32: only a max-subtracting kernel gets this right.
    x = (np.random.default_rng(5).normal(0.0, 20.0, (2, 6, 2, 5)) + 1000.0).astype(np.float32)
    (result,) = run_node("Softmax", {"x": x}, attrs={"axis": axis})
    assert np.all(np.isfinite(result))
    np.testing.assert_allclose(result, _softmax(x.astype(np.float64), axis), **SOFTMAX_TOL)


def test_default_axis_is_last() -> None:
    x = np.random.default_rng(8).normal(size=(2, 3, 4, 5)).astype(np.float32)
    (result,) = run_node("Softmax", {"x": x})
    np.testing.assert_allclose(result, _softmax(x.astype(np.float64), -1), **SOFTMAX_TOL)


# ---- half storage (data_type fp16_fp32: kernels built with -DSTORAGE_HALF) -------------
# (shape, axis): softmax_channel for the channel axis, softmax_axis for N, H and W; the
# plans of both kinds pick the same kernels.
HALF_CASES = [((2, 5, 3, 7), 1), ((2, 6, 9), 1), ((2, 5, 3, 7), 0), ((2, 5, 3, 7), 2), ((2, 6, 9), -1)]


@pytest.mark.parametrize(("shape", "axis"), HALF_CASES, ids=str)
def test_softmax_half_storage(shape: tuple[int, ...], axis: int) -> None:
    x = half_rounded(np.random.default_rng(9 + axis).normal(0.0, 3.0, shape))
    (result,) = run_node("Softmax", {"x": x}, attrs={"axis": axis}, data_type="fp16_fp32")
    # One rounding, the output's store, with the strict bound (scale 0): x - max is exact
    # in float for half inputs, and exp, the sum of positive terms and the division add
    # float32 errors only, relative to each output and far below half's.
    assert_close_half(result, _softmax(x.astype(np.float64), axis), roundings=1, scale=0.0)


@pytest.mark.parametrize(("shape", "axis"), HALF_CASES[:3], ids=str)
def test_log_softmax_half_storage(shape: tuple[int, ...], axis: int) -> None:
    x = half_rounded(np.random.default_rng(10 + axis).normal(0.0, 3.0, shape))
    (result,) = run_node("LogSoftmax", {"x": x}, attrs={"axis": axis}, data_type="fp16_fp32")
    # One rounding, the output's store. x - max - log(sum) cancels where the sum is near 1,
    # so the float32 error of log(sum) is relative to the largest output (default scale).
    assert_close_half(result, _log_softmax(x.astype(np.float64), axis), roundings=1)


def test_axis_out_of_range() -> None:
    with pytest.raises(OpError, match=r"axis 4 is out of range"):
        run_node("Softmax", {"x": np.zeros((1, 2, 3, 4), np.float32)}, attrs={"axis": 4})


def test_scalar_input_is_rejected() -> None:
    with pytest.raises(OpError, match=r"scalar"):
        run_node("Softmax", {"x": np.zeros((), np.float32)})


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
