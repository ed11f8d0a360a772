"""kernels/conv2d.cl, conv2d_o16.cl and conv2d_gpu.cl (ops/conv.py) against a direct numpy
convolution from the ONNX spec, with float32 and half storage."""

from __future__ import annotations

import ctypes
import math
import mmap
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyopencl as cl
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl.execution import engine
from mace_cl.execution.device import select_device
from mace_cl.execution.engine import MaceRuntime
from mace_cl.model.graph import Graph, Node, TensorInfo
from mace_cl.planning.kernel_sources import program_source
from mace_cl.planning.layout import channel_blocks
from mace_cl.planning.ops import conv as conv_ops
from mace_cl.planning.ops import conv_kernels, winograd
from mace_cl.planning.ops.base import ConstantArg, IntArg, KernelLaunch, OpError, OutputArg, TensorArg
from mace_cl.planning.planner import plan_graph
from mace_cl.testing import assert_close_half, device_under_test, half_rounded, run_node

# The kernel sums R = C_in/group * KH * KW float32 products (inputs and weights in
# [-1, 1]) in another order than the float64 reference. Rounding error grows with R
# (about sqrt(R) * 6e-8 * |partial sums| typically); 1e-6 * R bounds it with margin and
# is still far below what one wrong or missing tap changes (~1e-2).
RTOL = 1e-4
ATOL_PER_TERM = 1e-6


def conv_reference(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    strides: tuple[int, int] = (1, 1),
    pads: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilations: tuple[int, int] = (1, 1),
    group: int = 1,
) -> np.ndarray:
    """ONNX Conv, 2-D: y[n, m] = sum over the group's input channels and taps of the
    zero-padded input times the weights. ``pads`` = (top, left, bottom, right)."""
    n, _, h, wd = x.shape
    c_out, group_in_c, kh, kw = w.shape
    top, left, bottom, right = pads
    sh, sw = strides
    dh, dw = dilations
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))
    out_h = (h + top + bottom - (kh - 1) * dh - 1) // sh + 1
    out_w = (wd + left + right - (kw - 1) * dw - 1) // sw + 1
    y = np.zeros((n, c_out, out_h, out_w))
    group_out_c = c_out // group
    for g in range(group):
        xs = padded[:, g * group_in_c : (g + 1) * group_in_c]
        ws = w[g * group_out_c : (g + 1) * group_out_c].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = xs[
                    :,
                    :,
                    i * dh : i * dh + (out_h - 1) * sh + 1 : sh,
                    j * dw : j * dw + (out_w - 1) * sw + 1 : sw,
                ]
                y[:, g * group_out_c : (g + 1) * group_out_c] += np.einsum(
                    "nchw,mc->nmhw", patch, ws[:, :, i, j]
                )
    if bias is not None:
        y += bias.astype(np.float64)[None, :, None, None]
    return y


