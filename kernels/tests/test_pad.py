"""kernels/pad.cl (ops/pad.py): Pad in every mode, on every axis, against numpy.pad.

The ONNX spec defines constant/reflect/edge/wrap as numpy.pad's modes of the same
names; negative pads remove elements, which the reference does by slicing first.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.planning.ops.base import OpError
from mace_cl.testing import half_rounded, run_node

# Every output element is an input element or the pad constant: exact comparison.

MODES = ["constant", "reflect", "edge", "wrap"]


def _pad_reference(x: np.ndarray, pads: list[int], mode: str, value: float = 0.0) -> np.ndarray:
    rank = x.ndim
    begins, ends = pads[:rank], pads[rank:]
    crop = tuple(
        slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(zip(begins, ends, strict=True))
    )
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends, strict=True)]
    if mode == "constant":
        return np.pad(x[crop], widths, mode="constant", constant_values=value)
    return np.pad(x[crop], widths, mode=mode)


PAD_CASES = [
    # (shape, pads = all begins then all ends)
    ((2, 5, 3, 7), [0, 0, 1, 2, 0, 0, 2, 1]),  # spatial, the common case
    ((2, 5, 3, 7), [0, 2, 0, 0, 0, 3, 0, 0]),  # channels, C=5 -> 10 (blocks shift by 2)
    ((1, 1, 4, 4), [1, 0, 0, 3, 1, 0, 3, 0]),  # C=1, batch and spatial
    ((1, 6, 1, 1), [0, 1, 0, 0, 0, 1, 0, 0]),  # 1x1 spatial: only channels can be reflected
    ((2, 3, 5), [0, 1, 2, 1, 0, 2]),  # rank 3
    ((4, 6), [1, 3, 2, 1]),  # rank 2
    ((2, 7, 5, 6), [0, -2, 1, -3, 0, 1, -1, 2]),  # negative pads crop
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("shape", "pads"), PAD_CASES, ids=str)
def test_pad(shape: tuple[int, ...], pads: list[int], mode: str) -> None:
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
    pads_in = np.array(pads, np.int64)
    (result,) = run_node("Pad", {"x": x, "pads": pads_in}, attrs={"mode": mode}, constant_inputs={"pads"})
    np.testing.assert_array_equal(result, _pad_reference(x, pads, mode))


@pytest.mark.parametrize("mode", ["reflect", "wrap"])
def test_pad_longer_than_axis(mode: str) -> None:
    # numpy repeats reflections/wraps when a pad exceeds the axis; the kernel folds periodically.
    x = np.arange(1, 25, dtype=np.float32).reshape(1, 2, 3, 4)
    pads = [0, 0, 5, 7, 0, 0, 4, 9]
    (result,) = run_node(
        "Pad", {"x": x, "p": np.array(pads, np.int64)}, attrs={"mode": mode}, constant_inputs={"p"}
    )
    np.testing.assert_array_equal(result, _pad_reference(x, pads, mode))


def test_constant_value_input() -> None:  # opset >= 11
    x = np.ones((1, 3, 2, 2), np.float32)
    inputs = {
        "x": x,
        "pads": np.array([0, 1, 1, 0, 0, 2, 0, 1], np.int64),
        "value": np.array(-2.5, np.float32),
    }
    (result,) = run_node("Pad", inputs, constant_inputs={"pads", "value"})
    np.testing.assert_array_equal(result, _pad_reference(x, [0, 1, 1, 0, 0, 2, 0, 1], "constant", -2.5))


def test_opset2_attributes() -> None:
    x = np.ones((1, 3, 2, 2), np.float32)
    (result,) = run_node("Pad", {"x": x}, attrs={"pads": [0, 0, 1, 1, 0, 0, 1, 1], "value": 7.0})
    np.testing.assert_array_equal(result, _pad_reference(x, [0, 0, 1, 1, 0, 0, 1, 1], "constant", 7.0))


def test_axes_input() -> None:  # opset 18: pads for the listed axes only
    x = np.random.default_rng(3).standard_normal((2, 5, 3, 4)).astype(np.float32)
    inputs = {
        "x": x,
        "pads": np.array([2, 1, 0, 3], np.int64),
        "value": None,
        "axes": np.array([-1, 1], np.int64),
    }
    (result,) = run_node("Pad", inputs, attrs={"mode": "edge"}, constant_inputs={"pads", "axes"})
    np.testing.assert_array_equal(result, _pad_reference(x, [0, 1, 0, 2, 0, 3, 0, 0], "edge"))


def test_pad_errors() -> None:
    x = np.zeros((1, 2, 3, 3), np.float32)
    with pytest.raises(OpError, match=r"node 'node' \(Pad\).*mode 'symmetric'"):
        run_node("Pad", {"x": x}, attrs={"pads": [0] * 8, "mode": "symmetric"})
    with pytest.raises(OpError, match=r"2 entries per padded axis"):
        run_node("Pad", {"x": x}, attrs={"pads": [1, 1]})
    with pytest.raises(OpError, match=r"empty tensors"):
        run_node("Pad", {"x": x}, attrs={"pads": [0, 0, -2, 0, 0, 0, -1, 0]})
    with pytest.raises(OpError, match=r"must be a graph constant"):
        run_node("Pad", {"x": x, "pads": np.zeros(8, np.float32)})


# ---- half storage (data_type fp16_fp32: -DSTORAGE_HALF) -----------------------------
# Input and output are half in device memory. Every output element is a half-exact input
# value, widened and stored back unchanged, or the pad constant, a float argument stored
# with one rounding to nearest even: exact comparison against the half-rounded constant.

HALF_PAD_CASES = [
    PAD_CASES[0],  # spatial
    PAD_CASES[1],  # channels, blocks shift by 2
    PAD_CASES[6],  # negative pads crop C, H and W
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("shape", "pads"), HALF_PAD_CASES, ids=str)
def test_pad_half_storage(shape: tuple[int, ...], pads: list[int], mode: str) -> None:
    x = half_rounded(np.random.default_rng(len(shape)).standard_normal(shape))
    value = 0.1  # not a half: the kernel stores it rounded, like any output
    inputs = {"x": x, "pads": np.array(pads, np.int64), "value": np.array(value, np.float32)}
    (result,) = run_node(
        "Pad", inputs, attrs={"mode": mode}, constant_inputs={"pads", "value"}, data_type="fp16_fp32"
    )
    np.testing.assert_array_equal(
        result, _pad_reference(x, pads, mode, float(half_rounded(np.float32(value))))
    )


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
