"""kernels/deconv2d.cl (ops/deconv.py) against a scatter-form numpy ConvTranspose from the ONNX spec."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.planning.ops.base import OpError
from mace_cl.testing import assert_close_half, half_rounded, run_node

# Each output sums at most R = C_in/group * KH * KW float32 products of values in
# [-1, 1], in another order than the float64 reference; see test_conv2d.py.
RTOL = 1e-4
ATOL_PER_TERM = 1e-6


def conv_transpose_reference(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    strides: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilations: tuple[int, int] = (1, 1),
    group: int = 1,
    output_padding: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """ONNX ConvTranspose, 2-D, scatter form: input pixel (h, w) adds x * W[:, :, i, j]
    at output (h * stride + i * dilation, ...) of the full output, which is then cropped
    by ``pads`` = (top, left, bottom, right). output_padding extends the full output at
    the end (those rows get only the bias)."""
    n, c_in, h, wd = x.shape
    _, group_out_c, kh, kw = w.shape
    group_in_c = c_in // group
    sh, sw = strides
    dh, dw = dilations
    full_h = sh * (h - 1) + output_padding[0] + (kh - 1) * dh + 1
    full_w = sw * (wd - 1) + output_padding[1] + (kw - 1) * dw + 1
    y = np.zeros((n, group_out_c * group, full_h, full_w))
    for g in range(group):
        xs = x[:, g * group_in_c : (g + 1) * group_in_c].astype(np.float64)
        ws = w[g * group_in_c : (g + 1) * group_in_c].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                contribution = np.einsum("nchw,cm->nmhw", xs, ws[:, :, i, j])
                y[
                    :,
                    g * group_out_c : (g + 1) * group_out_c,
                    i * dh : i * dh + sh * (h - 1) + 1 : sh,
                    j * dw : j * dw + sw * (wd - 1) + 1 : sw,
                ] += contribution
    top, left, bottom, right = pads
    y = y[:, :, top : full_h - bottom, left : full_w - right]
    if bias is not None:
        y += bias.astype(np.float64)[None, :, None, None]
    return y


def random_case(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], seed: int, bias: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, x_shape).astype(np.float32)
    w = rng.uniform(-1, 1, w_shape).astype(np.float32)
    # Callers cut the bias to C_out, which depends on the group count.
    b = rng.uniform(-1, 1, 64).astype(np.float32) if bias else None
    return x, w, b


def run_deconv(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, attrs: dict, data_type: str = "fp32"
) -> np.ndarray:
    (result,) = run_node(
        "ConvTranspose",
        {"x": x, "w": w, "b": b},
        attrs=attrs,
        constant_inputs={"w", "b"},
        data_type=data_type,
    )
    return result


def assert_close(result: np.ndarray, expected: np.ndarray, w: np.ndarray) -> None:
    assert result.shape == expected.shape
    terms = w.shape[0] * math.prod(w.shape[2:])
    np.testing.assert_allclose(result, expected, rtol=RTOL, atol=ATOL_PER_TERM * terms)


# name: (x shape, w shape [C_in, C_out/group, KH, KW], strides, pads (t, l, b, r), dilations, group, output_padding)
CASES = {
    "k3_s2_p1_op1_c5_to_c7_batch2": ((2, 5, 4, 5), (5, 7, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1, (1, 1)),
    "k4_s2_p1_c8_to_c4": ((1, 8, 5, 3), (8, 4, 4, 4), (2, 2), (1, 1, 1, 1), (1, 1), 1, (0, 0)),
    "k3_s3_dilation2_asymmetric": ((1, 3, 4, 3), (3, 6, 3, 3), (3, 3), (2, 0, 1, 3), (2, 2), 1, (2, 1)),
    "k3_s1_full_c1": ((2, 1, 5, 6), (1, 1, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1, (0, 0)),
    "k5_s2_on_1x1_input": ((1, 6, 1, 1), (6, 3, 5, 5), (2, 2), (0, 0, 0, 0), (1, 1), 1, (0, 0)),
    "k2x3_s2x1": ((1, 4, 3, 5), (4, 5, 2, 3), (2, 1), (0, 1, 1, 0), (1, 1), 1, (1, 0)),
    "group2_c6_to_c10": ((2, 6, 4, 4), (6, 5, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2, (1, 1)),
    "depthwise_c4": ((1, 4, 5, 6), (4, 1, 3, 3), (2, 2), (1, 1, 0, 0), (1, 1), 4, (0, 0)),
    "k7_s1_p3": ((1, 2, 6, 7), (2, 3, 7, 7), (1, 1), (3, 3, 3, 3), (1, 1), 1, (0, 0)),
}


def _case_attrs(case: str) -> dict:
    """The ConvTranspose attributes of ``CASES[case]``."""
    _, _, strides, pads, dilations, group, output_padding = CASES[case]
    return {
        "strides": list(strides),
        "pads": list(pads),
        "dilations": list(dilations),
        "group": group,
        "output_padding": list(output_padding),
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_transpose_shapes(case: str) -> None:
    x_shape, w_shape, strides, pads, dilations, group, output_padding = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=len(case))
    b = b[: w_shape[1] * group]
    attrs = _case_attrs(case)
    expected = conv_transpose_reference(x, w, b, strides, pads, dilations, group, output_padding)
    assert_close(run_deconv(x, w, b, attrs), expected, w)


def test_without_bias_and_default_attributes() -> None:
    x, w, _ = random_case((1, 3, 4, 5), (3, 2, 3, 3), seed=2, bias=False)
    assert_close(run_deconv(x, w, None, {}), conv_transpose_reference(x, w, None), w)


def _spec_pads(total: int, upper: bool) -> tuple[int, int]:
    """ONNX: SAME_UPPER -> (total/2, rest); otherwise (rest, total/2)."""
    return (total // 2, total - total // 2) if upper else (total - total // 2, total // 2)


@pytest.mark.parametrize(
    ("attrs", "upper", "target"),
    [
        ({"output_shape": [9, 10]}, False, (9, 10)),
        ({"output_shape": [1, 4, 8, 9]}, False, (8, 9)),  # N and C listed too
        ({"output_shape": [9, 8], "auto_pad": "SAME_UPPER"}, True, (9, 8)),
        ({"auto_pad": "SAME_UPPER"}, True, (8, 10)),
        ({"auto_pad": "SAME_LOWER"}, False, (8, 10)),
    ],
)
def test_output_shape_and_auto_pad(attrs: dict, upper: bool, target: tuple[int, int]) -> None:
    x, w, b = random_case((1, 3, 4, 5), (3, 4, 3, 3), seed=5)
    b = b[:4]
    strides = (2, 2)
    # Full output 2 * (4 - 1) + 3 = 9 rows, 2 * (5 - 1) + 3 = 11 columns.
    top, bottom = _spec_pads(9 - target[0], upper)
    left, right = _spec_pads(11 - target[1], upper)
    expected = conv_transpose_reference(x, w, b, strides, (top, left, bottom, right))
    result = run_deconv(x, w, b, {"strides": list(strides), **attrs})
    assert result.shape[2:] == target
    assert_close(result, expected, w)


def test_conv_transpose_1d() -> None:
    x, w, b = random_case((2, 5, 7), (5, 3, 4), seed=6)
    b = b[:3]
    attrs = {"strides": [3], "pads": [1, 2], "output_padding": [1], "dilations": [2]}
    expected = conv_transpose_reference(
        x[:, :, None], w[:, :, None], b, (1, 3), (0, 1, 0, 2), (1, 2), 1, (0, 1)
    )
    assert_close(run_deconv(x, w, b, attrs), expected[:, :, 0], w)


def test_fused_activation() -> None:
    x, w, b = random_case((1, 5, 3, 4), (5, 6, 3, 3), seed=7)
    b = b[:6]
    expected = np.maximum(conv_transpose_reference(x, w, b, (2, 2), (1, 1, 1, 1)), 0.0)
    assert_close(
        run_deconv(x, w, b, {"strides": [2, 2], "pads": [1, 1, 1, 1], "activation": "relu"}), expected, w
    )


# ---- half storage (data_type fp16_fp32: kernels built with -DSTORAGE_HALF) -------------


@pytest.mark.parametrize(
    "case", ["k3_s2_p1_op1_c5_to_c7_batch2", "k3_s3_dilation2_asymmetric", "group2_c6_to_c10", "depthwise_c4"]
)
def test_half_storage(case: str) -> None:
    # deconv2d under either plan kind, with input, filter and bias stored in half.
    x_shape, w_shape, strides, pads, dilations, group, output_padding = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=len(case))
    assert b is not None
    x, w, b = half_rounded(x), half_rounded(w), half_rounded(b[: w_shape[1] * group])
    attrs = _case_attrs(case)
    expected = conv_transpose_reference(x, w, b, strides, pads, dilations, group, output_padding)
    result = run_deconv(x, w, b, attrs, data_type="fp16_fp32")
    assert result.shape == expected.shape
    # Inputs and weights are exact in half, the sums float: one rounding, the output's
    # store. Terms of both signs cancel, so the float32 sums' error is relative to the
    # largest output (the default scale), not to each output.
    assert_close_half(result, expected, roundings=1)


def _rejects(attrs: dict, pattern: str, w_shape: tuple[int, ...] = (4, 2, 3, 3)) -> None:
    x, w, _ = random_case((1, 4, 3, 3), w_shape, seed=1, bias=False)
    with pytest.raises(OpError, match=pattern) as info:
        run_deconv(x, w, None, attrs)
    assert "'node' (ConvTranspose)" in str(info.value)


@pytest.mark.parametrize("auto_pad", ["NOTSET", "SAME_UPPER", "SAME_LOWER"])
def test_output_shape_larger_than_covered(auto_pad: str) -> None:
    """output_shape past the covered extent (ONNX allows it): no pads, and the extra
    rows/columns at the end hold only the bias, as in onnxruntime and ONNX's reference."""
    x, w, b = random_case((2, 5, 3, 4), (5, 6, 3, 3), seed=8)
    b = b[:6]
    strides = (2, 3)
    # Full output 2 * (3 - 1) + 3 = 7 rows, 3 * (4 - 1) + 3 = 12 columns; ask for 10 x 15.
    covered = conv_transpose_reference(x, w, b, strides)
    expected = np.broadcast_to(b.astype(np.float64)[None, :, None, None], (2, 6, 10, 15)).copy()
    expected[:, :, :7, :12] = covered
    result = run_deconv(x, w, b, {"strides": list(strides), "output_shape": [10, 15], "auto_pad": auto_pad})
    assert result.shape == (2, 6, 10, 15)
    assert_close(result, expected, w)
    # The extra border is exactly the bias (nothing else can land there).
    np.testing.assert_array_equal(result[:, :, 7:, :], np.broadcast_to(b[None, :, None, None], (2, 6, 3, 15)))


def test_output_shape_larger_on_one_axis_only() -> None:
    # Rows: 7 covered, 5 asked (pads 1 + 1); columns: 12 covered, 13 asked (one extra).
    x, w, b = random_case((1, 5, 3, 4), (5, 6, 3, 3), seed=9)
    b = b[:6]
    covered = conv_transpose_reference(x, w, b, (2, 3), (1, 0, 1, 0))
    expected = np.broadcast_to(b.astype(np.float64)[None, :, None, None], (1, 6, 5, 13)).copy()
    expected[:, :, :, :12] = covered
    assert_close(run_deconv(x, w, b, {"strides": [2, 3], "output_shape": [5, 13]}), expected, w)


def test_output_shape_must_be_positive() -> None:
    _rejects({"output_shape": [0, 5]}, r"output_shape must be positive")


def test_group_must_divide_channels() -> None:
    _rejects({"group": 3}, r"group 3 must divide")


def test_weight_rows_must_match_channels() -> None:
    _rejects({}, r"must have 4 rows", w_shape=(2, 2, 3, 3))


def test_pads_removing_everything_rejected() -> None:
    _rejects({"pads": [3, 0, 3, 0]}, r"remove the whole output")


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