def same_pads(size: int, kernel: int, stride: int, dilation: int, upper: bool) -> tuple[int, int]:
    """auto_pad SAME_*: output = ceil(size / stride); the odd pad pixel goes last for UPPER."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    small, large = total // 2, total - total // 2
    return (small, large) if upper else (large, small)


def random_case(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], seed: int, bias: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, x_shape).astype(np.float32)
    w = rng.uniform(-1, 1, w_shape).astype(np.float32)
    b = rng.uniform(-1, 1, w_shape[0]).astype(np.float32) if bias else None
    return x, w, b


def run_conv(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None, attrs: dict, constant_bias: bool = True
) -> np.ndarray:
    inputs = {"x": x, "w": w, "b": b}
    constants = {"w", "b"} if constant_bias else {"w"}
    (result,) = run_node("Conv", inputs, attrs=attrs, constant_inputs=constants)
    return result


def assert_conv_close(result: np.ndarray, expected: np.ndarray, w: np.ndarray) -> None:
    assert result.shape == expected.shape
    terms = w.shape[1] * math.prod(w.shape[2:])
    np.testing.assert_allclose(result, expected, rtol=RTOL, atol=ATOL_PER_TERM * terms)


# name: (x shape, w shape, strides, pads (t, l, b, r), dilations, group)
CASES = {
    "3x3_pad1_c5_to_c7_batch2": ((2, 5, 9, 11), (7, 5, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    "3x3_stride2_asymmetric_pads": ((1, 3, 10, 7), (6, 3, 3, 3), (2, 2), (1, 0, 2, 1), (1, 1), 1),
    "3x3_stride3_dilation2": ((1, 4, 13, 12), (5, 4, 3, 3), (3, 3), (2, 2, 2, 2), (2, 2), 1),
    "3x3_no_pad_to_1x1": ((2, 6, 3, 3), (4, 6, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "3x3_on_1x1_input": ((2, 9, 1, 1), (3, 9, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    "5x5_c1_input": ((1, 1, 8, 9), (3, 1, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),
    "7x7_stride2_stem": ((1, 3, 15, 15), (8, 3, 7, 7), (2, 2), (3, 3, 3, 3), (1, 1), 1),
    "c1_to_c1": ((2, 1, 5, 6), (1, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    "2x5_stride_2x1": ((1, 5, 9, 10), (4, 5, 2, 5), (2, 1), (0, 2, 1, 2), (1, 1), 1),
    "1x3_and_dilation_1x2": ((1, 4, 6, 11), (9, 4, 1, 3), (1, 1), (0, 2, 0, 2), (1, 2), 1),
    "1x1_c6_to_c10_batch2": ((2, 6, 5, 7), (10, 6, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "1x1_stride2": ((1, 8, 7, 9), (5, 8, 1, 1), (2, 2), (0, 0, 0, 0), (1, 1), 1),
    "1x1_stride3_1x1_input": ((2, 3, 1, 1), (7, 3, 1, 1), (3, 3), (0, 0, 0, 0), (1, 1), 1),
    "1x1_padded": ((1, 5, 4, 3), (3, 5, 1, 1), (1, 1), (1, 0, 0, 2), (1, 1), 1),
    "group2_outputs_straddle_blocks": ((1, 8, 6, 5), (6, 4, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),
    "group2_inputs_straddle_blocks": ((2, 6, 5, 5), (10, 3, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2),
    "group4_aligned": ((1, 16, 5, 6), (16, 4, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 4),
    "group8_1x1": ((1, 32, 5, 6), (40, 4, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 8),
    "group3_5x5": ((1, 9, 7, 7), (6, 3, 5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 3),
    # Grouped 1x1s on conv1x1_o32 -DGROUPED (ShuffleNet v1's shapes): groups of 34
    # channels straddle float4 blocks on the input side and 16-channel groups (and pairs
    # of them) on the output side; group 3 with 16 outputs per group splits pairs.
    "group4_1x1_c136_to_c544": ((1, 136, 3, 5), (544, 34, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 4),
    "group4_1x1_c136_to_c136": ((1, 136, 4, 4), (136, 34, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 4),
    "group3_1x1_c24_to_c48_batch2": ((2, 24, 3, 4), (48, 8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 3),
    # groups of 35 outputs (a chunk of 32 and one of 3) from 10 inputs (groups start
    # mid-block); groups of 10 outputs ending in padding lanes (30 channels)
    "group2_1x1_c20_to_c70_7x3": ((1, 20, 7, 3), (70, 10, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2),
    "group3_1x1_c24_to_c30_batch2": ((2, 24, 5, 3), (30, 8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 3),
    # groups of 20 outputs (chunks of 17 to 31 channels: a partial second half); 225
    # pixels in 33 blocks over 22 work-items, so some loop over a second block
    "group3_1x1_c24_to_c60_15x15": ((1, 24, 15, 15), (60, 8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 3),
    # a 0/1 permutation matrix gets a gather (test_channel_permutation); random weights here
    "shuffle_c40_groups4": ((1, 40, 3, 5), (40, 40, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "depthwise_3x3_c5_batch2": ((2, 5, 7, 9), (5, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 5),
    "depthwise_3x3_stride2_tf_pads": ((1, 8, 9, 8), (8, 1, 3, 3), (2, 2), (0, 0, 1, 1), (1, 1), 8),
    "depthwise_5x5_dilation2": ((1, 3, 11, 10), (3, 1, 5, 5), (1, 1), (4, 4, 4, 4), (2, 2), 3),
    "depthwise_7x7_stride3": ((1, 6, 10, 13), (6, 1, 7, 7), (3, 3), (3, 2, 3, 1), (1, 1), 6),
    "depthwise_multiplier2": ((1, 3, 6, 7), (6, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 3),
    "depthwise_multiplier3_c5": ((2, 5, 5, 4), (15, 1, 3, 3), (2, 1), (1, 1, 1, 1), (1, 1), 5),
    # Shapes aimed at the 16-channel kernels (conv2d_o16.cl): channel counts that end in
    # a partial group of 16 (and a partial float4), pixel counts that end in a partial
    # block of work-item outputs, widths not a multiple of 4.
    "1x1_c20_to_c33_9_pixels": ((1, 20, 3, 3), (33, 20, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "1x1_c7_to_c18_3_pixels": ((3, 7, 1, 1), (18, 7, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "1x1_c16_to_c48_batch2": ((2, 16, 6, 5), (48, 16, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "1x1_c24_to_c64_7x7": ((1, 24, 7, 7), (64, 24, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "1x1_c20_to_c30_7x5": ((1, 20, 7, 5), (30, 20, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    # few pixels, many channels: each conv1x1_o32 work-item loops over several blocks
    "1x1_c8_to_c300_13x13": ((1, 8, 13, 13), (300, 8, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    "3x3_stride2_c3_to_c32_stem": ((1, 3, 17, 15), (32, 3, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
    "depthwise_3x3_c16_stride2": ((1, 16, 9, 10), (16, 1, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 16),
    "depthwise_3x3_c30_batch2": ((2, 30, 7, 6), (30, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 30),
    "depthwise_5x5_c64_dilation2": ((1, 64, 11, 9), (64, 1, 5, 5), (1, 1), (4, 3, 4, 5), (2, 2), 64),
    # Wide enough that some work-items take the interior (unchecked) paths: stride 1
    # and 2 have their own constant-stride copy in depthwise_o16, dilation the generic one.
    "depthwise_3x3_c32_stride1_wide": ((1, 32, 5, 37), (32, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 32),
    "depthwise_3x3_c48_stride2_wide_batch2": (
        (2, 48, 6, 41),
        (48, 1, 3, 3),
        (2, 2),
        (1, 1, 1, 1),
        (1, 1),
        48,
    ),
    "depthwise_3x3_c16_dilation2_wide": ((1, 16, 7, 40), (16, 1, 3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 16),
    # C4 not a multiple of 4: depthwise_o16's last group reads 2 (c136) or 3 (c44) blocks
    "depthwise_3x3_c136_stride2": ((1, 136, 9, 20), (136, 1, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 136),
    "depthwise_3x3_c44_wide": ((1, 44, 5, 37), (44, 1, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 44),
    "3x3_c5_to_c20_wide": ((1, 5, 4, 23), (20, 5, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    # conv2d_o32 looping over output rows: 280 rows of one work-item each (one pair, one
    # block of 7 columns) exceed its 256 work-items, so some take a second row (of the
    # other batch)
    "3x3_c8_to_c20_tall_batch2": ((2, 8, 140, 5), (20, 8, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    # conv2d_o32 with a pair whose second 16-channel group is padding only
    "5x5_stride2_c3_to_c40": ((1, 3, 13, 17), (40, 3, 5, 5), (2, 2), (2, 2, 2, 2), (1, 1), 1),
    # Aimed at conv2d_gpu_tiled's edges: input channel blocks that end in a partial K
    # step (C4 = 5, 10, 9), output blocks that end in a partial tile (9, 18, 5 against
    # TILE_N = 8, 16), pixel counts that end in a partial tile (63, 84, 90, 48).
    "3x3_c20_to_c36_odd_sizes": ((1, 20, 9, 7), (36, 20, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    "3x3_stride2_c40_to_c70_batch2": ((2, 40, 13, 11), (70, 40, 3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 1),
    "3x3_c64_to_c64_dilation2": ((1, 64, 10, 9), (64, 64, 3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1),
    "5x5_c33_to_c17_stride_1x2": ((1, 33, 8, 12), (17, 33, 5, 5), (1, 2), (2, 1, 0, 3), (1, 1), 1),
    # Above ops/winograd.py's thresholds: CPU plans run F(2x2, 3x3). C_in 36 ends in a
    # one-block 16-channel group, C_out 40 in a pair whose second group is padding only;
    # asymmetric pads; the 13x11 output of the second ends in half tiles on both axes.
    "3x3_c36_to_c40_batch2_winograd": ((2, 36, 9, 13), (40, 36, 3, 3), (1, 1), (1, 0, 2, 1), (1, 1), 1),
    "3x3_c48_to_c64_odd_sizes_winograd": ((1, 48, 13, 11), (64, 48, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
    # last 16-channel groups of 13 and 14 channels, in four blocks each
    "3x3_c45_to_c46_winograd": ((1, 45, 12, 14), (46, 45, 3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_shapes(case: str) -> None:
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=len(case))
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    result = run_conv(x, w, b, attrs)
    assert_conv_close(result, conv_reference(x, w, b, strides, pads, dilations, group), w)


@pytest.mark.parametrize(
    "case", ["3x3_pad1_c5_to_c7_batch2", "1x1_c6_to_c10_batch2", "depthwise_3x3_c5_batch2"]
)
def test_without_bias_and_default_attributes(case: str) -> None:
    x_shape, w_shape, _, _, _, group = CASES[case]
    x, w, _ = random_case(x_shape, w_shape, seed=3, bias=False)
    result = run_conv(x, w, None, {"group": group})
    assert_conv_close(result, conv_reference(x, w, None, group=group), w)


def test_runtime_bias() -> None:
    x, w, b = random_case((1, 5, 6, 6), (6, 5, 3, 3), seed=4)
    result = run_conv(x, w, b, {"pads": [1, 1, 1, 1]}, constant_bias=False)
    assert_conv_close(result, conv_reference(x, w, b, pads=(1, 1, 1, 1)), w)


# A run-time bias keeps group-1 convolutions on conv2d.cl's float4 kernels (the o16
# kernels read the bias as whole groups of 16), so these cases cover those paths too.
@pytest.mark.parametrize(
    "case",
    [
        "1x1_c6_to_c10_batch2",
        "1x1_stride2",
        "3x3_stride2_asymmetric_pads",
        "5x5_c1_input",
        "3x3_on_1x1_input",
    ],
)
def test_float4_kernels_with_runtime_bias(case: str) -> None:
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=len(case) + 1)
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    result = run_conv(x, w, b, attrs, constant_bias=False)
    assert_conv_close(result, conv_reference(x, w, b, strides, pads, dilations, group), w)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation"), [((9, 8), 3, 2, 1), ((7, 6), 4, 1, 1), ((8, 9), 3, 1, 2)]
)
def test_auto_pad_same(auto_pad: str, size: tuple[int, int], kernel: int, stride: int, dilation: int) -> None:
    x, w, b = random_case((1, 3, *size), (5, 3, kernel, kernel), seed=kernel + stride)
    attrs = {"auto_pad": auto_pad, "strides": [stride, stride], "dilations": [dilation, dilation]}
    upper = auto_pad == "SAME_UPPER"
    top, bottom = same_pads(size[0], kernel, stride, dilation, upper)
    left, right = same_pads(size[1], kernel, stride, dilation, upper)
    expected = conv_reference(x, w, b, (stride, stride), (top, left, bottom, right), (dilation, dilation))
    result = run_conv(x, w, b, attrs)
    assert result.shape[2:] == (-(-size[0] // stride), -(-size[1] // stride))
    assert_conv_close(result, expected, w)


def test_auto_pad_valid() -> None:
    x, w, b = random_case((1, 4, 9, 10), (3, 4, 3, 3), seed=8)
    result = run_conv(x, w, b, {"auto_pad": "VALID", "strides": [2, 2]})
    assert_conv_close(result, conv_reference(x, w, b, strides=(2, 2)), w)


def test_kernel_shape_attribute_is_accepted() -> None:
    x, w, b = random_case((1, 2, 5, 5), (3, 2, 3, 1), seed=9)
    result = run_conv(x, w, b, {"kernel_shape": [3, 1]})
    assert_conv_close(result, conv_reference(x, w, b), w)


@pytest.mark.parametrize(
    ("length", "kernel", "stride", "pads", "dilation"),
    [(17, 3, 2, (1, 2), 2), (5, 1, 1, (0, 0), 1), (9, 5, 1, (2, 2), 1)],
)
def test_conv1d(length: int, kernel: int, stride: int, pads: tuple[int, int], dilation: int) -> None:
    x, w, b = random_case((2, 5, length), (6, 5, kernel), seed=length)
    attrs = {"strides": [stride], "pads": list(pads), "dilations": [dilation]}
    result = run_conv(x, w, b, attrs)
    expected = conv_reference(
        x[:, :, None], w[:, :, None], b, (1, stride), (0, pads[0], 0, pads[1]), (1, dilation)
    )
    assert_conv_close(result, expected[:, :, 0], w)


@pytest.mark.parametrize(
    ("case", "attrs", "reference"),
    [
        ("3x3_stride2_asymmetric_pads", {"activation": "relu6"}, lambda y: np.clip(y, 0.0, 6.0)),
        ("1x1_c6_to_c10_batch2", {"activation": "sigmoid"}, lambda y: 1.0 / (1.0 + np.exp(-y))),
        ("depthwise_3x3_c5_batch2", {"activation": "relu"}, lambda y: np.maximum(y, 0.0)),
        ("1x1_c20_to_c33_9_pixels", {"activation": "sigmoid"}, lambda y: 1.0 / (1.0 + np.exp(-y))),
        (
            "depthwise_3x3_c30_batch2",
            {"activation": "hard_sigmoid"},
            lambda y: np.clip(0.2 * y + 0.5, 0.0, 1.0),
        ),
        ("3x3_stride2_c3_to_c32_stem", {"activation": "relu6"}, lambda y: np.clip(y, 0.0, 6.0)),
    ],
)
def test_fused_activation(case: str, attrs: dict, reference: Callable[[np.ndarray], np.ndarray]) -> None:
    # sigmoid(0) = 0.5 would leak into the padding lanes (C_out = 10) unless zeroed.
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=21)
    attrs = {
        **attrs,
        "strides": list(strides),
        "pads": list(pads),
        "dilations": list(dilations),
        "group": group,
    }
    expected = reference(conv_reference(x, w, b, strides, pads, dilations, group))
    assert_conv_close(run_conv(x, w, b, attrs), expected, w)


# Residual (input 3, fused by the converter's fuse_residual pass): out = act(conv + r).
# Each case once per plan kind; on CPU plans the 1x1 cases with at least 7 pixels take
# conv1x1_o32 -DRESIDUAL (partial channel groups: 10, 33 and 300 channels; a partial
# pixel block: 9 pixels), on GPU plans the cases with at least GPU_TILED_MIN_C4 input
# blocks take conv2d_gpu_tiled -DRESIDUAL (1x1 with -DPOINTWISE, 3x3, strided with a
# partial output tile); the others the conv + eltwise Add fallback.
RESIDUAL_CASES = [
    ("1x1_c6_to_c10_batch2", {}),
    # 30 outputs: the last 16-channel group has 14 channels in all four blocks
    ("1x1_c20_to_c30_7x5", {"activation": "relu"}),
    ("1x1_c20_to_c33_9_pixels", {"activation": "relu"}),
    ("1x1_c8_to_c300_13x13", {}),
    ("1x1_c24_to_c64_7x7", {"activation": "relu6"}),
    ("1x1_c7_to_c18_3_pixels", {"activation": "relu"}),
    # conv1x1_o32 -DGROUPED: chunks of 32 and 3 channels starting mid-block; padding lanes
    ("group2_1x1_c20_to_c70_7x3", {"activation": "relu"}),
    ("group3_1x1_c24_to_c30_batch2", {}),
    ("group3_1x1_c24_to_c60_15x15", {"activation": "relu"}),
    ("3x3_pad1_c5_to_c7_batch2", {"activation": "relu"}),
    ("3x3_c20_to_c36_odd_sizes", {"activation": "relu"}),
    ("3x3_stride2_c40_to_c70_batch2", {}),
    ("depthwise_3x3_c30_batch2", {}),
]


@pytest.mark.parametrize(("case", "act"), RESIDUAL_CASES)
def test_residual_input(case: str, act: dict) -> None:
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=31)
    plain = conv_reference(x, w, b, strides, pads, dilations, group)
    r = np.random.default_rng(32).uniform(-1, 1, plain.shape).astype(np.float32)
    attrs = {
        **act,
        "strides": list(strides),
        "pads": list(pads),
        "dilations": list(dilations),
        "group": group,
    }
    (result,) = run_node("Conv", {"x": x, "w": w, "b": b, "r": r}, attrs=attrs, constant_inputs={"w", "b"})
    expected = plain + r
    if act.get("activation") == "relu":
        expected = np.maximum(expected, 0.0)
    elif act.get("activation") == "relu6":
        expected = np.clip(expected, 0.0, 6.0)
    assert_conv_close(result, expected, w)


@pytest.mark.parametrize(
    ("case", "kind", "launches"),
    [
        ("1x1_c6_to_c10_batch2", "cpu", [("conv1x1_o32", ("-DACTIVATION=ACT_RELU", "-DRESIDUAL"))]),
        ("1x1_c7_to_c18_3_pixels", "cpu", [("conv1x1_o16_single", ()), ("eltwise", "relu")]),
        (
            "3x3_pad1_c5_to_c7_batch2",
            "cpu",
            [("conv2d_o16", ("-DFILTER_H=3", "-DFILTER_W=3")), ("eltwise", "relu")],
        ),
        ("1x1_c6_to_c10_batch2", "gpu", [("conv2d_gpu", ()), ("eltwise", "relu")]),
        (
            "1x1_c24_to_c64_7x7",
            "gpu",
            [("conv2d_gpu_tiled", ("-DACTIVATION=ACT_RELU", "-DPOINTWISE", "-DRESIDUAL"))],
        ),
        # 8 work-groups, 18 K steps: split-K; the sum kernel adds residual and activation, or,
        # on devices with a device-wide fence, the last work-group of each tile
        (
            "3x3_c20_to_c36_odd_sizes",
            "gpu",
            [
                ("conv2d_gpu_tiled", ("-DSPLIT_K",)),
                ("conv2d_gpu_split_sum", ("-DACTIVATION=ACT_RELU", "-DRESIDUAL")),
            ],
        ),
        (
            "3x3_c20_to_c36_odd_sizes",
            "gpu+fence",
            [
                (
                    "conv2d_gpu_tiled",
                    ("-DSPLIT_K", "-DSPLIT_K_LAST_GROUP", "-DACTIVATION=ACT_RELU", "-DRESIDUAL"),
                )
            ],
        ),
    ],
)
def test_residual_fuses_where_a_kernel_adds_it(case: str, kind: str, launches: list) -> None:
    x_shape, w_shape, *_ = CASES[case]
    out_shape = (
        x_shape[0],
        w_shape[0],
        *conv_reference(*random_case(x_shape, w_shape, 0), pads=CASES[case][3]).shape[2:],
    )
    node = Node(
        "Conv", "node", ["x", "w", "", "r"], ["y"], {"activation": "relu", "pads": list(CASES[case][3])}
    )
    graph = Graph(
        [TensorInfo("x", x_shape), TensorInfo("r", out_shape)],
        [],
        [node],
        {"w": np.zeros(w_shape, np.float32)},
    )
    (plan,) = plan_graph(
        graph, device_kind=kind.removesuffix("+fence"), device_fence=kind.endswith("+fence")
    ).node_plans
    got = [(launch.kernel, launch.program.options) for launch in plan.launches]
    assert len(got) == len(launches)
    for (kernel, options), (want_kernel, want) in zip(got, launches, strict=True):
        if want_kernel == "eltwise":
            # the Add: fused activation there, none in the convolution before it
            assert (
                kernel == "eltwise"
                and "-DELTWISE_OP=OP_ADD" in options
                and "-DACTIVATION=ACT_RELU" in options
            )
            assert not any(o.startswith("-DACTIVATION") for o in got[0][1])
        else:
            assert kernel == want_kernel and set(want) <= set(options)


def test_residual_shape_must_match_output() -> None:
    node = Node("Conv", "node", ["x", "w", "", "r"], ["y"], {})
    graph = Graph(
        [TensorInfo("x", (1, 4, 3, 3)), TensorInfo("r", (1, 5, 3, 1))],
        [],
        [node],
        {"w": np.zeros((5, 4, 1, 1), np.float32)},
    )
    with pytest.raises(OpError, match="residual"):
        plan_graph(graph, device_kind="cpu")


# Input scale (input 4, folded in by the converter's channel_scale pass): conv(x * s) for
# s of shape [N, C_in, 1, 1]. GPU plans with enough input blocks take it in
# conv2d_gpu_tiled -DINPUT_SCALE (1x1, 3x3, strided, split-K); every other kernel gets the
# product from an eltwise Mul into a scratch buffer.
INPUT_SCALE_CASES = [
    ("1x1_c24_to_c64_7x7", "", ""),
    ("1x1_c20_to_c33_9_pixels", "relu", "residual"),
    ("3x3_c20_to_c36_odd_sizes", "sigmoid", ""),
    ("3x3_stride2_c40_to_c70_batch2", "", "residual"),
    ("3x3_pad1_c5_to_c7_batch2", "relu", ""),  # C4 = 2: conv2d_gpu after the Mul
    ("depthwise_3x3_c30_batch2", "", ""),
]


@pytest.mark.parametrize("data_type", ["fp32", "fp16_fp32"])
@pytest.mark.parametrize(("case", "activation", "variant"), INPUT_SCALE_CASES)
def test_input_scale(case: str, activation: str, variant: str, data_type: str, plan_kind: str) -> None:
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=41)
    scale = np.random.default_rng(42).uniform(-2, 2, (x_shape[0], x_shape[1], 1, 1)).astype(np.float32)
    half = data_type == "fp16_fp32"
    if half:
        x, w, b, scale = (half_rounded(a) for a in (x, w, b, scale))
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    if activation:
        attrs["activation"] = activation
    plain = conv_reference(x * scale, w, b, strides, pads, dilations, group)
    inputs = {"x": x, "w": w, "b": b, "r": None, "s": scale}
    if variant == "residual":
        inputs["r"] = np.random.default_rng(43).uniform(-1, 1, plain.shape).astype(np.float32)
        if half:
            inputs["r"] = half_rounded(inputs["r"])
    expected = ACTIVATIONS[activation](plain + (inputs["r"] if inputs["r"] is not None else 0.0))
    (result,) = run_node("Conv", inputs, attrs=attrs, constant_inputs={"w", "b"}, data_type=data_type)

    infos = [TensorInfo(n, v.shape) for n, v in inputs.items() if v is not None and n not in ("w", "b")]
    node = Node("Conv", "node", [n if v is not None else "" for n, v in inputs.items()], ["y"], attrs)
    graph = Graph(infos, [], [node], {"w": w, "b": b})
    launches = plan_graph(graph, device_kind=plan_kind).node_plans[0].launches
    in_kernel = any("-DINPUT_SCALE" in launch.program.options for launch in launches)
    multiplied = "-DELTWISE_OP=OP_MUL" in launches[0].program.options
    assert in_kernel != multiplied
    assert in_kernel == (plan_kind == "gpu" and group == 1 and math.ceil(x_shape[1] / 4) >= 4)
    if half:
        # The Mul stores x * s in half (one more rounding, 2^-11 of each product, which the
        # convolution carries at most as conv(|x * s|, |w|)), as does an unfused residual Add.
        roundings = 1 + multiplied + (launches[-1].kernel == "eltwise" and variant == "residual")
        carried = conv_reference(np.abs(x * scale), np.abs(w), None, strides, pads, dilations, group)
        bound = float(max(np.abs(plain).max(), np.abs(expected).max(), carried.max()))
        assert_close_half(result, expected, roundings=roundings, scale=bound)
    else:
        assert_conv_close(result, expected, w)


def test_input_scale_reaches_a_channel_permutation() -> None:
    # A 1x1 whose weights only permute channels runs as a gather, which takes no input
    # scale; a constant residual is never fused, so the plan falls back to convolution +
    # Add: the scale must still be applied (multiplied into scratch first, or in-kernel).
    rng = np.random.default_rng(51)
    x = rng.uniform(-1, 1, (1, 16, 4, 4)).astype(np.float32)
    order = rng.permutation(16)
    w = np.zeros((16, 16, 1, 1), np.float32)
    w[np.arange(16), order, 0, 0] = 1.0
    r = rng.uniform(-1, 1, (1, 16, 4, 4)).astype(np.float32)
    scale = rng.uniform(0.5, 2, (1, 16, 1, 1)).astype(np.float32)
    inputs = {"x": x, "w": w, "b": None, "r": r, "s": scale}
    (result,) = run_node("Conv", inputs, constant_inputs={"w", "r"})
    np.testing.assert_allclose(result, (x * scale)[:, order] + r, rtol=1e-6, atol=1e-6)


def test_input_scale_must_be_per_channel() -> None:
    node = Node("Conv", "node", ["x", "w", "", "", "s"], ["y"], {})
    graph = Graph(
        [TensorInfo("x", (2, 4, 3, 3)), TensorInfo("s", (2, 4, 3, 1))],
        [],
        [node],
        {"w": np.zeros((5, 4, 1, 1), np.float32)},
    )
    with pytest.raises(
        OpError, match=r"input scale \(input 4\) must be a run-time tensor of shape \[2, 4, 1, 1\]"
    ):
        plan_graph(graph, device_kind="gpu")


@pytest.mark.parametrize(
    ("case", "kernel", "options"),
    [
        ("1x1_c6_to_c10_batch2", "conv1x1_o32", ()),
        ("1x1_c7_to_c18_3_pixels", "conv1x1_o16_single", ()),
        ("1x1_stride2", "conv2d_o16", ()),
        ("1x1_padded", "conv2d_o16", ()),
        ("3x3_stride3_dilation2", "conv2d_o16", ("-DFILTER_H=3", "-DFILTER_W=3")),
        ("3x3_stride2_c3_to_c32_stem", "conv2d_o32", ("-DFILTER_H=3", "-DFILTER_W=3")),
        ("5x5_stride2_c3_to_c40", "conv2d_o32", ()),
        ("5x5_c1_input", "conv2d_o16", ()),
        ("depthwise_3x3_c16_stride2", "depthwise_o16", ("-DFILTER_H=3", "-DFILTER_W=3")),
        ("depthwise_5x5_c64_dilation2", "depthwise_o16", ()),
        # C4 not a multiple of 4: the last group of 16 reads only its blocks
        ("depthwise_3x3_stride2_tf_pads", "depthwise_o16", ("-DFILTER_H=3", "-DFILTER_W=3")),
        ("depthwise_7x7_stride3", "depthwise_o16", ()),
        # a run-time bias: the float4 depthwise kernel
        ("depthwise_7x7_stride3#runtime_bias", "depthwise_conv2d", ()),
        ("depthwise_multiplier2", "conv2d", ("-DFILTER_H=3", "-DFILTER_W=3")),
        # Up to 4 groups a 1x1 runs dense (zero weights between groups), reading only
        # each work-item's groups' inputs; beyond, grouped.
        ("group4_aligned", "conv1x1_o32", ("-DGROUPED",)),
        ("group4_1x1_c136_to_c544#relu", "conv1x1_o32", ("-DACTIVATION=ACT_RELU", "-DGROUPED")),
        ("group8_1x1", "conv2d", ("-DCONV_1X1",)),
        # a channel permutation (the converter's channel shuffle): a gather
        ("shuffle_c40_groups4", "permute_channels", ()),
        ("shuffle_c40_groups4#relu", "conv1x1_o32", ("-DACTIVATION=ACT_RELU",)),
        ("shuffle_c40_groups4#runtime_bias", "conv2d", ("-DCONV_1X1",)),
        ("1x1_c6_to_c10_batch2#runtime_bias", "conv2d", ("-DCONV_1X1",)),
    ],
)
def test_fast_path_selection(case: str, kernel: str, options: tuple[str, ...]) -> None:
    name, _, variant = case.partition("#")
    x_shape, w_shape, strides, pads, dilations, group = CASES[name]
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    if variant == "relu":
        attrs["activation"] = "relu"
    weights = shuffle_weights(w_shape[0], 4) if name.startswith("shuffle") else np.zeros(w_shape, np.float32)
    inputs = [TensorInfo("x", x_shape)] + (
        [TensorInfo("b", (w_shape[0],))] if variant == "runtime_bias" else []
    )
    node = Node(
        "Conv",
        "node",
        [info.name for info in inputs[:1]] + ["w"] + [info.name for info in inputs[1:]],
        ["y"],
        attrs,
    )
    graph = Graph(inputs, [], [node], {"w": weights})
    (plan,) = plan_graph(graph, device_kind="cpu").node_plans
    assert [(launch.kernel, launch.program.options) for launch in plan.launches] == [(kernel, options)]


def shuffle_weights(channels: int, groups: int) -> np.ndarray:
    """The 1x1 Conv the converter makes of a channel shuffle (Reshape [N, g, C/g, H, W],
    Transpose (0, 2, 1, 3, 4), Reshape back): output a*g + b is input b*(C/g) + a."""
    source = np.arange(channels).reshape(groups, channels // groups).T.reshape(-1)
    weights = np.zeros((channels, channels, 1, 1), np.float32)
    weights[np.arange(channels), source, 0, 0] = 1.0
    return weights


@pytest.mark.parametrize("data_type", ["fp32", "fp16_fp32"])
@pytest.mark.parametrize(
    ("channels", "groups", "x_shape"),
    [(40, 4, (1, 40, 3, 5)), (30, 3, (2, 30, 4, 3)), (6, 2, (1, 6, 1, 1))],
)
def test_channel_permutation(
    channels: int, groups: int, x_shape: tuple[int, ...], data_type: str, plan_kind: str
) -> None:
    """A shuffle's permutation matrix runs as permute_channels (no bias or a zero one), a
    gather: exact in either storage (inputs are half values for fp16_fp32)."""
    w = shuffle_weights(channels, groups)
    x = half_rounded(np.random.default_rng(channels).uniform(-1, 1, x_shape).astype(np.float32))
    expected = x[:, np.argmax(w[:, :, 0, 0], axis=1)]
    for bias in (None, np.zeros(channels, np.float32)):
        graph = Graph(
            [TensorInfo("x", x_shape)],
            [],
            [Node("Conv", "node", ["x", "w", "" if bias is None else "b"], ["y"], {})],
            {"w": w, **({} if bias is None else {"b": bias})},
            data_type=data_type,
        )
        (plan,) = plan_graph(graph, device_kind=plan_kind).node_plans
        assert [launch.kernel for launch in plan.launches] == ["permute_channels"]
        (result,) = run_node(
            "Conv", {"x": x, "w": w, "b": bias}, constant_inputs={"w", "b"}, data_type=data_type
        )
        np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("variant", ["scaled", "bias", "relu", "duplicate"])
def test_near_permutations_convolve(variant: str) -> None:
    """Matrices and attributes that only look like a shuffle stay convolutions."""
    w = shuffle_weights(8, 2)
    x = np.random.default_rng(5).uniform(-1, 1, (1, 8, 3, 4)).astype(np.float32)
    b = np.zeros(8, np.float32)
    attrs: dict = {}
    if variant == "scaled":
        w[0, 0, 0, 0] = 2.0
    elif variant == "bias":
        b[3] = 0.5
    elif variant == "relu":
        attrs["activation"] = "relu"
    else:
        w[1] = w[0]  # two outputs from one input: not a permutation
    graph = Graph(
        [TensorInfo("x", x.shape)],
        [],
        [Node("Conv", "node", ["x", "w", "b"], ["y"], attrs)],
        {"w": w, "b": b},
    )
    (plan,) = plan_graph(graph, device_kind="cpu").node_plans
    assert "permute_channels" not in [launch.kernel for launch in plan.launches]
    (result,) = run_node("Conv", {"x": x, "w": w, "b": b}, attrs=attrs, constant_inputs={"w", "b"})
    expected = conv_reference(x, w, b)
    if variant == "relu":
        expected = np.maximum(expected, 0.0)
    assert_conv_close(result, expected, w)


# ShuffledDepthwiseConv (ops/shuffled_depthwise.py): a depthwise Conv of channel-shuffled
# input. name: (x shape, shuffle groups g, kernel, strides, pads, dilations). CPU plans
# with g = 2, 4, 8 read the input through the shuffle (runs of 16 / g channels, C / g
# apart); the cases end in runs of every length the last 16-channel group can have.
SHUFFLED_DEPTHWISE_CASES = {
    # runs of 34 (ShuffleNet v1's 136 channels): the last work-item has 2 channels of each
    "c136_groups4_stride2": ((1, 136, 9, 20), 4, 3, (2, 2), (1, 1, 1, 1), (1, 1)),
    # runs of 20 (4 left for the second work-item); batch 2
    "c40_groups2_batch2": ((2, 40, 7, 10), 2, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    # runs of 18 in pixels of 9 blocks: runs and pixels start at any address (PoCL's
    # vload_half8 needed 16-byte alignment)
    "c36_groups2_odd_blocks": ((1, 36, 5, 19), 2, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    # runs of 17: one channel left of each of 8 runs; asymmetric pads
    "c136_groups8_batch2": ((2, 136, 5, 9), 8, 3, (1, 1), (0, 1, 2, 1), (1, 1)),
    # runs of exactly 16: whole work-items only; generic taps
    "c64_groups4_5x5_dilation2": ((1, 64, 9, 11), 4, 5, (1, 1), (4, 4, 4, 4), (2, 2)),
    # runs of fewer than 16 channels and g = 3 are not fused: the shuffle, then the Conv
    "c48_groups8": ((1, 48, 6, 7), 8, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
    "c30_groups3": ((1, 30, 7, 6), 3, 3, (1, 1), (1, 1, 1, 1), (1, 1)),
}


def shuffled_depthwise_node(
    case: str, activation: str = "", half: bool = False
) -> tuple[dict, dict, np.ndarray]:
    """(inputs, attrs, float64 reference) of a SHUFFLED_DEPTHWISE_CASES case; ``half``:
    inputs and weights rounded to half values first, as half storage reads them."""
    x_shape, groups, kernel, strides, pads, dilations = SHUFFLED_DEPTHWISE_CASES[case]
    channels = x_shape[1]
    x, w, b = random_case(x_shape, (channels, 1, kernel, kernel), seed=channels + groups)
    assert b is not None
    if half:
        x, w, b = half_rounded(x), half_rounded(w), half_rounded(b)
    attrs = {
        "shuffle_groups": groups,
        "group": channels,
        "kernel_shape": [kernel, kernel],
        "strides": list(strides),
        "pads": list(pads),
        "dilations": list(dilations),
    }
    # Channel c of the shuffled tensor is channel (c % g) * (C / g) + c // g of x.
    shuffled = x.reshape(x.shape[0], groups, channels // groups, *x.shape[2:]).swapaxes(1, 2).reshape(x.shape)
    expected = conv_reference(shuffled, w, b, strides, pads, dilations, channels)
    if activation:
        attrs["activation"] = activation
        expected = np.maximum(expected, 0.0)
    return {"x": x, "w": w, "b": b}, attrs, expected


@pytest.mark.parametrize("data_type", ["fp32", "fp16_fp32"])
@pytest.mark.parametrize("case", sorted(SHUFFLED_DEPTHWISE_CASES))
def test_shuffled_depthwise(case: str, data_type: str) -> None:
    inputs, attrs, expected = shuffled_depthwise_node(case, half=data_type != "fp32")
    (result,) = run_node(
        "ShuffledDepthwiseConv", inputs, attrs=attrs, constant_inputs={"w", "b"}, data_type=data_type
    )
    if data_type == "fp32":
        assert_conv_close(result, expected, inputs["w"])
    else:
        assert_close_half(result, expected)


@pytest.mark.parametrize(
    ("case", "cpu_kernels"),
    [
        ("c136_groups4_stride2", [("depthwise_o16", "-DSHUFFLE_GROUPS=4")]),
        ("c40_groups2_batch2", [("depthwise_o16", "-DSHUFFLE_GROUPS=2")]),
        ("c136_groups8_batch2", [("depthwise_o16", "-DSHUFFLE_GROUPS=8")]),
        ("c48_groups8", [("permute_channels", ""), ("depthwise_o16", "")]),
        ("c30_groups3", [("permute_channels", ""), ("depthwise_o16", "")]),
    ],
)
def test_shuffled_depthwise_reads_through_the_shuffle_on_cpus(
    case: str, cpu_kernels: list[tuple[str, str]], plan_kind: str
) -> None:
    """CPU plans fuse the shuffle for g = 2, 4, 8; GPU plans and g = 3 run it first."""
    inputs, attrs, expected = shuffled_depthwise_node(case, activation="relu")
    graph = Graph(
        [TensorInfo("x", inputs["x"].shape)],
        [],
        [Node("ShuffledDepthwiseConv", "node", ["x", "w", "b"], ["y"], attrs)],
        {"w": inputs["w"], "b": inputs["b"]},
    )
    (plan,) = plan_graph(graph, device_kind=plan_kind).node_plans
    launched = [
        (launch.kernel, next((o for o in launch.program.options if o.startswith("-DSHUFFLE")), ""))
        for launch in plan.launches
    ]
    if plan_kind == "cpu":
        assert launched == cpu_kernels
    else:
        assert launched[0] == ("permute_channels", "") and len(launched) == 2
    assert all("-DACTIVATION=ACT_RELU" in launch.program.options for launch in plan.launches[-1:])
    (result,) = run_node("ShuffledDepthwiseConv", inputs, attrs=attrs, constant_inputs={"w", "b"})
    assert_conv_close(result, expected, inputs["w"])


def guarded_buffer(context: cl.Context, values: np.ndarray) -> tuple[cl.Buffer, mmap.mmap]:
    """A device buffer over ``values`` (float32) in host memory that ends where an unreadable
    page begins: a CPU device (PoCL) that reads past its end crashes the process."""
    nbytes = values.nbytes
    page = mmap.PAGESIZE
    pages = -(-nbytes // page)
    memory = mmap.mmap(-1, (pages + 1) * page)
    host = np.frombuffer(memory, np.float32, count=values.size, offset=pages * page - nbytes)
    host[:] = values.reshape(-1)
    libc = ctypes.CDLL(None)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    start = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    assert libc.mprotect(start + pages * page, page, 0) == 0  # PROT_NONE
    flags = cl.mem_flags.READ_ONLY | cl.mem_flags.USE_HOST_PTR
    return cl.Buffer(context, flags, hostbuf=host), memory


@pytest.mark.parametrize(
    "case", [case for case in sorted(SHUFFLED_DEPTHWISE_CASES) if not case.startswith(("c48", "c30"))]
)
def test_shuffled_depthwise_reads_stay_inside_the_input(case: str) -> None:
    """depthwise_o16 -DSHUFFLE_GROUPS reads a run's last channels 16 wide (the extra lanes'
    sums are never stored) except where the tensor ends. Its input here ends at an unreadable
    page, so a read past the input crashes this test; the output is checked as well."""
    inputs, attrs, expected = shuffled_depthwise_node(case)
    x = inputs["x"]
    node = Node("ShuffledDepthwiseConv", "node", ["x", "w", "b"], ["y"], attrs)
    graph = Graph([TensorInfo("x", x.shape)], [], [node], {"w": inputs["w"], "b": inputs["b"]})
    (plan,) = plan_graph(graph, device_kind="cpu").node_plans
    (launch,) = plan.launches
    assert launch.kernel == "depthwise_o16"
    context = cl.Context([select_device(device_under_test())])
    queue = cl.CommandQueue(context)
    program = cl.Program(context, program_source(launch.program.name)).build(list(launch.program.options))
    n, c, h, w = x.shape
    padded = np.zeros((n, h, w, channel_blocks(c) * 4), np.float32)
    padded[..., :c] = x.transpose(0, 2, 3, 1)
    x_buffer, _guard = guarded_buffer(context, padded)
    out_shape = (expected.shape[0], expected.shape[2], expected.shape[3], channel_blocks(c) * 4)
    out = np.full(out_shape, np.nan, np.float32)
    out_buffer = cl.Buffer(context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=out)
    constants = {
        key: cl.Buffer(context, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR, hostbuf=value)
        for key, value in plan.constants.items()
    }
    args = []
    for arg in launch.args:
        if isinstance(arg, OutputArg):
            args.append(out_buffer)
        elif isinstance(arg, TensorArg):
            args.append(x_buffer)
        elif isinstance(arg, ConstantArg):
            args.append(constants[arg.key])
        else:
            args.append(np.int32(arg.value) if isinstance(arg, IntArg) else np.float32(arg.value))
    getattr(program, launch.kernel)(queue, launch.global_size, (1,) * len(launch.global_size), *args)
    cl.enqueue_copy(queue, out, out_buffer)
    queue.finish()
    result = out[..., :c].transpose(0, 3, 1, 2)
    assert_conv_close(result, expected, inputs["w"])
    np.testing.assert_array_equal(out[..., c:], 0.0)


@pytest.mark.parametrize(
    ("attrs", "message"),
    [
        ({"shuffle_groups": 5, "group": 12}, "attribute 'shuffle_groups' must be at least 2 and divide"),
        ({"shuffle_groups": 1, "group": 12}, "attribute 'shuffle_groups' must be at least 2 and divide"),
        ({"shuffle_groups": 4, "group": 1}, r"must be a depthwise convolution \(group = 12 channels\)"),
    ],
)
def test_shuffled_depthwise_errors(attrs: dict, message: str) -> None:
    graph = Graph(
        [TensorInfo("x", (1, 12, 5, 5))],
        [],
        [Node("ShuffledDepthwiseConv", "node", ["x", "w"], ["y"], attrs)],
        {"w": np.zeros((12, 1, 3, 3), np.float32)},
    )
    with pytest.raises(OpError, match=message):
        plan_graph(graph, device_kind="cpu")


def test_conv2d_o32_loops_over_rows() -> None:
    x_shape, w_shape, strides, pads, dilations, group = CASES["3x3_c8_to_c20_tall_batch2"]
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    node = Node("Conv", "node", ["x", "w"], ["y"], attrs)
    graph = Graph([TensorInfo("x", x_shape)], [], [node], {"w": np.zeros(w_shape, np.float32)})
    ((launch,),) = [plan.launches for plan in plan_graph(graph, device_kind="cpu").node_plans]
    # 1 pair of 16-channel groups, 1 block of 7 columns, 256 of the 280 rows
    assert (launch.kernel, launch.global_size) == ("conv2d_o32", (1, 1, 256))


def centre_merged_weights(seed: int) -> np.ndarray:
    """A 3x3 filter of 80 outputs whose first 40 are a 1x1 at the centre tap, as the
    converter's merge_concat_convs writes a 1x1 and a 3x3 expand."""
    w = np.random.default_rng(seed).uniform(-1, 1, (80, 6, 3, 3)).astype(np.float32)
    centre = w[:40, :, 1, 1].copy()
    w[:40] = 0.0
    w[:40, :, 1, 1] = centre
    return w


