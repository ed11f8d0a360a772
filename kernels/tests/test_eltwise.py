"""kernels/eltwise.cl (ops/eltwise.py) against numpy broadcasting arithmetic."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.planning.ops.base import OpError
from mace_cl.testing import assert_close_half, half_rounded, run_node

# +, -, *, max, min are correctly rounded in both OpenCL and numpy, so results agree
# exactly; division may be off by 2.5 ulp in OpenCL C 1.2 (about 3e-7 relative).
RTOL = 1e-6
ATOL = 1e-6

Reference = Callable[..., np.ndarray]

REFERENCE: dict[str, Reference] = {
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "Max": np.maximum,
    "Min": np.minimum,
}

# (a shape, b shape): layouts that break naive indexing.
SHAPE_CASES = {
    "same_c5": ((2, 5, 3, 7), (2, 5, 3, 7)),
    "c1": ((3, 1, 4, 5), (3, 1, 4, 5)),
    "spatial_1x1": ((2, 6, 1, 1), (2, 6, 1, 1)),
    "channel_bias_1c11": ((2, 5, 3, 7), (1, 5, 1, 1)),
    "channel_bias_c11": ((1, 6, 4, 3), (6, 1, 1)),
    "hw_plane": ((2, 3, 4, 5), (4, 5)),
    "scalar": ((2, 3, 4, 5), ()),
    "one_element": ((1, 7, 3, 3), (1,)),
    "scalar_first": ((), (2, 5, 3, 3)),
    "both_ways": ((2, 1, 3, 1), (1, 5, 1, 4)),
    "chw_against_nchw": ((2, 3, 4, 5), (3, 4, 5)),  # channel read with a gather
    "rank2": ((3, 10), (10,)),
    "rank3": ((2, 6, 9), (6, 1)),
}


def _operands(a_shape: tuple[int, ...], b_shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.uniform(-4.0, 4.0, a_shape).astype(np.float32)
    # Keep divisors away from zero so Div compares finite values.
    b = (rng.uniform(0.5, 3.0, b_shape) * rng.choice([-1.0, 1.0], b_shape)).astype(np.float32)
    return a, b


@pytest.mark.parametrize("op_type", ["Add", "Sub", "Div"])
@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_broadcast_shapes(op_type: str, case: str) -> None:
    a, b = _operands(*SHAPE_CASES[case], seed=len(case))
    (result,) = run_node(op_type, {"a": a, "b": b})
    expected = REFERENCE[op_type](a, b)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", ["channel_bias_c11", "scalar", "hw_plane", "same_c5"])
def test_constant_operand(case: str) -> None:
    a, b = _operands(*SHAPE_CASES[case], seed=7)
    (result,) = run_node("Sub", {"a": a, "b": b}, constant_inputs={"b"})
    np.testing.assert_allclose(result, a - b, rtol=RTOL, atol=ATOL)


def test_constant_first_operand() -> None:
    a, b = _operands((5, 1, 1), (2, 5, 3, 3), seed=3)
    (result,) = run_node("Div", {"a": a, "b": b}, constant_inputs={"a"})
    np.testing.assert_allclose(result, a / b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("op_type", sorted(REFERENCE))
@pytest.mark.parametrize("case", ["same_c5", "channel_bias_1c11"])
def test_every_op(op_type: str, case: str) -> None:
    a, b = _operands(*SHAPE_CASES[case], seed=11)
    (result,) = run_node(op_type, {"a": a, "b": b})
    np.testing.assert_allclose(result, REFERENCE[op_type](a, b), rtol=RTOL, atol=ATOL)


def test_same_tensor_twice() -> None:
    a, _ = _operands((1, 3, 2, 2), (), seed=5)
    (result,) = run_node("Mul", {"a": a, "a2": a})
    np.testing.assert_allclose(result, a * a, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("attrs", "reference"),
    [
        ({"activation": "relu"}, lambda x: np.maximum(x, 0.0)),
        ({"activation": "relu6"}, lambda x: np.minimum(np.maximum(x, 0.0), 6.0)),
        (
            {"activation": "clip", "activation_min": -1.5, "activation_max": 0.25},
            lambda x: np.minimum(np.maximum(x, -1.5), 0.25),
        ),
        ({"activation": "clip", "activation_max": 1.0}, lambda x: np.minimum(x, 1.0)),
    ],
)
def test_fused_activation(attrs: dict, reference: Reference) -> None:
    a, b = _operands((2, 7, 3, 5), (7, 1, 1), seed=13)
    (result,) = run_node("Add", {"a": a, "b": b}, attrs=attrs, constant_inputs={"b"})
    np.testing.assert_allclose(result, reference(a + b), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("op_type", "reference"),
    [("Sum", np.add), ("Max", np.maximum), ("Min", np.minimum)],
)
def test_variadic(op_type: str, reference: Reference) -> None:
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 5, 3, 4)).astype(np.float32)
    y = rng.standard_normal((5, 1, 1)).astype(np.float32)
    z = rng.standard_normal((4,)).astype(np.float32)
    (result,) = run_node(op_type, {"x": x, "y": y, "z": z}, attrs={"activation": "relu"})
    expected = np.maximum(reference(reference(x, y), z), 0.0)
    # Sum adds in the same order as the reference, so rounding matches too.
    np.testing.assert_allclose(result, expected, rtol=RTOL, atol=ATOL)


def test_variadic_single_input_copies() -> None:
    x = np.random.default_rng(19).standard_normal((1, 6, 2, 3)).astype(np.float32)
    (result,) = run_node("Max", {"x": x})
    np.testing.assert_array_equal(result, x)


def test_incompatible_shapes_are_rejected() -> None:
    with pytest.raises(OpError, match=r"cannot be broadcast"):
        run_node(
            "Add",
            {
                "a": np.zeros((2, 3, 4, 5), np.float32),
                "b": np.zeros((3, 1), np.float32),
            },
        )


def test_rank5_result_is_rejected() -> None:
    a = np.zeros((2, 3, 4, 5), np.float32)
    b = np.zeros((1, 1, 1, 1, 5), np.float32)
    with pytest.raises(OpError, match=r"rank 5"):
        run_node("Add", {"a": a, "b": b}, constant_inputs={"b"})


def test_binary_op_needs_two_inputs() -> None:
    with pytest.raises(OpError, match=r"expects 2 inputs"):
        run_node("Sub", {"a": np.zeros((2, 3), np.float32)})


@pytest.mark.parametrize("op_type", sorted(REFERENCE))
@pytest.mark.parametrize("case", ["same_c5", "channel_bias_1c11", "scalar", "chw_against_nchw", "rank2"])
def test_half_storage(op_type: str, case: str) -> None:
    # Half-exact operands, so the float64 oracle sees what the device reads; the kernel computes
    # in float and rounds once, on the store of the output: one rounding, relative to each value.
    a, b = (half_rounded(x) for x in _operands(*SHAPE_CASES[case], seed=11))
    (result,) = run_node(op_type, {"a": a, "b": b}, data_type="fp16_fp32")
    expected = REFERENCE[op_type](a.astype(np.float64), b.astype(np.float64))
    assert_close_half(result, expected, scale=0.0)


def test_half_storage_constant_operand() -> None:
    # The constant is uploaded as half (it is half-exact here, so nothing is lost on upload).
    a, b = (half_rounded(x) for x in _operands((2, 5, 3, 7), (5, 1, 1), seed=5))
    (result,) = run_node("Mul", {"a": a, "b": b}, constant_inputs={"b"}, data_type="fp16_fp32")
    assert_close_half(result, a.astype(np.float64) * b, scale=0.0)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
