"""kernels/activation.cl (ops/activation.py) and the fused-activation macro in common.h."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.planning.kernel_sources import kernels_dir
from mace_cl.planning.ops.base import OpError
from mace_cl.planning.ops.fused_activation import ACTIVATIONS, ALIASES, ONNX_ACTIVATIONS
from mace_cl.testing import assert_close_half, half_rounded, run_node

# Piecewise-linear activations are single correctly rounded float ops: compare tightly.
EXACT = {"rtol": 1e-6, "atol": 1e-6}
# exp/tanh/expm1 may be off by up to 3-5 ulp in OpenCL C 1.2 (spec section 7.4) and
# sigmoid/swish/elu chain 2-4 float ops on top: allow ~100 ulp relative.
TRANSCENDENTAL = {"rtol": 1e-5, "atol": 1e-6}

Reference = Callable[[np.ndarray], np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ONNX op type, attrs, float64 reference written from the ONNX operator definitions, tolerance
UNARY_CASES: list[tuple[str, dict, Reference, dict]] = [
    ("Relu", {}, lambda x: np.maximum(x, 0.0), EXACT),
    ("LeakyRelu", {}, lambda x: np.where(x >= 0, x, 0.01 * x), EXACT),
    ("LeakyRelu", {"alpha": 0.3}, lambda x: np.where(x >= 0, x, 0.3 * x), EXACT),
    ("Sigmoid", {}, _sigmoid, TRANSCENDENTAL),
    ("Tanh", {}, np.tanh, TRANSCENDENTAL),
    ("HardSigmoid", {}, lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0), EXACT),
    (
        "HardSigmoid",
        {"alpha": 0.5, "beta": 0.25},
        lambda x: np.clip(0.5 * x + 0.25, 0.0, 1.0),
        EXACT,
    ),
    ("HardSwish", {}, lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0), EXACT),
    ("Swish", {}, lambda x: x * _sigmoid(x), TRANSCENDENTAL),
    ("Swish", {"alpha": 1.702}, lambda x: x * _sigmoid(1.702 * x), TRANSCENDENTAL),
    ("Elu", {}, lambda x: np.where(x >= 0, x, np.exp(x) - 1.0), TRANSCENDENTAL),
    (
        "Elu",
        {"alpha": 0.5},
        lambda x: np.where(x >= 0, x, 0.5 * (np.exp(x) - 1.0)),
        TRANSCENDENTAL,
    ),
    ("Identity", {}, lambda x: x, EXACT),
]

SHAPES = [(2, 5, 3, 7), (1, 1, 1, 1), (1, 9, 1, 1), (3, 4), (2, 3, 5), (), (6,)]


def _input(shape: tuple[int, ...], seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-7.0, 7.0, shape).astype(np.float32)
    # Include the kinks of relu/hard-sigmoid/hard-swish exactly.
    flat = x.reshape(-1)
    flat[: min(3, flat.size)] = np.array([0.0, -3.0, 3.0], np.float32)[: min(3, flat.size)]
    return x


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(("op_type", "attrs", "reference", "tolerance"), UNARY_CASES, ids=lambda v: str(v))
def test_unary(
    op_type: str,
    attrs: dict,
    reference: Reference,
    tolerance: dict,
    shape: tuple[int, ...],
) -> None:
    x = _input(shape, seed=len(shape))
    (result,) = run_node(op_type, {"x": x}, attrs=attrs)
    assert result.shape == x.shape
    np.testing.assert_allclose(result, reference(x.astype(np.float64)), **tolerance)


def test_sigmoid_saturates_without_nan() -> None:
    x = np.array([[-200.0, -90.0, 90.0, 200.0, 0.0]], np.float32)
    (result,) = run_node("Sigmoid", {"x": x})
    np.testing.assert_allclose(result, [[0.0, 0.0, 1.0, 1.0, 0.5]], rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    ("bounds", "constant_inputs", "attrs", "low", "high"),
    [
        (
            {"min": np.float32(-1.0), "max": np.float32(2.5)},
            {"min", "max"},
            {},
            -1.0,
            2.5,
        ),
        ({"min": None, "max": np.float32(0.5)}, {"max"}, {}, -np.inf, 0.5),
        ({"min": np.float32(0.0)}, {"min"}, {}, 0.0, np.inf),
        ({}, set(), {"min": 0.0, "max": 6.0}, 0.0, 6.0),  # opset < 11 attributes
        (
            {"min": np.float32(2.0), "max": np.float32(1.0)},
            {"min", "max"},
            {},
            2.0,
            1.0,
        ),  # min > max
    ],
)
def test_clip(bounds: dict, constant_inputs: set, attrs: dict, low: float, high: float) -> None:
    x = _input((2, 6, 3, 3), seed=3)
    (result,) = run_node("Clip", {"x": x, **bounds}, attrs=attrs, constant_inputs=constant_inputs)
    np.testing.assert_allclose(result, np.minimum(np.maximum(x, low), high), **EXACT)


def test_clip_bound_must_be_constant() -> None:
    x = _input((1, 2, 2, 2), seed=1)
    with pytest.raises(OpError, match=r"must be a constant scalar"):
        run_node("Clip", {"x": x, "min": np.zeros((), np.float32)})


# Fused into eltwise (activation attribute on Add): same macro, all kinds.
FUSED_CASES: list[tuple[dict, Reference, dict]] = [
    ({"activation": "relu"}, lambda x: np.maximum(x, 0.0), EXACT),
    ({"activation": "relu6"}, lambda x: np.clip(x, 0.0, 6.0), EXACT),
    (
        {"activation": "clip", "activation_min": -2.0, "activation_max": 1.0},
        lambda x: np.clip(x, -2.0, 1.0),
        EXACT,
    ),
    (
        {"activation": "leaky_relu", "activation_alpha": 0.2},
        lambda x: np.where(x >= 0, x, 0.2 * x),
        EXACT,
    ),
    ({"activation": "sigmoid"}, _sigmoid, TRANSCENDENTAL),
    ({"activation": "tanh"}, np.tanh, TRANSCENDENTAL),
    ({"activation": "hard_sigmoid"}, lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0), EXACT),
    (
        {"activation": "hard_swish"},
        lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
        EXACT,
    ),
    ({"activation": "silu"}, lambda x: x * _sigmoid(x), TRANSCENDENTAL),
    (
        {"activation": "swish", "activation_alpha": 1.702},
        lambda x: x * _sigmoid(1.702 * x),
        TRANSCENDENTAL,
    ),
    (
        {"activation": "elu", "activation_alpha": 2.0},
        lambda x: np.where(x >= 0, x, 2.0 * (np.exp(x) - 1.0)),
        TRANSCENDENTAL,
    ),
]


@pytest.mark.parametrize(("attrs", "reference", "tolerance"), FUSED_CASES, ids=lambda v: str(v))
def test_fused_into_eltwise(attrs: dict, reference: Reference, tolerance: dict) -> None:
    x = _input((2, 5, 3, 3), seed=21)
    bias = np.random.default_rng(4).uniform(-1, 1, (5, 1, 1)).astype(np.float32)
    (result,) = run_node("Add", {"x": x, "bias": bias}, attrs=attrs, constant_inputs={"bias"})
    # The kernel applies the activation to the float32 sum; so does the reference.
    np.testing.assert_allclose(result, reference((x + bias).astype(np.float64)), **tolerance)


def test_every_activation_has_its_kernel_case_and_tests() -> None:
    # fused_activation.ACTIVATIONS is the one table; what it cannot derive must keep up.
    header = (kernels_dir() / "common.h").read_text()
    defined = dict(re.findall(r"^#define ACT_(\w+) (\d+)$", header, re.MULTILINE))
    with_case = set(re.findall(r"^#define ACT_EXPR_(\d+)\(x, alpha, beta\) ", header, re.MULTILINE))
    assert {kind.macro for kind in ACTIVATIONS.values()} == set(defined)
    assert set(defined.values()) == with_case
    assert {op_type for op_type, *_ in UNARY_CASES} | {"Clip"} == set(ONNX_ACTIVATIONS)
    fused = {attrs["activation"] for attrs, *_ in FUSED_CASES}
    assert (set(ACTIVATIONS) - {"none"}) | set(ALIASES) <= fused


def test_unknown_fused_activation() -> None:
    x = _input((1, 2, 2, 2), seed=1)
    with pytest.raises(OpError, match=r"unknown fused activation 'gelu'"):
        run_node("Add", {"x": x, "y": x}, attrs={"activation": "gelu"})


# PRelu: (x shape, slope shape, slope is a constant)
PRELU_CASES = [
    ((2, 5, 3, 7), (5, 1, 1), True),  # per channel, the common case
    ((2, 5, 3, 7), (1,), True),  # one shared slope
    ((1, 6, 4, 4), (1, 6, 1, 1), False),
    ((2, 3, 4, 5), (5,), False),  # broadcast along W
    ((2, 3, 4, 5), (3, 4, 5), False),  # channel read with a gather
    ((4, 7), (7,), True),
]


@pytest.mark.parametrize(("x_shape", "slope_shape", "constant"), PRELU_CASES, ids=str)
def test_prelu(x_shape: tuple[int, ...], slope_shape: tuple[int, ...], constant: bool) -> None:
    x = _input(x_shape, seed=9)
    slope = np.random.default_rng(2).uniform(-0.5, 1.5, slope_shape).astype(np.float32)
    (result,) = run_node("PRelu", {"x": x, "slope": slope}, constant_inputs={"slope"} if constant else ())
    np.testing.assert_allclose(result, np.where(x >= 0, x, x * slope), **EXACT)


def test_prelu_slope_must_broadcast_to_x() -> None:
    x = _input((1, 5, 3, 7), seed=1)
    slope = np.ones((2, 5, 3, 7), np.float32)
    with pytest.raises(OpError, match=r"does not broadcast to X"):
        run_node("PRelu", {"x": x, "slope": slope}, constant_inputs={"slope"})


# ---- half storage (data_type fp16_fp32: -DSTORAGE_HALF) -----------------------------
# Input, slope and output are half in device memory, arithmetic float. On half-exact inputs
# the output's rounding to half is the one rounding (roundings=1) and the strict bound
# (scale=0.0) applies: the float32 arithmetic before it is off by 2^-24 relative per
# piecewise-linear op and by at most ~1e-5 for the exp/tanh chains (see TRANSCENDENTAL),
# against half's 2^-11; it could cross the bound only for a result within that distance of
# a half rounding tie.

# Every fused_activation.ACTIVATIONS kind: its ONNX op's inputs besides x (constants),
# attributes and a float64 reference written from the operator definition.
HALF_ACTIVATION_CASES: dict[str, tuple[dict, dict, Reference]] = {
    "none": ({}, {}, lambda x: x),
    "relu": ({}, {}, lambda x: np.maximum(x, 0.0)),
    "clip": (
        {"min": np.float32(-1.5), "max": np.float32(2.25)},
        {},
        lambda x: np.clip(x, -1.5, 2.25),
    ),
    "leaky_relu": ({}, {"alpha": 0.3}, lambda x: np.where(x >= 0, x, 0.3 * x)),
    "sigmoid": ({}, {}, _sigmoid),
    "tanh": ({}, {}, np.tanh),
    "hard_sigmoid": ({}, {}, lambda x: np.clip(0.2 * x + 0.5, 0.0, 1.0)),
    "hard_swish": ({}, {}, lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)),
    "swish": ({}, {"alpha": 1.702}, lambda x: x * _sigmoid(1.702 * x)),
    "elu": ({}, {"alpha": 0.5}, lambda x: np.where(x >= 0, x, 0.5 * (np.exp(x) - 1.0))),
}


@pytest.mark.parametrize("shape", [(2, 5, 3, 7), (2, 3, 5)], ids=str)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_half_storage(name: str, shape: tuple[int, ...]) -> None:
    assert name in HALF_ACTIVATION_CASES, f"activation {name!r} has no half-storage case"
    parameters, attrs, reference = HALF_ACTIVATION_CASES[name]
    x = half_rounded(_input(shape, seed=11))
    (result,) = run_node(
        ACTIVATIONS[name].onnx_op,
        {"x": x, **parameters},
        attrs=attrs,
        constant_inputs=set(parameters),
        data_type="fp16_fp32",
    )
    assert result.shape == x.shape
    assert_close_half(result, reference(x.astype(np.float64)), roundings=1, scale=0.0)


@pytest.mark.parametrize(("x_shape", "slope_shape", "constant"), [PRELU_CASES[i] for i in (0, 1, 4)], ids=str)
def test_prelu_half_storage(x_shape: tuple[int, ...], slope_shape: tuple[int, ...], constant: bool) -> None:
    x = half_rounded(_input(x_shape, seed=9))
    slope = half_rounded(np.random.default_rng(2).uniform(-0.5, 1.5, slope_shape))
    (result,) = run_node(
        "PRelu",
        {"x": x, "slope": slope},
        constant_inputs={"slope"} if constant else (),
        data_type="fp16_fp32",
    )
    expected = np.where(x >= 0, x, x.astype(np.float64) * slope)
    assert_close_half(result, expected, roundings=1, scale=0.0)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