@pytest.mark.parametrize("data_type", ["fp32", "fp16_fp32"])
def test_conv2d_o32_runs_centre_only_pairs_as_1x1(data_type: str, plan_kind: str) -> None:
    """Pairs of 16-channel groups whose weights are zero outside the centre tap (here the
    first: channels 0-31) run that tap alone; the pair holding channels 32-63 mixes and
    runs all taps. Rows wide enough for interior work-items; pads for edge ones."""
    w = half_rounded(centre_merged_weights(seed=7))
    x, _, b = random_case((2, 6, 5, 17), w.shape, seed=8)
    x, b = half_rounded(x), half_rounded(b)
    attrs = {"pads": [1, 1, 1, 1]}
    graph = Graph(
        [TensorInfo("x", x.shape)],
        [],
        [Node("Conv", "node", ["x", "w", "b"], ["y"], attrs)],
        {"w": w, "b": b},
        data_type=data_type,
    )
    (plan,) = plan_graph(graph, device_kind=plan_kind).node_plans
    if plan_kind == "cpu":
        (launch,) = plan.launches
        assert launch.kernel == "conv2d_o32"
        assert conv_ops.centre_only_pairs(w) == 1
    (result,) = run_node(
        "Conv", {"x": x, "w": w, "b": b}, attrs=attrs, constant_inputs={"w", "b"}, data_type=data_type
    )
    expected = conv_reference(x, w, b, pads=(1, 1, 1, 1))
    if data_type == "fp32":
        assert_conv_close(result, expected, w)
    else:
        assert_close_half(result, expected, roundings=1)


