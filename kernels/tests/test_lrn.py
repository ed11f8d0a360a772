"""kernels/lrn.cl (ops/lrn.py): LRN across channels vs a numpy reference of the ONNX spec."""

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

# One power per output as exp2(-beta * log2(base)) (3 ulp each in OpenCL C 1.2; the log's error
# is scaled by beta * log(base), small for bases near 1) and a float32 square sum of at most
# `size` terms: ~1e-6 relative; the reference is float64.
TOL = {"rtol": 1e-5, "atol": 1e-6}


def lrn_reference(
    x: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75, bias: float = 1.0
) -> np.ndarray:
    """ONNX LRN, written from the operator spec's formula (channel axis 1)."""
    x = x.astype(np.float64)
    channels = x.shape[1]
    square_sum = np.zeros_like(x)
    for c in range(channels):
        lo = max(0, c - math.floor((size - 1) / 2))
        hi = min(channels - 1, c + math.ceil((size - 1) / 2))
        square_sum[:, c] = np.sum(x[:, lo : hi + 1] ** 2, axis=1)
    return x / (bias + alpha / size * square_sum) ** beta


CASES = [
    # (shape, size, alpha, beta, bias)
    ((2, 7, 5, 6), 5, 1e-4, 0.75, 1.0),  # ONNX defaults, C not a multiple of 4
    ((1, 6, 4, 3), 3, 0.5, 0.75, 2.0),  # large alpha: the normalisation matters
    ((1, 13, 3, 3), 5, 2.0, 0.6, 1.5),
    ((2, 9, 2, 5), 4, 1.0, 1.0, 1.0),  # even size: asymmetric window (1 below, 2 above)
    ((1, 3, 4, 4), 5, 1.0, 0.75, 1.0),  # window wider than the channels on both sides
    ((1, 8, 3, 2), 1, 1.0, 0.5, 1.0),  # size 1: only the channel itself
    ((3, 5, 11), 3, 0.8, 0.75, 1.0),  # rank 3: [N, C, D]
    ((1, 64, 7, 7), 5, 1e-4, 0.75, 2.0),  # alexnet/zfnet-like: bias 2, many channels
]


@pytest.mark.parametrize(("shape", "size", "alpha", "beta", "bias"), CASES, ids=str)
def test_lrn(shape: tuple[int, ...], size: int, alpha: float, beta: float, bias: float) -> None:
    x = np.random.default_rng(size + len(shape)).normal(0.0, 2.0, shape).astype(np.float32)
    (result,) = run_node("LRN", {"x": x}, attrs={"size": size, "alpha": alpha, "beta": beta, "bias": bias})
    expected = lrn_reference(x, size, alpha, beta, bias)
    # The case must be sensitive to the window: a kernel that used a wrong window would differ.
    if alpha >= 0.5:
        assert np.max(np.abs(expected - lrn_reference(x, size + 2, alpha, beta, bias))) > 1e-2
    np.testing.assert_allclose(result, expected, **TOL)


def test_defaults() -> None:
    x = np.random.default_rng(1).normal(0.0, 30.0, (1, 10, 3, 3)).astype(np.float32)
    (result,) = run_node("LRN", {"x": x}, attrs={"size": 3})
    np.testing.assert_allclose(result, lrn_reference(x, 3), **TOL)


def test_size_is_required() -> None:
    x = np.zeros((1, 4, 2, 2), np.float32)
    with pytest.raises(OpError, match="'size' is required"):
        run_node("LRN", {"x": x}, attrs={})


def test_rank_2_is_refused() -> None:
    with pytest.raises(OpError, match="rank 3 or 4"):
        run_node("LRN", {"x": np.zeros((2, 4), np.float32)}, attrs={"size": 3})


# ---- half storage (data_type fp16_fp32: -DSTORAGE_HALF) -----------------------------
# Input and output are half in device memory, arithmetic float. From half-exact inputs the
# output's one rounding to half is the only one that matters (roundings=1): the float32 sum
# and the power add ~1e-6 relative, 1/500 of half's 2^-11, so the strict bound (scale=0.0)
# applies; only a result within ~1e-6 of a half rounding tie could cross it.


@pytest.mark.parametrize(
    ("shape", "size", "alpha", "beta", "bias"), [CASES[i] for i in (0, 1, 3, 6)], ids=str
)
def test_lrn_half_storage(shape: tuple[int, ...], size: int, alpha: float, beta: float, bias: float) -> None:
    x = half_rounded(np.random.default_rng(size + len(shape)).normal(0.0, 2.0, shape))
    attrs = {"size": size, "alpha": alpha, "beta": beta, "bias": bias}
    (result,) = run_node("LRN", {"x": x}, attrs=attrs, data_type="fp16_fp32")
    assert_close_half(result, lrn_reference(x, size, alpha, beta, bias), roundings=1, scale=0.0)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
