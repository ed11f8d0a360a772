"""kernels/pooling.cl (ops/pooling.py) against a direct numpy pooling written from the ONNX spec."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.execution import engine
from mace_cl.execution.engine import MaceRuntime
from mace_cl.model.graph import Graph, Node, TensorInfo
from mace_cl.planning.ops import pooling as pooling_ops
from mace_cl.planning.ops.base import CounterArg, IntArg, OpError, OpPlan
from mace_cl.planning.planner import plan_graph
from mace_cl.testing import assert_close_half, device_under_test, half_rounded, plan_kind_under_test, run_node

# Max pooling picks an input value, so it is exact. Averages sum at most a few dozen
# float32 values in [-1, 1] in another order than the float64 reference and divide
# once: a few ulp, far below a wrong divisor or a missing tap (>= 1e-3).
RTOL = 1e-5
ATOL = 1e-5


def _output_size(
    size: int, kernel: int, stride: int, begin: int, end: int, dilation: int, ceil_mode: bool
) -> int:
    span = size + begin + end - (kernel - 1) * dilation - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    # ONNX (as PyTorch): a window starting in the end padding is dropped.
    return out - 1 if (out - 1) * stride >= size + begin else out


def pool_reference(
    x: np.ndarray,
    kind: str,
    kernel: tuple[int, int],
    strides: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilations: tuple[int, int] = (1, 1),
    ceil_mode: bool = False,
    count_include_pad: bool = False,
) -> np.ndarray:
    """2-D pooling per output pixel: the window's taps are positions
    out * stride - pad_begin + k * dilation. Max/average over the taps inside the input;
    with count_include_pad the average divides by the taps inside the padded input."""
    n, c, h, w = x.shape
    top, left, bottom, right = pads
    out_h = _output_size(h, kernel[0], strides[0], top, bottom, dilations[0], ceil_mode)
    out_w = _output_size(w, kernel[1], strides[1], left, right, dilations[1], ceil_mode)
    y = np.empty((n, c, out_h, out_w))
    for oh in range(out_h):
        rows = [oh * strides[0] - top + k * dilations[0] for k in range(kernel[0])]
        for ow in range(out_w):
            cols = [ow * strides[1] - left + k * dilations[1] for k in range(kernel[1])]
            inside_rows = [r for r in rows if 0 <= r < h]
            inside_cols = [q for q in cols if 0 <= q < w]
            window = x[:, :, inside_rows][:, :, :, inside_cols].astype(np.float64)
            if kind == "max":
                y[:, :, oh, ow] = window.max(axis=(2, 3))
                continue
            if count_include_pad:
                divisor = len([r for r in rows if -top <= r < h + bottom]) * len(
                    [q for q in cols if -left <= q < w + right]
                )
            else:
                divisor = len(inside_rows) * len(inside_cols)
            y[:, :, oh, ow] = window.sum(axis=(2, 3)) / divisor
    return y


def same_pads(size: int, kernel: int, stride: int, upper: bool) -> tuple[int, int]:
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + kernel - size)
    return (total // 2, total - total // 2) if upper else (total - total // 2, total // 2)


def random_input(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def check(result: np.ndarray, expected: np.ndarray) -> None:
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=RTOL, atol=ATOL)


# name: (x shape, kernel, strides, pads (t, l, b, r), dilations, ceil_mode)
CASES = {
    "3x3_s2_p1_c5_batch2": ((2, 5, 9, 11), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), False),
    "2x2_s2_c1": ((1, 1, 6, 8), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False),
    "3x3_s2_ceil_even": ((1, 6, 8, 8), (3, 3), (2, 2), (0, 0, 0, 0), (1, 1), True),
    "2x2_s2_ceil_drops_window_in_pad": ((1, 3, 5, 5), (2, 2), (2, 2), (1, 1, 1, 1), (1, 1), True),
    "5x5_s3_p2_ceil_past_end_pad": ((1, 4, 10, 12), (5, 5), (3, 3), (2, 2, 2, 2), (1, 1), True),
    "2x3_s3_asymmetric_pads": ((2, 7, 10, 9), (2, 3), (3, 2), (1, 0, 0, 2), (1, 1), False),
    "3x3_dilation2": ((1, 5, 9, 8), (3, 3), (1, 1), (2, 1, 0, 2), (2, 2), False),
    "3x3_p1_on_1x1_input": ((2, 3, 1, 1), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), False),
    "7x7_s1_c9": ((1, 9, 7, 8), (7, 7), (1, 1), (3, 3, 3, 3), (1, 1), False),
    # pool2d_o16 (cpu plans): full groups of 16 channels, a last group of 2 blocks (c40)
    # or 3 (c44), widths that end in a partial block of its 4 outputs per work-item, and
    # wide enough rows that work-items in the middle take the unchecked path
    "3x3_s2_c40_wide_ceil": ((1, 40, 9, 23), (3, 3), (2, 2), (0, 0, 0, 0), (1, 1), True),
    "3x3_s2_p1_c64_batch2": ((2, 64, 8, 10), (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), False),
    "2x2_s2_c44": ((1, 44, 6, 14), (2, 2), (2, 2), (0, 0, 0, 0), (1, 1), False),
    "3x3_s1_p1_c32_wide": ((1, 32, 5, 19), (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), False),
}


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_pool_shapes(kind: str, case: str) -> None:
    x_shape, kernel, strides, pads, dilations, ceil_mode = CASES[case]
    x = random_input(x_shape, seed=len(case))
    attrs = {
        "kernel_shape": list(kernel),
        "strides": list(strides),
        "pads": list(pads),
        "dilations": list(dilations),
        "ceil_mode": int(ceil_mode),
    }
    op_type = "MaxPool" if kind == "max" else "AveragePool"
    (result,) = run_node(op_type, {"x": x}, attrs=attrs)
    check(result, pool_reference(x, kind, kernel, strides, pads, dilations, ceil_mode))


@pytest.mark.parametrize(
    "case",
    [
        "3x3_s2_p1_c5_batch2",
        "2x2_s2_ceil_drops_window_in_pad",
        "5x5_s3_p2_ceil_past_end_pad",
        "2x3_s3_asymmetric_pads",
    ],
)
def test_average_counting_padding(case: str) -> None:
    x_shape, kernel, strides, pads, dilations, ceil_mode = CASES[case]
    x = random_input(x_shape, seed=3)
    attrs = {
        "kernel_shape": list(kernel),
        "strides": list(strides),
        "pads": list(pads),
        "ceil_mode": int(ceil_mode),
        "count_include_pad": 1,
    }
    (result,) = run_node("AveragePool", {"x": x}, attrs=attrs)
    check(
        result, pool_reference(x, "avg", kernel, strides, pads, dilations, ceil_mode, count_include_pad=True)
    )


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_auto_pad(op_type: str, auto_pad: str) -> None:
    x = random_input((1, 5, 9, 8), seed=4)
    kernel, stride = 3, 2
    if auto_pad == "VALID":
        pads = (0, 0, 0, 0)
    else:
        top, bottom = same_pads(9, kernel, stride, auto_pad == "SAME_UPPER")
        left, right = same_pads(8, kernel, stride, auto_pad == "SAME_UPPER")
        pads = (top, left, bottom, right)
    attrs = {"kernel_shape": [kernel, kernel], "strides": [stride, stride], "auto_pad": auto_pad}
    (result,) = run_node(op_type, {"x": x}, attrs=attrs)
    kind = "max" if op_type == "MaxPool" else "avg"
    check(result, pool_reference(x, kind, (kernel, kernel), (stride, stride), pads))


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
def test_pool_1d(op_type: str) -> None:
    x = random_input((2, 6, 11), seed=5)
    attrs = {"kernel_shape": [3], "strides": [2], "pads": [1, 0], "ceil_mode": 1}
    (result,) = run_node(op_type, {"x": x}, attrs=attrs)
    kind = "max" if op_type == "MaxPool" else "avg"
    expected = pool_reference(x[:, :, None], kind, (1, 3), (1, 2), (0, 1, 0, 0), ceil_mode=True)
    check(result, expected[:, :, 0])


def test_max_pool_with_omitted_indices_output() -> None:
    x = random_input((1, 3, 4, 4), seed=6)
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]}
    (result,) = run_node("MaxPool", {"x": x}, attrs=attrs)
    check(result, pool_reference(x, "max", (2, 2), (2, 2)))


@pytest.mark.parametrize("shape", [(2, 5, 7, 7), (1, 1, 3, 5), (2, 6, 1, 1), (3, 9, 10), (1, 1030, 2, 2)])
@pytest.mark.parametrize("op_type", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool(op_type: str, shape: tuple[int, ...]) -> None:
    x = random_input(shape, seed=math.prod(shape))
    (result,) = run_node(op_type, {"x": x})
    axes = tuple(range(2, len(shape)))
    reduce = np.mean if op_type == "GlobalAveragePool" else np.max
    expected = reduce(x.astype(np.float64), axis=axes, keepdims=True)
    check(result, expected)


@pytest.mark.parametrize(("kind", "kernel"), [("cpu", "pool2d_o16"), ("gpu", "pool2d")])
def test_pool_kernel_per_device_kind(kind: str, kernel: str) -> None:
    node = Node("MaxPool", "node", ["x"], ["y"], {"kernel_shape": [3, 3], "strides": [2, 2]})
    graph = Graph([TensorInfo("x", (1, 40, 9, 23))], [], [node], {})
    (plan,) = plan_graph(graph, device_kind=kind).node_plans
    assert [launch.kernel for launch in plan.launches] == [kernel]


def test_fused_activation() -> None:
    x = random_input((1, 6, 5, 5), seed=7)
    (result,) = run_node("AveragePool", {"x": x}, attrs={"kernel_shape": [2, 2], "activation": "relu"})
    check(result, np.maximum(pool_reference(x, "avg", (2, 2)), 0.0))


# ---- half storage (data_type fp16_fp32: kernels built with -DSTORAGE_HALF) -------------
# Max pooling picks an input, which half holds exactly, so its one rounding (the output's
# store) changes nothing: the strict bound (scale 0). Averages sum inputs of both signs in
# float, which cancel: their float32 error is relative to the largest output (the default
# scale); the division's error is far below half's. One rounding: the output's store.


@pytest.mark.parametrize(
    ("kind", "extra_attrs"),
    [("max", {}), ("avg", {}), ("avg", {"count_include_pad": 1})],
    ids=["max", "avg", "avg_count_include_pad"],
)
@pytest.mark.parametrize(
    "case", ["3x3_s2_p1_c5_batch2", "5x5_s3_p2_ceil_past_end_pad", "3x3_s2_c40_wide_ceil"]
)
def test_pool_half_storage(case: str, kind: str, extra_attrs: dict) -> None:
    # pool2d_o16 under the cpu plans, pool2d under the gpu plans.
    x_shape, kernel, strides, pads, dilations, ceil_mode = CASES[case]
    x = half_rounded(random_input(x_shape, seed=len(case)))
    attrs = {
        "kernel_shape": list(kernel),
        "strides": list(strides),
        "pads": list(pads),
        "dilations": list(dilations),
        "ceil_mode": int(ceil_mode),
        **extra_attrs,
    }
    count_include_pad = bool(extra_attrs.get("count_include_pad", 0))
    op_type = "MaxPool" if kind == "max" else "AveragePool"
    (result,) = run_node(op_type, {"x": x}, attrs=attrs, data_type="fp16_fp32")
    expected = pool_reference(x, kind, kernel, strides, pads, dilations, ceil_mode, count_include_pad)
    assert result.shape == expected.shape
    assert_close_half(result, expected, roundings=1, scale=0.0 if kind == "max" else None)


@pytest.mark.parametrize("shape", [(2, 5, 7, 7), (1, 37, 3, 5)])
@pytest.mark.parametrize("op_type", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool_half_storage(op_type: str, shape: tuple[int, ...]) -> None:
    # global_pool under the cpu plan, global_pool_wg under the gpu plan.
    x = half_rounded(random_input(shape, seed=math.prod(shape)))
    (result,) = run_node(op_type, {"x": x}, data_type="fp16_fp32")
    reduce = np.mean if op_type == "GlobalAveragePool" else np.max
    expected = reduce(x.astype(np.float64), axis=(2, 3), keepdims=True)
    assert result.shape == expected.shape
    assert_close_half(result, expected, roundings=1, scale=0.0 if op_type == "GlobalMaxPool" else None)


# ---- two-stage global pooling (GPU plans over many pixels) ------------------------------


@pytest.mark.parametrize("data_type", ["fp32", "fp16_fp32"])
# (9, 5, 4, 4): the finish launch's batch dimension is padded (9 -> 10) for its local size.
@pytest.mark.parametrize("shape", [(2, 5, 7, 7), (1, 37, 3, 5), (3, 9, 10), (1, 1030, 2, 2), (9, 5, 4, 4)])
@pytest.mark.parametrize(("op_type", "activation"), [("GlobalAveragePool", "relu"), ("GlobalMaxPool", "")])
def test_global_pool_in_parts(
    op_type: str, activation: str, shape: tuple[int, ...], data_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Parts of two or three pixels; some come out empty (49 pixels: 24 parts of 3, the last
    # seven hold none). Under the cpu plan: global_pool.
    monkeypatch.setattr(pooling_ops, "GLOBAL_POOL_TARGET_GROUPS", 1 << 20)
    monkeypatch.setattr(pooling_ops, "GLOBAL_POOL_MIN_PART_PIXELS", 2)
    x = random_input(shape, seed=math.prod(shape))
    if data_type == "fp16_fp32":
        x = half_rounded(x)
    attrs = {"activation": activation} if activation else {}
    (result,) = run_node(op_type, {"x": x}, attrs=attrs, data_type=data_type)
    graph = Graph([TensorInfo("x", shape)], [], [Node(op_type, "node", ["x"], ["y"], attrs)], {})
    gpu_launches = plan_graph(graph, device_kind="gpu").node_plans[0].launches
    assert [launch.kernel for launch in gpu_launches] == ["global_pool_wg", "global_pool_finish"]
    axes = tuple(range(2, len(shape)))
    reduce = np.mean if op_type == "GlobalAveragePool" else np.max
    expected = reduce(x.astype(np.float64), axis=axes, keepdims=True)
    if activation:
        expected = np.maximum(expected, 0.0)
    if data_type == "fp32":
        check(result, expected)
    else:
        assert_close_half(result, expected, roundings=1, scale=0.0 if op_type == "GlobalMaxPool" else None)


@pytest.mark.parametrize(
    ("shape", "parts"),
    [
        ((1, 96, 112, 112), 132),  # 2 work-groups of 16 blocks: 132 parts of 96 pixels
        ((1, 1152, 14, 14), 3),  # 18 work-groups; 196 pixels allow 3 parts of 64+
        ((1, 1152, 7, 7), 1),  # 49 pixels: one launch
        # 9 work-groups (one per image); 256 pixels allow 4 parts. The finish launch's batch
        # dimension is padded (9 -> 10) for its local size: the kernel is told where to stop.
        ((9, 32, 16, 16), 4),
    ],
)
def test_global_pool_parts_choice(shape: tuple[int, ...], parts: int) -> None:
    graph = Graph([TensorInfo("x", shape)], [], [Node("GlobalAveragePool", "node", ["x"], ["y"], {})], {})
    launches = plan_graph(graph, device_kind="gpu").node_plans[0].launches
    if parts == 1:
        assert [(launch.kernel, launch.global_size[2]) for launch in launches] == [("global_pool_wg", 1)]
    else:
        assert [launch.kernel for launch in launches] == ["global_pool_wg", "global_pool_finish"]
        assert (
            "-DPOOL_PARTIAL" in launches[0].program.options and launches[0].global_size[2] == shape[0] * parts
        )
        finish = launches[1]
        padded = finish.global_size[1] > shape[0]
        assert finish.args[5] == IntArg(shape[0]) and (padded or shape[0] != 9)  # batch, after parts


# ---- SqueezeExcite (internal: the converter's squeeze_excite pass) ----------------------


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _se_reference(x, w1, b1, w2, b2, hidden_activation) -> np.ndarray:
    mean = x.astype(np.float64).mean(axis=(2, 3))  # [N, C]
    hidden = mean @ w1[:, :, 0, 0].T.astype(np.float64) + (0.0 if b1 is None else b1)
    hidden = hidden_activation(hidden)
    gate = _sigmoid(hidden @ w2[:, :, 0, 0].T.astype(np.float64) + (0.0 if b2 is None else b2))
    return gate[:, :, None, None]


_SE_HIDDEN = {"relu": lambda v: np.maximum(v, 0.0), "swish": lambda v: v * _sigmoid(v), "": lambda v: v}


# (x shape, hidden size S, C_out, hidden activation, biases given); "GPU:" what the GPU
# plan's se_squeeze / se_excite work-groups cover (SE_SQUEEZE_BLOCKS = 8 channel blocks).
SE_CASES = [
    ((1, 16, 7, 7), 4, 16, "relu", True),  # small: reads x directly
    ((2, 6, 3, 5), 3, 6, "swish", True),  # two images, channels mid-block
    # many pixels: global_pool_wg parts first (CPU); GPU: 24 pixel parts
    ((1, 24, 56, 56), 8, 24, "swish", True),
    # more channel blocks than work-items (CPU), no biases; GPU: 10 channel slices, the
    # last of 3 blocks; 10 output slices
    ((1, 300, 2, 2), 75, 300, "relu", False),
    # more hidden rows than a pass holds; C_out != C
    ((1, 40, 4, 4), 300, 13, "", True),
    # GPU: two images x 2 channel slices x 7 pixel parts (the last part shorter)
    ((2, 40, 30, 30), 10, 40, "relu", True),
]


# GPU plans: with a device fence se_squeeze's last work-group computes the gate, without
# se_excite does (the runtime plans for the device under test as if it had or lacked one).
@pytest.mark.parametrize("fence", [True, False], ids=["fence", "no_fence"])
@pytest.mark.parametrize("data_type", ["fp32", "fp16_fp32"])
@pytest.mark.parametrize(("shape", "hidden", "out", "activation", "biases"), SE_CASES, ids=str)
def test_squeeze_excite(
    shape: tuple[int, ...],
    hidden: int,
    out: int,
    activation: str,
    biases: bool,
    data_type: str,
    fence: bool,
    plan_kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if plan_kind != "gpu" and not fence:
        pytest.skip("the fence only changes GPU plans")
    monkeypatch.setattr(engine, "has_device_fence", lambda device: fence)
    channels = shape[1]
    rng = np.random.default_rng(channels + hidden)
    x = random_input(shape, seed=channels)
    w1 = (rng.standard_normal((hidden, channels, 1, 1)) / np.sqrt(channels)).astype(np.float32)
    w2 = (rng.standard_normal((out, hidden, 1, 1)) / np.sqrt(hidden)).astype(np.float32)
    b1 = rng.standard_normal(hidden).astype(np.float32) if biases else None
    b2 = rng.standard_normal(out).astype(np.float32) if biases else None
    if data_type == "fp16_fp32":
        x, w1, w2 = half_rounded(x), half_rounded(w1), half_rounded(w2)
        b1, b2 = (None if b is None else half_rounded(b) for b in (b1, b2))
    attrs = {"activation": "sigmoid", **({"hidden_activation": activation} if activation else {})}
    inputs = {"x": x, "w1": w1, "b1": b1, "w2": w2, "b2": b2}
    constants = {name for name, value in inputs.items() if name != "x" and value is not None}
    (result,) = run_node("SqueezeExcite", inputs, attrs=attrs, constant_inputs=constants, data_type=data_type)
    expected = _se_reference(x, w1, b1, w2, b2, _SE_HIDDEN[activation])
    assert result.shape == expected.shape
    if data_type == "fp32":
        np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)
    else:  # the gate is stored in half: one rounding of a value in (0, 1)
        np.testing.assert_allclose(result, expected, rtol=0, atol=2**-11)


@pytest.mark.parametrize("shape", [(2, 40, 30, 30), (1, 300, 2, 2)])
def test_squeeze_excite_runs_again_with_the_same_bits(shape: tuple[int, ...]) -> None:
    # The last work-group sets its image's arrival count back to zero for the next run (a
    # count left over would leave the next run's gate unwritten: new inputs show it), and
    # adds the partial sums in one order whichever group it is (the same inputs, the same bits).
    channels = shape[1]
    rng = np.random.default_rng(3)
    constants = {
        "w1": rng.standard_normal((5, channels, 1, 1)).astype(np.float32),
        "w2": rng.standard_normal((channels, 5, 1, 1)).astype(np.float32),
    }
    node = Node("SqueezeExcite", "se", ["x", "w1", "", "w2", ""], ["y"], {"activation": "sigmoid"})
    graph = Graph([TensorInfo("x", shape)], [TensorInfo("y", (shape[0], channels, 1, 1))], [node], constants)
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind=plan_kind_under_test())
    results: dict[int, np.ndarray] = {}
    for seed in (4, 5, 4, 5):
        x = random_input(shape, seed=seed)
        result = runtime.run_dict({"x": x})["y"]
        expected = _se_reference(x, constants["w1"], None, constants["w2"], None, _SE_HIDDEN[""])
        np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(result, results.setdefault(seed, result))


def _plan_se(shape: tuple[int, ...], hidden: int, device_kind: str = "gpu", fence: bool = False) -> OpPlan:
    channels = shape[1]
    constants = {
        "w1": np.ones((hidden, channels, 1, 1), np.float32),
        "w2": np.ones((channels, hidden, 1, 1), np.float32),
    }
    node = Node("SqueezeExcite", "se", ["x", "w1", "", "w2", ""], ["y"], {"activation": "sigmoid"})
    graph = Graph([TensorInfo("x", shape)], [], [node], constants)
    return plan_graph(graph, device_kind=device_kind, device_fence=fence).node_plans[0]


@pytest.mark.parametrize(
    ("shape", "kernels"),
    [((1, 16, 7, 7), ["squeeze_excite"]), ((1, 32, 56, 56), ["global_pool_wg", "squeeze_excite"])],
)
def test_squeeze_excite_reads_x_directly_unless_large(shape: tuple[int, ...], kernels: list[str]) -> None:
    launches = _plan_se(shape, 4, "cpu").launches
    assert [launch.kernel for launch in launches] == kernels
    assert ("-DSE_DIRECT" in launches[-1].program.options) == (len(kernels) == 1)


@pytest.mark.parametrize(
    ("shape", "hidden", "squeeze_groups", "excite_groups"),
    [
        # EfficientNet-B0's widest gate: 288 channel blocks in 36 slices, 49 pixels in one
        # part; 48 hidden rows, 16 per output block, so 16 output blocks per work-group.
        ((1, 1152, 7, 7), 48, (36, 1), (18, 1)),
        # Its first: 8 blocks, 12544 pixels in 98 parts of 128; hidden 8 -> 2 rows per block,
        # and 128 blocks per work-group would be more than the 8 there are.
        ((1, 32, 112, 112), 8, (1, 98), (1, 1)),
        # Two images: each its own parts.
        ((2, 96, 56, 56), 4, (3, 2 * 24), (1, 2)),
    ],
)
def test_squeeze_excite_gpu_work_groups(
    shape: tuple[int, ...],
    hidden: int,
    squeeze_groups: tuple[int, int],
    excite_groups: tuple[int, int],
) -> None:
    squeeze, excite = _plan_se(shape, hidden).launches
    assert (squeeze.kernel, excite.kernel) == ("se_squeeze", "se_excite")
    for launch, groups in ((squeeze, squeeze_groups), (excite, excite_groups)):
        assert launch.local_size == (pooling_ops.SE_GPU_LOCAL_SIZE, 1)
        assert (launch.global_size[0] // launch.local_size[0], launch.global_size[1]) == groups


@pytest.mark.parametrize(
    ("shape", "squeeze_groups", "out_group_blocks"),
    [
        # 1024 work-items: 128 per channel block, so the 12544 pixels go in 24 parts of 512+;
        # the last group's 1024 work-items cover the 8 output blocks, 128 per block.
        ((1, 32, 112, 112), (1, 24), 8),
        # 288 output blocks in one pass of 512 (two work-items per block).
        ((1, 1152, 7, 7), (36, 1), 512),
        ((3, 1152, 7, 7), (36, 3), 512),
    ],
)
def test_squeeze_excite_last_group_computes_the_gate(
    shape: tuple[int, ...], squeeze_groups: tuple[int, int], out_group_blocks: int
) -> None:
    plan = _plan_se(shape, 8, fence=True)
    (squeeze,) = plan.launches
    assert squeeze.kernel == "se_squeeze" and "-DSE_LAST_GROUP" in squeeze.program.options
    assert squeeze.local_size == (pooling_ops.SE_LAST_GROUP_LOCAL_SIZE, 1)
    assert (squeeze.global_size[0] // squeeze.local_size[0], squeeze.global_size[1]) == squeeze_groups
    assert plan.counters == {pooling_ops.SE_ARRIVALS: shape[0]}
    counter = squeeze.args.index(CounterArg(pooling_ops.SE_ARRIVALS))
    assert squeeze.args[counter - 1] == IntArg(out_group_blocks)  # the last argument before it


def test_squeeze_excite_rejects_mismatched_weights() -> None:
    x = random_input((1, 8, 2, 2), seed=8)
    inputs = {
        "x": x,
        "w1": np.ones((2, 6, 1, 1), np.float32),
        "b1": None,
        "w2": np.ones((8, 2, 1, 1), np.float32),
    }
    with pytest.raises(OpError, match=r"do not fit 8 channels"):
        run_node("SqueezeExcite", {**inputs, "b2": None}, attrs={}, constant_inputs={"w1", "w2"})


# ---- rejected attributes -------------------------------------------------------------


def _rejects(op_type: str, attrs: dict, pattern: str, num_outputs: int = 1) -> None:
    with pytest.raises(OpError, match=pattern) as info:
        run_node(op_type, {"x": random_input((1, 3, 6, 6), seed=1)}, attrs=attrs, num_outputs=num_outputs)
    assert f"'node' ({op_type})" in str(info.value)


def test_indices_output_rejected() -> None:
    _rejects(
        "MaxPool", {"kernel_shape": [2, 2]}, r"Indices output of MaxPool is not supported", num_outputs=2
    )


def test_kernel_shape_required() -> None:
    _rejects("AveragePool", {}, r"'kernel_shape' is required")


def test_ceil_mode_must_be_a_flag() -> None:
    _rejects("MaxPool", {"kernel_shape": [2, 2], "ceil_mode": 2}, r"'ceil_mode' must be 0 or 1")


def test_ceil_mode_with_auto_pad_rejected() -> None:
    _rejects(
        "MaxPool",
        {"kernel_shape": [2, 2], "ceil_mode": 1, "auto_pad": "SAME_UPPER"},
        r"ceil_mode=1 with auto_pad",
    )


def test_window_larger_than_input_rejected() -> None:
    _rejects("MaxPool", {"kernel_shape": [7, 7]}, r"larger than the padded input")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