@pytest.mark.parametrize(("channels", "pairs"), [(40, 1), (32, 1), (31, 0), (80, 3), (0, 0)], ids=str)
def test_centre_only_pairs(channels: int, pairs: int) -> None:
    w = np.ones((80, 4, 3, 3), np.float32)
    w[:channels] = 0.0
    w[:channels, :, 1, 1] = 1.0
    assert conv_ops.centre_only_pairs(w) == pairs
    assert conv_ops.centre_only_pairs(np.ones((80, 4, 1, 1), np.float32)) == 0
    assert conv_ops.centre_only_pairs(np.ones((80, 4, 2, 2), np.float32)) == 0


# ---- Winograd F(2x2, 3x3) (CPU plans, ops/winograd.py) ------------------------------

# Every 3x3, stride-1, undilated, group-1 case: with the thresholds lowered to 1 each runs
# as F(2x2, 3x3), whatever its channel and tile counts (one channel; 1x1 outputs, a single
# half tile; no padding). The transforms add a few float32 roundings of values at most 4x
# the inputs' and 2.25x the weights' magnitude per term, well inside ATOL_PER_TERM.
WINOGRAD_CASES = sorted(
    name
    for name, (_, w_shape, strides, _, dilations, group) in CASES.items()
    if w_shape[2:] == (3, 3) and strides == (1, 1) and dilations == (1, 1) and group == 1
)
WINOGRAD_KERNELS = ["winograd_input", "conv1x1_o32", "winograd_output"]


