"""kernels/gemm.cl and the fully-connected path (ops/gemm.py) against numpy in float64.

ONNX defines MatMul as numpy.matmul (1-D promotion, batch broadcasting) and Gemm as
alpha * op(A) @ op(B) + beta * C with C broadcast to the result; the references below
are those definitions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.model.graph import Graph, Node, TensorInfo
from mace_cl.planning.ops.base import OpError
from mace_cl.planning.planner import plan_graph
from mace_cl.testing import assert_close_half, half_rounded, run_node

# Each output sums K float32 products of values in [-1, 1] in another order than the
# float64 reference; 1e-6 * K bounds the rounding with margin (see test_conv2d.py) and
# stays far below the effect of one wrong term (~1e-2).
RTOL = 1e-4
ATOL_PER_TERM = 1e-6


def random(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def check(result: np.ndarray, expected: np.ndarray, depth: int) -> None:
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=RTOL, atol=ATOL_PER_TERM * depth)


def matmul_reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a.astype(np.float64), b.astype(np.float64))


# name: (A shape, B shape)
MATMUL_CASES = {
    "2d": ((5, 7), (7, 6)),
    "2d_one_column": ((3, 9), (9, 1)),
    "2d_1x1": ((1, 1), (1, 1)),
    "vector_times_matrix": ((7,), (7, 6)),
    "matrix_times_vector": ((5, 7), (7,)),
    "dot_product": ((9,), (9,)),
    "batched_times_vector": ((2, 3, 7), (7,)),
    "vector_times_batched": ((7,), (2, 7, 3)),
    "batched_3d": ((2, 5, 6), (2, 6, 3)),
    "batched_times_matrix": ((2, 5, 6), (6, 3)),
    "batch_broadcast_3d": ((1, 5, 6), (3, 6, 4)),
    "batched_4d": ((2, 3, 4, 5), (2, 3, 5, 6)),
    "batch_broadcast_4d": ((2, 1, 4, 5), (1, 3, 5, 2)),
    "4d_times_3d": ((2, 3, 4, 5), (3, 5, 6)),
}


@pytest.mark.parametrize("case", sorted(MATMUL_CASES))
def test_matmul_runtime_operands(case: str) -> None:
    a_shape, b_shape = MATMUL_CASES[case]
    a, b = random(a_shape, 1), random(b_shape, 2)
    (result,) = run_node("MatMul", {"a": a, "b": b})
    check(result, matmul_reference(a, b), a_shape[-1])


@pytest.mark.parametrize(
    "case", ["batched_times_matrix", "4d_times_3d", "matrix_times_vector", "vector_times_matrix"]
)
def test_matmul_constant_b_general_path(case: str) -> None:
    a_shape, b_shape = MATMUL_CASES[case]
    a, b = random(a_shape, 3), random(b_shape, 4)
    (result,) = run_node("MatMul", {"a": a, "b": b}, constant_inputs={"b"})
    check(result, matmul_reference(a, b), a_shape[-1])


def test_matmul_constant_a() -> None:
    a, b = random((4, 6), 5), random((2, 6, 3), 6)
    (result,) = run_node("MatMul", {"a": a, "b": b}, constant_inputs={"a"})
    check(result, matmul_reference(a, b), 6)


# (rows, K, N): the fully-connected path (run-time 2-D A, constant 2-D B). rows 5 and 1
# leave partial blocks of 4 rows; K and N off multiples of 4 exercise padding lanes.
FC_SHAPES = [(2, 10, 5), (5, 3, 9), (1, 1, 1), (1, 1030, 37), (6, 16, 8)]


@pytest.mark.parametrize(("rows", "depth", "columns"), FC_SHAPES)
def test_matmul_fully_connected(rows: int, depth: int, columns: int) -> None:
    a, b = random((rows, depth), 7), random((depth, columns), 8)
    (result,) = run_node("MatMul", {"a": a, "b": b}, constant_inputs={"b"})
    check(result, matmul_reference(a, b), depth)


def gemm_reference(
    a: np.ndarray, b: np.ndarray, c: np.ndarray | None, alpha: float, beta: float, trans_a: int, trans_b: int
) -> np.ndarray:
    a64 = a.astype(np.float64).T if trans_a else a.astype(np.float64)
    b64 = b.astype(np.float64).T if trans_b else b.astype(np.float64)
    y = alpha * (a64 @ b64)
    return y if c is None else y + beta * c.astype(np.float64)


# name: (M, K, N, C shape or None, alpha, beta, transA, transB)
GEMM_CASES = {
    "linear_layer": (2, 10, 5, (5,), 1.0, 1.0, 0, 1),
    # 11 rows: one full 7-row block of conv1x1_o32 plus a clamped partial one; N = 21
    # spans two 16-channel groups, the second mostly padding.
    "linear_layer_11_rows": (11, 37, 21, (21,), 1.0, 1.0, 0, 1),
    "alpha_beta_row_c": (3, 7, 6, (1, 6), 0.5, 2.0, 0, 0),
    "scalar_c": (4, 5, 3, (), 1.0, -1.5, 0, 1),
    "no_c": (5, 9, 7, None, 2.0, 1.0, 0, 0),
    "full_c": (3, 6, 5, (3, 5), 1.0, 0.5, 0, 1),
    "column_c": (3, 6, 5, (3, 1), 1.0, 1.0, 0, 0),
    "trans_a": (5, 6, 7, (7,), 1.5, 1.0, 1, 0),
    "trans_both": (6, 5, 3, (1, 1), 1.0, 0.25, 1, 1),
}


def _gemm_inputs(case: str, seed: int) -> tuple[dict, dict, int]:
    m, k, n, c_shape, alpha, beta, trans_a, trans_b = GEMM_CASES[case]
    a = random((k, m) if trans_a else (m, k), seed)
    b = random((n, k) if trans_b else (k, n), seed + 1)
    c = None if c_shape is None else random(c_shape, seed + 2)
    attrs = {"alpha": alpha, "beta": beta, "transA": trans_a, "transB": trans_b}
    return {"a": a, "b": b, "c": c}, attrs, k


@pytest.mark.parametrize("case", sorted(GEMM_CASES))
@pytest.mark.parametrize("constants", [("b", "c"), ()], ids=["constant_b_c", "runtime"])
def test_gemm(case: str, constants: tuple[str, ...]) -> None:
    inputs, attrs, depth = _gemm_inputs(case, seed=len(case))
    (result,) = run_node("Gemm", inputs, attrs=attrs, constant_inputs=set(constants))
    expected = gemm_reference(
        inputs["a"], inputs["b"], inputs["c"], attrs["alpha"], attrs["beta"], attrs["transA"], attrs["transB"]
    )
    check(result, expected, depth)


def test_gemm_runtime_c_with_constant_b() -> None:
    inputs, attrs, depth = _gemm_inputs("linear_layer", seed=9)
    (result,) = run_node("Gemm", inputs, attrs=attrs, constant_inputs={"b"})
    check(result, gemm_reference(inputs["a"], inputs["b"], inputs["c"], 1.0, 1.0, 0, 1), depth)


def test_gemm_default_attributes() -> None:
    a, b, c = random((3, 4), 10), random((4, 6), 11), random((6,), 12)
    (result,) = run_node("Gemm", {"a": a, "b": b, "c": c}, constant_inputs={"b", "c"})
    check(result, gemm_reference(a, b, c, 1.0, 1.0, 0, 0), 4)


@pytest.mark.parametrize(
    ("op_type", "constants", "activation", "reference"),
    [
        ("Gemm", {"b", "c"}, {"activation": "relu"}, lambda y: np.maximum(y, 0.0)),
        ("Gemm", set(), {"activation": "sigmoid"}, lambda y: 1.0 / (1.0 + np.exp(-y))),
    ],
    ids=["fully_connected_relu", "general_sigmoid"],
)
def test_fused_activation(
    op_type: str, constants: set, activation: dict, reference: Callable[[np.ndarray], np.ndarray]
) -> None:
    # N = 5: sigmoid(0) = 0.5 would leak into the padding lanes unless zeroed.
    inputs, attrs, depth = _gemm_inputs("linear_layer", seed=13)
    (result,) = run_node(op_type, inputs, attrs={**attrs, **activation}, constant_inputs=constants)
    expected = reference(gemm_reference(inputs["a"], inputs["b"], inputs["c"], 1.0, 1.0, 0, 1))
    check(result, expected, depth)


@pytest.mark.parametrize(
    ("case", "constants", "kernel"),
    [
        ("linear_layer", {"b", "c"}, "conv1x1_o16_single"),  # fully connected, < 7 rows
        ("linear_layer_11_rows", {"b", "c"}, "conv1x1_o32"),  # fully connected
        ("linear_layer", {"b"}, "matmul"),  # run-time C
        ("trans_a", {"b", "c"}, "matmul"),
        ("full_c", {"b", "c"}, "matmul"),
    ],
)
def test_path_selection(case: str, constants: set, kernel: str) -> None:
    inputs, attrs, _ = _gemm_inputs(case, seed=1)
    graph_inputs = [TensorInfo(name, value.shape) for name, value in inputs.items() if name not in constants]
    node = Node("Gemm", "node", list(inputs), ["y"], attrs)
    graph = Graph(graph_inputs, [], [node], {name: inputs[name] for name in constants})
    (plan,) = plan_graph(graph, device_kind="cpu").node_plans
    assert [launch.kernel for launch in plan.launches] == [kernel]


@pytest.mark.parametrize(
    ("case", "constants", "kernel"),
    [
        ("linear_layer", {"b", "c"}, "fc_gpu"),  # fully connected, few rows: work-group reduction
        ("linear_layer_11_rows", {"b", "c"}, "conv2d_gpu"),  # more rows: one work-item per output float4
        ("linear_layer", {"b"}, "matmul"),
    ],
)
def test_gpu_path_selection(case: str, constants: set, kernel: str) -> None:
    inputs, attrs, _ = _gemm_inputs(case, seed=1)
    graph_inputs = [TensorInfo(name, value.shape) for name, value in inputs.items() if name not in constants]
    node = Node("Gemm", "node", list(inputs), ["y"], attrs)
    graph = Graph(graph_inputs, [], [node], {name: inputs[name] for name in constants})
    (plan,) = plan_graph(graph, device_kind="gpu").node_plans
    assert [launch.kernel for launch in plan.launches] == [kernel]


# ---- half storage (data_type fp16_fp32: kernels built with -DSTORAGE_HALF) -------------
# Every case takes the general path (matmul in gemm.cl) under both plan kinds. The
# fully-connected path runs conv2d's kernels (conv2d_o16.cl, conv2d_gpu.cl) instead and
# is not tested here in half.


@pytest.mark.parametrize(
    ("op_type", "case", "constants"),
    [
        ("MatMul", "2d", ()),
        ("MatMul", "vector_times_matrix", ()),
        ("MatMul", "matrix_times_vector", ()),
        ("MatMul", "batch_broadcast_4d", ()),
        ("MatMul", "batched_times_matrix", ("b",)),
        ("Gemm", "alpha_beta_row_c", ()),
        ("Gemm", "scalar_c", ()),
        ("Gemm", "full_c", ("b", "c")),
        ("Gemm", "trans_a", ("b", "c")),
        ("Gemm", "trans_both", ("b",)),
    ],
)
def test_half_storage(op_type: str, case: str, constants: tuple[str, ...]) -> None:
    if op_type == "MatMul":
        a_shape, b_shape = MATMUL_CASES[case]
        inputs = {"a": half_rounded(random(a_shape, 14)), "b": half_rounded(random(b_shape, 15))}
        attrs: dict = {}
        expected = matmul_reference(inputs["a"], inputs["b"])
    else:
        raw, attrs, _ = _gemm_inputs(case, seed=16)
        inputs = {name: half_rounded(value) for name, value in raw.items() if value is not None}
        expected = gemm_reference(
            inputs["a"],
            inputs["b"],
            inputs.get("c"),
            attrs["alpha"],
            attrs["beta"],
            attrs["transA"],
            attrs["transB"],
        )
    (result,) = run_node(op_type, inputs, attrs=attrs, constant_inputs=set(constants), data_type="fp16_fp32")
    assert result.shape == expected.shape
    # Operands are exact in half and the products are summed in float: one rounding, the
    # output's store. Products of both signs (and beta * C) cancel, so the float32 sums'
    # error is relative to the largest output (the default scale), not to each output.
    assert_close_half(result, expected, roundings=1)


# ---- rejected inputs and attributes ----------------------------------------------------


def _rejects(
    op_type: str, inputs: dict, pattern: str, attrs: dict | None = None, constants: set | None = None
) -> None:
    with pytest.raises(OpError, match=pattern) as info:
        run_node(op_type, inputs, attrs=attrs, constant_inputs=constants or set())
    assert f"'node' ({op_type})" in str(info.value)


def test_inner_dimension_mismatch_rejected() -> None:
    _rejects("MatMul", {"a": random((3, 4), 1), "b": random((5, 2), 2)}, r"inner dimensions differ")


def test_batch_mismatch_rejected() -> None:
    _rejects(
        "MatMul", {"a": random((2, 3, 4), 1), "b": random((3, 4, 2), 2)}, r"batch axes: shapes \[2\], \[3\]"
    )


def test_gemm_needs_2d() -> None:
    _rejects("Gemm", {"a": random((2, 3, 4), 1), "b": random((4, 2), 2)}, r"A and B must be 2-D")


def test_gemm_transpose_flag_checked() -> None:
    _rejects(
        "Gemm",
        {"a": random((3, 4), 1), "b": random((4, 2), 2)},
        r"transA and transB must be 0 or 1",
        {"transA": 2},
    )


def test_gemm_c_must_broadcast() -> None:
    inputs = {"a": random((3, 4), 1), "b": random((4, 2), 2), "c": random((3, 2, 1), 3)}
    _rejects("Gemm", inputs, r"C cannot be broadcast to the result", constants={"c"})


def test_scalar_input_rejected() -> None:
    _rejects("MatMul", {"a": random((), 1), "b": random((3,), 2)}, r"input 0 must have at least one axis")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