def conv_plan_launches(
    case: str,
    attrs: dict,
    kind: str = "cpu",
    data_type: str = "fp32",
    weights: np.ndarray | None = None,
    residual_shape: tuple[int, ...] | None = None,
) -> list[KernelLaunch]:
    """The launches of CASES[case]'s Conv (constant weights and bias; a run-time residual
    input of ``residual_shape`` if given) planned for ``kind``."""
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    attrs = {
        "strides": list(strides),
        "pads": list(pads),
        "dilations": list(dilations),
        "group": group,
        **attrs,
    }
    residual = [TensorInfo("r", residual_shape)] if residual_shape is not None else []
    node = Node("Conv", "node", ["x", "w", "b", *(info.name for info in residual)], ["y"], attrs)
    w = np.ones(w_shape, np.float32) if weights is None else weights
    constants = {"w": w, "b": np.zeros(w_shape[0], np.float32)}
    graph = Graph([TensorInfo("x", x_shape), *residual], [], [node], constants, data_type=data_type)
    (plan,) = plan_graph(graph, device_kind=kind).node_plans
    return plan.launches


@pytest.fixture
def winograd_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(winograd, "WINOGRAD_MIN_CHANNELS", 1)
    monkeypatch.setattr(winograd, "WINOGRAD_MIN_TILES", 1)


@pytest.mark.parametrize("variant", ["", "relu6_residual"])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_winograd(case: str, variant: str, winograd_everywhere: None) -> None:
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=len(case) + 3)
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    expected = conv_reference(x, w, b, strides, pads)
    inputs = {"x": x, "w": w, "b": b}
    if variant:
        attrs["activation"] = "relu6"
        inputs["r"] = np.random.default_rng(5).uniform(-4, 4, expected.shape).astype(np.float32)
        expected = np.clip(expected + inputs["r"], 0.0, 6.0)
    launches = conv_plan_launches(
        case, {"activation": "relu6"} if variant else {}, residual_shape=expected.shape if variant else None
    )
    assert [launch.kernel for launch in launches] == WINOGRAD_KERNELS
    # the residual and the activation in winograd_output, not in an Add after it
    assert (conv_kernels.RESIDUAL_OPTION in launches[-1].program.options) == bool(variant)
    (result,) = run_node("Conv", inputs, attrs=attrs, constant_inputs={"w", "b"}, plan_kind="cpu")
    assert_conv_close(result, expected, w)


def test_winograd_filter_transform() -> None:
    """U = G g G^T against the definition, point by point, in conv1x1_o32's packing."""
    w = np.random.default_rng(3).uniform(-1, 1, (5, 6, 3, 3))
    g = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    packed = winograd.transformed_filter(w.astype(np.float32)).reshape(16, -1)
    for k in range(16):
        u = np.array([[g[k // 4] @ w[o, i] @ g[k % 4] for i in range(6)] for o in range(5)])
        np.testing.assert_allclose(packed[k], conv_kernels.pack_o16_filter(u.reshape(5, 6, 1, 1)), atol=1e-6)


# (case, attrs, kind, data_type, thresholds lowered to 1, takes F(2x2, 3x3)). Each row
# that does not take it fails one criterion only: with the thresholds lowered, the
# structural ones; at the planned thresholds, a case that takes it once they are lowered.
WINOGRAD_SELECTION = [
    ("3x3_c36_to_c40_batch2_winograd", {}, "cpu", "fp32", False, True),
    ("3x3_c48_to_c64_odd_sizes_winograd", {"activation": "relu"}, "cpu", "fp32_tf32", False, True),
    ("3x3_c45_to_c46_winograd", {}, "cpu", "fp32", False, True),
    # half storage would round the transformed tiles twice more
    ("3x3_c36_to_c40_batch2_winograd", {}, "cpu", "fp16_fp32", True, False),
    # GPU plans have conv2d_gpu_tiled
    ("3x3_c36_to_c40_batch2_winograd", {}, "gpu", "fp32", True, False),
    ("3x3_c64_to_c64_dilation2", {}, "cpu", "fp32", True, False),
    ("3x3_stride2_c40_to_c70_batch2", {}, "cpu", "fp32", True, False),
    # 8 input channels, 420 tiles (WINOGRAD_MIN_CHANNELS)
    ("3x3_c8_to_c20_tall_batch2", {}, "cpu", "fp32", False, False),
    ("3x3_c8_to_c20_tall_batch2", {}, "cpu", "fp32", True, True),
    # unpadded, an 11x9 output: 6 x 5 = 30 tiles (WINOGRAD_MIN_TILES)
    ("3x3_c48_to_c64_odd_sizes_winograd", {"pads": [0, 0, 0, 0]}, "cpu", "fp32", False, False),
    ("3x3_c48_to_c64_odd_sizes_winograd", {"pads": [0, 0, 0, 0]}, "cpu", "fp32", True, True),
]


@pytest.mark.parametrize(("case", "attrs", "kind", "data_type", "lowered", "takes"), WINOGRAD_SELECTION)
def test_winograd_selection(
    case: str,
    attrs: dict,
    kind: str,
    data_type: str,
    lowered: bool,
    takes: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if lowered:
        monkeypatch.setattr(winograd, "WINOGRAD_MIN_CHANNELS", 1)
        monkeypatch.setattr(winograd, "WINOGRAD_MIN_TILES", 1)
    kernels = [launch.kernel for launch in conv_plan_launches(case, attrs, kind, data_type)]
    assert (kernels == WINOGRAD_KERNELS) == takes, kernels


def test_winograd_leaves_merged_1x1_pairs_direct() -> None:
    """A filter whose first pair is a merged 1x1 (centre tap only) stays on conv2d_o32."""
    w = np.zeros((64, 48, 3, 3), np.float32)
    w[:, :, 1, 1] = 1.0
    w[32:] = 1.0
    launches = conv_plan_launches("3x3_c48_to_c64_odd_sizes_winograd", {}, weights=w)
    assert [launch.kernel for launch in launches] == ["conv2d_o32"]
    w[:32] = 1.0
    launches = conv_plan_launches("3x3_c48_to_c64_odd_sizes_winograd", {}, weights=w)
    assert [launch.kernel for launch in launches] == WINOGRAD_KERNELS


def test_pointwise_loops_over_pixel_blocks_when_pixels_are_few() -> None:
    x_shape, w_shape, *_ = CASES["1x1_c8_to_c300_13x13"]
    node = Node("Conv", "node", ["x", "w"], ["y"], {})
    graph = Graph([TensorInfo("x", x_shape)], [], [node], {"w": np.zeros(w_shape, np.float32)})
    ((launch,),) = [plan.launches for plan in plan_graph(graph, device_kind="cpu").node_plans]
    # 10 pairs of 16-channel groups; 25 blocks of 7 pixels shared by 7 work-items each
    assert (launch.kernel, launch.global_size) == ("conv1x1_o32", (10, 7))


def test_o16_kernels_run_one_work_item_per_group_on_cpus() -> None:
    # A tuning choice stored in the plan (ops/conv_kernels.py cpu_local_sizes); other device
    # kinds let the driver pick.
    x_shape, w_shape, _strides, _pads, _dilations, group = CASES["1x1_c16_to_c48_batch2"]
    node = Node("Conv", "node", ["x", "w"], ["y"], {"group": group})
    graph = Graph([TensorInfo("x", x_shape)], [], [node], {"w": np.zeros(w_shape, np.float32)})
    ((launch,),) = [plan.launches for plan in plan_graph(graph, device_kind="cpu").node_plans]
    assert launch.local_size_for("cpu") == (1, 1)
    assert launch.local_size_for("gpu") is None


# ---- GPU plans (PlanContext.gpu: kernels/conv2d_gpu.cl) ---------------------------------

GROUP1_CASES = sorted(name for name, case in CASES.items() if case[5] == 1)


@pytest.mark.parametrize("pixels", conv_kernels.GPU_PIXEL_CHOICES)
@pytest.mark.parametrize("case", GROUP1_CASES)
def test_gpu_conv_every_pixels_per_item(case: str, pixels: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # The test shapes are too small for the GPU plans to pick OUT_PIXELS > 1 themselves.
    monkeypatch.setattr(conv_kernels, "GPU_TARGET_ITEMS", 0)
    monkeypatch.setattr(conv_kernels, "GPU_PIXEL_CHOICES", (pixels,))
    monkeypatch.setattr(conv_kernels, "FC_MAX_ROWS", 0)  # 1x1 convolutions on conv2d_gpu too
    monkeypatch.setattr(conv_ops, "GPU_TILED_MIN_C4", 1 << 30)  # wide inputs too
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=7)
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    graph = Graph([TensorInfo("x", x_shape)], [], [Node("Conv", "node", ["x", "w"], ["y"], attrs)], {"w": w})
    ((launch,),) = [plan.launches for plan in plan_graph(graph, device_kind="gpu").node_plans]
    assert launch.kernel == "conv2d_gpu" and f"-DOUT_PIXELS={pixels}" in launch.program.options
    (result,) = run_node(
        "Conv", {"x": x, "w": w, "b": b}, attrs=attrs, constant_inputs={"w", "b"}, plan_kind="gpu"
    )
    assert_conv_close(result, conv_reference(x, w, b, strides, pads, dilations, group), w)


TILED_CASES = sorted(
    name
    for name, case in CASES.items()
    if case[5] == 1
    and not (
        case[1][2:] == (1, 1)
        and case[2] == (1, 1)
        and not any(case[3])
        and np.prod(case[0][:1] + case[0][2:]) <= conv_kernels.FC_MAX_ROWS
    )
)  # every group-1 case but the 1x1s over a handful of pixels (those run as fc_gpu)


@pytest.mark.parametrize("chunk", [4, 8])
@pytest.mark.parametrize("config", sorted({*conv_ops.GPU_TILED_CONFIGS, *conv_ops.GPU_TILED_KXK_CONFIGS}))
@pytest.mark.parametrize("case", TILED_CASES)
def test_gpu_tiled_conv_every_config(
    case: str, config: tuple[int, int, int, int], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conv_ops, "GPU_TILED_CONFIGS", (config,))
    monkeypatch.setattr(conv_ops, "GPU_TILED_KXK_CONFIGS", (config,))
    monkeypatch.setattr(conv_ops, "GPU_TILED_CHUNK", chunk)
    monkeypatch.setattr(conv_ops, "GPU_TILED_MIN_C4", 0)  # the small-channel cases too
    monkeypatch.setattr(conv_ops, "GPU_SPLIT_TARGET_ITEMS", 0)  # one launch (split-K: below)
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=11)
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    graph = Graph([TensorInfo("x", x_shape)], [], [Node("Conv", "node", ["x", "w"], ["y"], attrs)], {"w": w})
    ((launch,),) = [plan.launches for plan in plan_graph(graph, device_kind="gpu").node_plans]
    assert launch.kernel == "conv2d_gpu_tiled"
    assert all(g % size == 0 for g, size in zip(launch.global_size, launch.local_size or (), strict=True))
    (result,) = run_node(
        "Conv", {"x": x, "w": w, "b": b}, attrs=attrs, constant_inputs={"w", "b"}, plan_kind="gpu"
    )
    assert_conv_close(result, conv_reference(x, w, b, strides, pads, dilations, group), w)


# (activation, variant): split-K moves bias, residual and activation into the sum kernel, or
# into the last work-group of each tile where the device has a device-wide fence.
SPLIT_VARIANTS = [("", ""), ("sigmoid", "runtime_bias"), ("relu", "residual")]


@pytest.mark.parametrize("fence", [False, True])
@pytest.mark.parametrize("min_steps", [1, 3])
@pytest.mark.parametrize(("activation", "variant"), SPLIT_VARIANTS)
@pytest.mark.parametrize("case", TILED_CASES)
def test_gpu_split_k(
    case: str, activation: str, variant: str, min_steps: int, fence: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As many slices as the K steps allow (min_steps 1: one step each; 3: a short last slice).
    # The runtime plans for the device under test as if it had (or lacked) the fence.
    monkeypatch.setattr(engine, "has_device_fence", lambda device: fence)
    monkeypatch.setattr(conv_ops, "GPU_SPLIT_TARGET_ITEMS", 1 << 30)
    monkeypatch.setattr(conv_ops, "GPU_SPLIT_MIN_STEPS", min_steps)
    monkeypatch.setattr(conv_ops, "GPU_TILED_MIN_C4", 0)
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=13)
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    if activation:
        attrs["activation"] = activation
    plain = conv_reference(x, w, b, strides, pads, dilations, group)
    inputs = {"x": x, "w": w, "b": b}
    if variant == "residual":
        inputs["r"] = np.random.default_rng(14).uniform(-1, 1, plain.shape).astype(np.float32)
    constants = {"w", "b"} if variant != "runtime_bias" else {"w"}
    infos = [TensorInfo(name, v.shape) for name, v in inputs.items() if name not in constants]
    graph = Graph(
        infos,
        [],
        [Node("Conv", "node", list(inputs), ["y"], attrs)],
        {name: v for name, v in inputs.items() if name in constants},
    )
    (plan,) = plan_graph(graph, device_kind="gpu", device_fence=fence).node_plans
    tiled, *finish = plan.launches
    assert tiled.kernel == "conv2d_gpu_tiled"
    in_c4 = math.ceil(x_shape[1] / 4)
    chunk = conv_ops.GPU_TILED_CHUNK if in_c4 >= conv_ops.GPU_TILED_CHUNK else 4
    taps = 1 if "-DPOINTWISE" in tiled.program.options else w.shape[2] * w.shape[3]
    steps = taps * math.ceil(in_c4 / chunk)
    slice_steps = math.ceil(steps / max(1, steps // min_steps))
    slices = math.ceil(steps / slice_steps)
    assert ("-DSPLIT_K" in tiled.program.options) == (slices > 1)  # else too few K steps to split
    two_launches = slices > 1 and not fence
    finishing = finish[0] if two_launches else tiled
    assert [launch.kernel for launch in finish] == (["conv2d_gpu_split_sum"] if two_launches else [])
    assert ("-DRESIDUAL" in finishing.program.options) == (variant == "residual")
    assert ("-DRESIDUAL" in tiled.program.options) == (variant == "residual" and not two_launches)
    if slices > 1:
        assert tiled.global_size[2] == slices and (slices - 1) * slice_steps < steps
        tiles = tiled.global_size[0] // tiled.local_size[0] * (tiled.global_size[1] // tiled.local_size[1])
        assert plan.counters == ({conv_ops.SPLIT_ARRIVALS: tiles} if fence else {})
        assert ("-DSPLIT_K_LAST_GROUP" in tiled.program.options) == fence
    (result,) = run_node("Conv", inputs, attrs=attrs, constant_inputs=constants, plan_kind="gpu")
    expected = ACTIVATIONS[activation](plain + inputs.get("r", 0.0))
    assert_conv_close(result, expected, w)
    # Again and again on one runtime: each run must leave every arrival count at zero for
    # the next, and the slices are added in one order whichever work-group finishes a
    # tile, so the same inputs give the same bits.
    graph.outputs.append(TensorInfo("y", expected.shape))
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind="gpu")
    feeds = {info.name: inputs[info.name] for info in infos}
    for _ in range(3):
        np.testing.assert_array_equal(runtime.run_dict(feeds)["y"], result)


def round_tf32(values: np.ndarray) -> np.ndarray:
    """float32 to TF32 (10 mantissa bits), to nearest with ties away from zero, as PTX's
    cvt.rna: an oracle written apart from the kernel's (integer arithmetic on the bits)."""
    mantissa, exponent = np.frexp(values.astype(np.float64))
    rounded = np.sign(mantissa) * np.floor(np.abs(mantissa) * 2**11 + 0.5) / 2**11
    return np.ldexp(rounded, exponent).astype(np.float32)


def assert_tf32_close(
    result: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    conv: Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray],
    residual: np.ndarray | float = 0.0,
) -> None:
    """TF32 products: each operand is rounded to 11 significant bits, so each product is within
    2^-10 of its float32 value and exact in float32; the sums are float32 (mma's own rounding
    is not round-to-nearest: 2^-23 per term). ``conv(x, w, b)`` is the float64 reference, to
    which ``residual`` is added (float32, not rounded)."""
    terms = w.shape[1] * math.prod(w.shape[2:]) + 3  # products, the bias, the residual, the split sums
    magnitude = conv(np.abs(x), np.abs(w), None if b is None else np.abs(b)) + np.abs(residual)
    sums_error = terms * 2.0**-23 * magnitude
    # Against the float32 reference: the rounding of the operands, stated as the bound.
    assert np.all(np.abs(result - (conv(x, w, b) + residual)) <= 2.0**-10 * magnitude + sums_error)
    # Against TF32 operands: only the sums' error is left, which shows the rounding is TF32's.
    tf32_operands = conv(round_tf32(x), round_tf32(w), b) + residual
    assert np.all(np.abs(result - tf32_operands) <= sums_error + 1e-30)


# split: one launch (the last work-group adds the slices); split_sum: the two-launch split for
# devices without a device-wide fence.
# Every tile configuration with and without split-K; the other variants on the first.
MMA_CONFIGS = sorted({*conv_ops.GPU_TILED_CONFIGS, *conv_ops.GPU_TILED_KXK_CONFIGS}, reverse=True)
MMA_VARIANTS = [(config, variant) for config in MMA_CONFIGS for variant in ("plain", "split")] + [
    (MMA_CONFIGS[0], "split_sum"),
    (MMA_CONFIGS[0], "fp16_fp32"),
    (MMA_CONFIGS[0], "residual"),  # a fused residual Add (input 3), also split
]


@pytest.mark.parametrize(("config", "variant"), MMA_VARIANTS)
@pytest.mark.parametrize("case", TILED_CASES)
def test_gpu_tiled_conv_tf32_mma(
    case: str,
    config: tuple[int, int, int, int],
    variant: str,
    plan_kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """conv2d_gpu_tiled -DMMA_TF32, planned for a model that accepts TF32 products on a device
    that has tensor cores; off an NVIDIA GPU its fragments are exchanged through __local memory
    (kernels/conv2d_gpu.cl), so every tile layout is checked here too. CPU plans never use it."""
    monkeypatch.setattr(engine, "has_tf32_mma", lambda device: True)
    fence = variant != "split_sum"
    split = variant.startswith("split") or variant == "residual"
    monkeypatch.setattr(engine, "has_device_fence", lambda device: fence)
    monkeypatch.setattr(conv_ops, "GPU_TILED_CONFIGS", (config,))
    monkeypatch.setattr(conv_ops, "GPU_TILED_KXK_CONFIGS", (config,))
    monkeypatch.setattr(conv_ops, "GPU_TILED_MIN_C4", 0)
    monkeypatch.setattr(conv_ops, "GPU_SPLIT_TARGET_ITEMS", 1 << 30 if split else 0)
    monkeypatch.setattr(conv_ops, "GPU_SPLIT_MIN_STEPS", 1)  # every case of two K steps or more splits
    data_type = "fp16_fp32" if variant == "fp16_fp32" else "fp32_tf32"
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    x, w, b = random_case(x_shape, w_shape, seed=17)
    if data_type == "fp16_fp32":
        x, w, b = (half_rounded(v) for v in (x, w, b))
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}

    def conv(xv: np.ndarray, wv: np.ndarray, bv: np.ndarray | None) -> np.ndarray:
        return conv_reference(xv, wv, bv, strides, pads, dilations, group)

    inputs = {"x": x, "w": w, "b": b}
    if variant == "residual":
        out_shape = conv(x, w, b).shape
        inputs["r"] = np.random.default_rng(18).uniform(-1, 1, out_shape).astype(np.float32)
    infos = [TensorInfo(name, v.shape) for name, v in inputs.items() if name in ("x", "r")]
    node = Node("Conv", "node", list(inputs), ["y"], attrs)
    graph = Graph(infos, [], [node], {"w": w, "b": b}, data_type=data_type)
    (plan,) = plan_graph(graph, device_kind=plan_kind, device_fence=fence, tf32_mma=True).node_plans
    if plan_kind != "gpu":
        assert all(conv_ops.MMA_TF32_OPTION not in each.program.options for each in plan.launches)
        return
    launch, *finish = plan.launches
    assert conv_ops.MMA_TF32_OPTION in launch.program.options
    chunk = conv_ops.GPU_TILED_CHUNK if math.ceil(x_shape[1] / 4) >= conv_ops.GPU_TILED_CHUNK else 4
    taps = 1 if "-DPOINTWISE" in launch.program.options else w.shape[2] * w.shape[3]
    steps = taps * math.ceil(math.ceil(x_shape[1] / 4) / chunk)
    assert ("-DSPLIT_K" in launch.program.options) == (split and steps > 1)
    assert [f.kernel for f in finish] == (
        ["conv2d_gpu_split_sum"] if split and steps > 1 and not fence else []
    )
    assert ("-DRESIDUAL" in launch.program.options) == (variant == "residual")
    graph.data_type = "fp32"  # float32 products only: the same device plans no tensor cores
    (fp32_plan,) = plan_graph(graph, device_kind="gpu", device_fence=fence, tf32_mma=True).node_plans
    assert all(conv_ops.MMA_TF32_OPTION not in each.program.options for each in fp32_plan.launches)
    (result,) = run_node(
        "Conv", inputs, attrs=attrs, constant_inputs={"w", "b"}, plan_kind="gpu", data_type=data_type
    )
    if data_type == "fp16_fp32":  # half operands are TF32 already; the output is stored in half
        assert_close_half(result, conv(x, w, b))
    else:
        assert_tf32_close(result, x, w, b, conv, inputs.get("r", 0.0))


def test_tf32_mma_keeps_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN input gives NaN outputs under TF32 too, whatever its bits: NVIDIA's GPUs make
    0x7fffffff, which a careless rounding (add half an ulp, mask) turns into -0.0."""
    monkeypatch.setattr(engine, "has_tf32_mma", lambda device: True)
    monkeypatch.setattr(conv_ops, "GPU_TILED_MIN_C4", 0)
    x, w, b = random_case((1, 16, 6, 6), (8, 16, 3, 3), seed=19)
    x[0, 3, 2, 2] = np.array(0x7FFFFFFF, np.uint32).view(np.float32)
    attrs = {"pads": [1, 1, 1, 1]}
    (result,) = run_node(
        "Conv",
        {"x": x, "w": w, "b": b},
        attrs=attrs,
        constant_inputs={"w", "b"},
        plan_kind="gpu",
        data_type="fp32_tf32",
    )
    reached = np.zeros(result.shape[2:], bool)
    reached[1:4, 1:4] = True  # the 3x3 window around (2, 2)
    assert np.isnan(result[0][:, reached]).all() and not np.isnan(result[0][:, ~reached]).any()


def test_mma_warp_layouts() -> None:
    """Every tile configuration splits into whole mma tiles per warp, as square as they go."""
    for config in {*conv_ops.GPU_TILED_CONFIGS, *conv_ops.GPU_TILED_KXK_CONFIGS}:
        tile_m, tile_n, item_m, item_n = config
        option, warps_m = conv_ops.mma_options(config)
        along_m = int(warps_m.split("=")[1])
        warps = tile_m // item_m * (tile_n // item_n) // 32
        assert option == conv_ops.MMA_TF32_OPTION and warps % along_m == 0
        assert (tile_m // 16) % along_m == 0 and (tile_n // 2) % (warps // along_m) == 0
    assert conv_ops.mma_options((64, 16, 4, 2)) == (conv_ops.MMA_TF32_OPTION, "-DMMA_WARPS_M=2")  # 32x32 each


def test_split_k_fence_is_device_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split-K's last work-group reads what the others wrote: their stores must be ordered
    before their arrival count for the whole device. NVIDIA's OpenCL compiles mem_fence to
    a work-group-wide membar.cta, so common.h's DEVICE_FENCE is membar.gl there; on an
    NVIDIA device (the GPU run) the compiled PTX must hold it and no membar.cta."""
    monkeypatch.setattr(conv_ops, "GPU_SPLIT_TARGET_ITEMS", 1 << 30)
    x_shape, w_shape, strides, pads, dilations, group = CASES["3x3_c20_to_c36_odd_sizes"]
    x, w, b = random_case(x_shape, w_shape, seed=3)
    expected = conv_reference(x, w, b, strides, pads, dilations, group)
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    graph = Graph(
        [TensorInfo("x", x_shape)],
        [TensorInfo("y", expected.shape)],
        [Node("Conv", "node", ["x", "w", "b"], ["y"], attrs)],
        {"w": w, "b": b},
    )
    runtime = MaceRuntime(graph, device=device_under_test(), plan_kind="gpu")
    (spec,) = [spec for spec in runtime.built_programs() if "-DSPLIT_K" in spec.options]
    assert_conv_close(runtime.run_dict({"x": x})["y"], expected, w)
    if "NVIDIA" in runtime.device.platform.name:
        (binary,) = runtime.built_programs()[spec].binaries
        kernel_ptx = binary.decode(errors="replace").split(".entry conv2d_gpu_tiled", 1)[1]
        assert "membar.gl" in kernel_ptx and "membar.cta" not in kernel_ptx


@pytest.mark.parametrize("constant_bias", [True, False])
def test_gpu_tiled_conv_fused_activation_and_runtime_bias(constant_bias: bool) -> None:
    # sigmoid(0) = 0.5 would leak into the padding lanes of C_out = 70 unless zeroed.
    x_shape, w_shape, strides, pads, dilations, _ = CASES["3x3_stride2_c40_to_c70_batch2"]
    x, w, b = random_case(x_shape, w_shape, seed=5)
    attrs = {
        "activation": "sigmoid",
        "strides": list(strides),
        "pads": list(pads),
        "dilations": list(dilations),
    }
    (result,) = run_node(
        "Conv",
        {"x": x, "w": w, "b": b},
        attrs=attrs,
        constant_inputs={"w", "b"} if constant_bias else {"w"},
        plan_kind="gpu",
    )
    expected = 1.0 / (1.0 + np.exp(-conv_reference(x, w, b, strides, pads, dilations)))
    assert_conv_close(result, expected, w)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "config", "slices"),
    [
        # ResNet18 layer1: 3136 pixels, 196 work-groups of 64; K = 9 taps x 2 chunks, 2 slices
        ((1, 64, 56, 56), (64, 64, 3, 3), 1, (32, 8, 4, 1), 2),
        # layer4's first: 49 pixels, 32 work-groups; 9 taps x 8 chunks in 15 slices of 5
        ((1, 256, 14, 14), (512, 256, 3, 3), 2, (32, 8, 4, 1), 15),
        ((8, 64, 56, 56), (64, 64, 3, 3), 1, (64, 16, 4, 2), 1),  # batch 8: enough work-items
    ],
)
def test_gpu_tiled_config_choice(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: int,
    config: tuple[int, int, int, int],
    slices: int,
) -> None:
    attrs = {"strides": [stride, stride], "pads": [1, 1, 1, 1]}
    graph = Graph(
        [TensorInfo("x", x_shape)],
        [],
        [Node("Conv", "node", ["x", "w"], ["y"], attrs)],
        {"w": np.zeros(w_shape, np.float32)},
    )
    (launches,) = [plan.launches for plan in plan_graph(graph, device_kind="gpu").node_plans]
    launch = launches[0]
    tile_m, tile_n, item_m, item_n = config
    assert launch.kernel == "conv2d_gpu_tiled"
    assert f"-DTILE_M={tile_m}" in launch.program.options and f"-DITEM_N={item_n}" in launch.program.options
    assert launch.local_size == (tile_n // item_n, tile_m // item_m) + ((1,) if slices > 1 else ())
    assert all(g % size == 0 for g, size in zip(launch.global_size, launch.local_size, strict=True))
    assert (len(launches), launch.global_size[2:]) == ((2, (slices,)) if slices > 1 else (1, ()))


@pytest.mark.parametrize(
    ("case", "kernel"),
    [
        ("3x3_pad1_c5_to_c7_batch2", "conv2d_gpu"),  # C4 = 2: below GPU_TILED_MIN_C4
        ("3x3_c20_to_c36_odd_sizes", "conv2d_gpu_tiled"),
        ("1x1_c24_to_c64_7x7", "conv2d_gpu_tiled"),  # 1x1: a GEMM over the pixels (-DPOINTWISE)
        ("1x1_c6_to_c10_batch2", "conv2d_gpu"),  # C4 = 2: conv2d_gpu over the pixels as one row
        ("7x7_stride2_stem", "conv2d_gpu"),
        ("1x1_c7_to_c18_3_pixels", "fc_gpu"),  # a handful of pixels: work-group reduction
        ("depthwise_3x3_c32_stride1_wide", "depthwise_gpu"),
        ("group3_5x5", "conv2d"),
    ],
)
def test_gpu_path_selection(case: str, kernel: str) -> None:
    x_shape, w_shape, strides, pads, dilations, group = CASES[case]
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    graph = Graph(
        [TensorInfo("x", x_shape)],
        [],
        [Node("Conv", "node", ["x", "w"], ["y"], attrs)],
        {"w": np.zeros(w_shape, np.float32)},
    )
    (launches,) = [plan.launches for plan in plan_graph(graph, device_kind="gpu").node_plans]
    launch = launches[0]  # a split-K tiled convolution is followed by its sum
    assert launch.kernel == kernel
    assert "o16" not in launch.program.name
    if kernel.startswith("conv2d_gpu") or kernel == "depthwise_gpu":  # padded to the local size
        local = launch.local_size_for("gpu")
        assert local is not None and all(
            g % size == 0 for g, size in zip(launch.global_size, local, strict=True)
        )


def test_gpu_local_sizes_fit_nvidia_limits() -> None:
    # NVIDIA's OpenCL allows 1024 x 1024 x 64 work-items per dimension, 1024 in all.
    for name, (x_shape, w_shape, strides, pads, dilations, group) in CASES.items():
        for batch in (1, 70):  # a batch of 70: a third global dimension above 64
            attrs = {
                "strides": list(strides),
                "pads": list(pads),
                "dilations": list(dilations),
                "group": group,
            }
            graph = Graph(
                [TensorInfo("x", (batch, *x_shape[1:]))],
                [],
                [Node("Conv", "node", ["x", "w"], ["y"], attrs)],
                {"w": np.zeros(w_shape, np.float32)},
            )
            for launch in plan_graph(graph, device_kind="gpu").node_plans[0].launches:
                local = launch.local_size_for("gpu")
                if local is None:
                    continue
                assert math.prod(local) <= 1024, (name, batch, launch.kernel, local)
                limits = conv_kernels.GPU_MAX_LOCAL
                assert all(size <= limit for size, limit in zip(local, limits, strict=False)), (
                    name,
                    launch.kernel,
                )


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_plans_use_their_kinds_kernels_only(kind: str) -> None:
    programs = set()
    for x_shape, w_shape, strides, pads, dilations, group in CASES.values():
        attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
        graph = Graph(
            [TensorInfo("x", x_shape)],
            [],
            [Node("Conv", "node", ["x", "w"], ["y"], attrs)],
            {"w": np.zeros(w_shape, np.float32)},
        )
        programs |= {spec.name for spec in plan_graph(graph, device_kind=kind).programs()}
    assert ("conv2d_gpu" in programs) == (kind == "gpu")
    assert ("conv2d_o16" in programs) == (kind == "cpu")


# ---- half storage (data_type fp16_fp32: the -DSTORAGE_HALF builds) ---------------------

# Beyond CASES: a fully-connected layer of 301 input channels, 76 input blocks, more than
# fc_gpu's 64 lanes, so some lanes fold two blocks.
HALF_SHAPES = {
    **CASES,
    "fc_c301_to_c70_2_pixels": ((2, 301, 1, 1), (70, 301, 1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
}

ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "": lambda y: y,
    "relu": lambda y: np.maximum(y, 0.0),
    "relu6": lambda y: np.clip(y, 0.0, 6.0),
    "sigmoid": lambda y: 1.0 / (1.0 + np.exp(-y)),
}

# (case, fused activation, variant); variant "runtime_bias" feeds the bias at run time,
# "no_bias" omits it, "residual" adds input 3. The comments name the kernels of the cpu /
# gpu plans; test_half_cases_launch_every_kernel checks that together they are all of them.
HALF_CASES = [
    # conv1x1_o32 (-DRESIDUAL; partial 16-channel group, partial pixel block) /
    # conv2d_gpu_tiled -DPOINTWISE -DRESIDUAL
    ("1x1_c20_to_c33_9_pixels", "relu", "residual"),
    # conv1x1_o32 looping over pixel blocks / conv2d_gpu over the pixels as one row (C4 = 2)
    ("1x1_c8_to_c300_13x13", "sigmoid", ""),
    # conv2d_o16 then the eltwise Add / conv2d_gpu_tiled -DRESIDUAL (strided, partial tiles)
    ("3x3_stride2_c40_to_c70_batch2", "relu", "residual"),
    # fully-connected: conv1x1_o16_single / fc_gpu
    ("1x1_c7_to_c18_3_pixels", "relu", ""),
    ("fc_c301_to_c70_2_pixels", "", ""),
    # conv2d_o16 (3x3 unrolled) / conv2d_gpu (C4 = 1, below GPU_TILED_MIN_C4)
    ("3x3_stride3_dilation2", "", ""),
    # conv2d_o16 then the eltwise Add (no fused residual) / conv2d_gpu then the Add
    ("3x3_pad1_c5_to_c7_batch2", "relu", "residual"),
    # conv2d_o16 (generic taps, C_in 1) / conv2d_gpu (5x5)
    ("5x5_c1_input", "", "no_bias"),
    # conv2d_o32 (3x3) / conv2d_gpu
    ("3x3_stride2_c3_to_c32_stem", "relu6", ""),
    # conv2d_o32 looping over rows / conv2d_gpu_tiled
    ("3x3_c8_to_c20_tall_batch2", "relu", ""),
    # conv2d_o32 / conv2d_gpu_tiled: partial K step, output and pixel tiles
    ("3x3_c20_to_c36_odd_sizes", "", ""),
    ("5x5_c33_to_c17_stride_1x2", "sigmoid", ""),
    # run-time bias: conv2d (3x3) / conv2d_gpu_tiled reading the bias tensor
    ("3x3_stride2_c40_to_c70_batch2", "", "runtime_bias"),
    # run-time bias: conv2d -DCONV_1X1 / conv2d_gpu reading the bias tensor
    ("1x1_c6_to_c10_batch2", "", "runtime_bias"),
    ("1x1_stride2", "", "runtime_bias"),
    # depthwise_o16 (3x3 unrolled, interior stride-2 copy; generic taps) / depthwise_gpu
    ("depthwise_3x3_c48_stride2_wide_batch2", "relu", ""),
    ("depthwise_5x5_c64_dilation2", "", ""),
    # C4 not a multiple of 4: depthwise_o16 reading a partial last group / depthwise_gpu
    ("depthwise_3x3_stride2_tf_pads", "", ""),
    ("depthwise_7x7_stride3", "", "no_bias"),
    ("depthwise_3x3_c44_wide", "relu", ""),
    # a run-time bias: depthwise_conv2d / depthwise_gpu
    ("depthwise_7x7_stride3", "", "runtime_bias"),
    # grouped: conv2d under both kinds (-DCONV_1X1, 3x3, generic 5x5, channel multiplier);
    # a 1x1 with at most 4 groups runs dense instead (conv1x1_o32 -DGROUPED / conv2d_gpu)
    ("group4_aligned", "", ""),
    ("group4_1x1_c136_to_c136", "relu", ""),
    ("group2_1x1_c20_to_c70_7x3", "relu", "residual"),
    ("group3_1x1_c24_to_c60_15x15", "", "residual"),
    ("group3_1x1_c24_to_c30_batch2", "relu", ""),
    ("group8_1x1", "", ""),
    ("group2_inputs_straddle_blocks", "relu", ""),
    ("group3_5x5", "", ""),
    ("depthwise_multiplier3_c5", "", ""),
]


def half_case(
    case: str, activation: str, variant: str
) -> tuple[dict[str, np.ndarray | None], set[str], dict, np.ndarray, np.ndarray]:
    """(inputs, constant inputs, attributes, convolution plus bias, expected output) of a
    HALF_CASES entry. Inputs, weights, bias and residual are half_rounded: the kernels read
    exactly the values the float64 reference computes with."""
    x_shape, w_shape, strides, pads, dilations, group = HALF_SHAPES[case]
    x, w, b = (None if a is None else half_rounded(a) for a in random_case(x_shape, w_shape, seed=len(case)))
    if variant == "no_bias":
        b = None
    attrs = {"strides": list(strides), "pads": list(pads), "dilations": list(dilations), "group": group}
    if activation:
        attrs["activation"] = activation
    plain = conv_reference(x, w, b, strides, pads, dilations, group)
    inputs: dict[str, np.ndarray | None] = {"x": x, "w": w, "b": b}
    before_activation = plain
    if variant == "residual":
        r = half_rounded(np.random.default_rng(len(case) + 1).uniform(-1, 1, plain.shape))
        inputs["r"] = r
        before_activation = plain + r
    constants = {"w"} if variant == "runtime_bias" else {"w", "b"}
    return inputs, constants, attrs, plain, ACTIVATIONS[activation](before_activation)


def half_plan(case: str, activation: str, variant: str, kind: str) -> list[KernelLaunch]:
    """The launches of a HALF_CASES entry's fp16_fp32 plan for device kind ``kind``."""
    inputs, constants, attrs, _, _ = half_case(case, activation, variant)
    infos = [
        TensorInfo(name, v.shape) for name, v in inputs.items() if v is not None and name not in constants
    ]
    node_inputs = ["" if v is None else name for name, v in inputs.items()]
    weights = {name: v for name, v in inputs.items() if v is not None and name in constants}
    graph = Graph(
        infos, [], [Node("Conv", "node", node_inputs, ["y"], attrs)], weights, data_type="fp16_fp32"
    )
    (plan,) = plan_graph(graph, device_kind=kind).node_plans
    return plan.launches


@pytest.mark.parametrize(("case", "activation", "variant"), HALF_CASES)
def test_half_storage(case: str, activation: str, variant: str, plan_kind: str) -> None:
    inputs, constants, attrs, plain, expected = half_case(case, activation, variant)
    (result,) = run_node("Conv", inputs, attrs=attrs, constant_inputs=constants, data_type="fp16_fp32")
    launches = half_plan(case, activation, variant, plan_kind)
    assert all("-DSTORAGE_HALF" in launch.program.options for launch in launches)
    # One rounding per launch, each storing its result in half once. A convolution alone
    # rounds only its output: it accumulates in float registers (fc_gpu folds its partial
    # sums in __local float4s, not in global memory), and float32's error from summing in
    # another order (~2^-24 relative to the partial sums) lies far below the default
    # scale's term, 2^-11 * max |expected|, which also covers outputs that cancel to near
    # zero. An unfused residual adds a launch, the eltwise Add, and so a rounding of the
    # convolution's output stored in between: scale takes that tensor's magnitude too.
    # A split-K convolution keeps its partial sums in float32: only its output rounds.
    storing = [launch for launch in launches if "-DSPLIT_K" not in launch.program.options]
    assert len(storing) == (2 if variant == "residual" and launches[-1].kernel == "eltwise" else 1)
    scale = float(max(np.abs(plain).max(), np.abs(expected).max())) if len(storing) > 1 else None
    assert result.shape == expected.shape
    assert_close_half(result, expected, roundings=len(storing), scale=scale)


def test_half_cases_launch_every_kernel() -> None:
    """HALF_CASES, under the cpu and gpu plans together, run every __kernel of the three
    convolution programs, conv1x1_o32 and conv2d_gpu_tiled with and without -DRESIDUAL, and
    conv2d_gpu_tiled split over K."""
    declared = {
        name
        for program in ("conv2d", "conv2d_o16", "conv2d_gpu")
        for name in re.findall(r"__kernel\b[^;{]*?\bvoid\s+(\w+)\s*\(", program_source(program))
    }
    # Not a Conv's: DepthwiseSqueezeExcite's and SeparableConv's (half storage in
    # test_depthwise_squeeze_excite.py and test_separable_conv.py).
    declared -= {"depthwise_se_gpu", "depthwise_conv1x1_o32"}
    launched = set()
    for kind in ("cpu", "gpu"):
        for case in HALF_CASES:
            for launch in half_plan(*case, kind):
                launched.add(launch.kernel)
                for option in ("-DRESIDUAL", "-DSPLIT_K"):
                    if option in launch.program.options:
                        launched.add(f"{launch.kernel} {option}")
    assert len(declared) == 12
    assert (
        declared
        | {
            "conv1x1_o32 -DRESIDUAL",
            "conv2d_gpu_tiled -DRESIDUAL",
            "conv2d_gpu_tiled -DSPLIT_K",
        }
        <= launched
    )


# ---- rejected attributes -------------------------------------------------------------


def _rejects(
    attrs: dict,
    pattern: str,
    x_shape: tuple[int, ...] = (1, 4, 6, 6),
    w_shape: tuple[int, ...] = (4, 4, 3, 3),
    constants: tuple[str, ...] = ("w", "b"),
) -> None:
    x, w, b = random_case(x_shape, w_shape, seed=1)
    with pytest.raises(OpError, match=pattern) as info:
        run_node("Conv", {"x": x, "w": w, "b": b}, attrs=attrs, constant_inputs=set(constants))
    assert "'node' (Conv)" in str(info.value)


def test_group_must_divide_channels() -> None:
    _rejects({"group": 3}, r"group 3 must divide")


def test_weights_must_match_groups() -> None:
    _rejects({"group": 2}, r"need 2 input channels per group")


def test_runtime_weights_rejected() -> None:
    _rejects({}, r"weights \(input 1\) must be a graph constant", constants=("b",))


def test_kernel_shape_mismatch_rejected() -> None:
    _rejects({"kernel_shape": [5, 5]}, r"kernel_shape \[5, 5\] does not match")


def test_unknown_auto_pad_rejected() -> None:
    _rejects({"auto_pad": "SAME"}, r"auto_pad 'SAME' is not one of")


def test_pads_length_rejected() -> None:
    _rejects({"pads": [1, 1]}, r"'pads' needs 4 values")


def test_window_larger_than_input_rejected() -> None:
    _rejects({}, r"larger than the padded input", x_shape=(1, 4, 2, 6))


def test_3d_conv_rejected() -> None:
    _rejects({}, r"must be \[N, C, L\] or \[N, C, H, W\]", x_shape=(4, 6), w_shape=(4, 4, 3))


@pytest.mark.parametrize("outputs", [4, 5])
def test_half_storage_reads_and_writes_every_finite_half_exactly(outputs: int) -> None:
    """A 1x1 identity convolution over all 63,488 finite halves (subnormals and -0 included).

    The half build's aligned loads move four halves as one word and widen them from a register
    (common.h LOADA4), and the stores round to nearest even: the identity must give every value back exactly (compared as
    values: the bias addition turns -0 into +0, as float arithmetic does). With 4 outputs the
    identity is a channel permutation (permute_channels, a gather); a fifth, zero output
    channel keeps it a convolution."""
    bits = np.arange(2**16, dtype=np.uint16)
    values = bits.view(np.float16)
    finite = values[np.isfinite(values)].astype(np.float32)
    assert finite.size == 4 * 124 * 128
    x = finite.reshape(1, 4, 124, 128)
    w = np.eye(outputs, 4, dtype=np.float32).reshape(outputs, 4, 1, 1)
    (result,) = run_node("Conv", {"x": x, "w": w}, constant_inputs={"w"}, data_type="fp16_fp32")
    np.testing.assert_array_equal(result[:, :4], x)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
