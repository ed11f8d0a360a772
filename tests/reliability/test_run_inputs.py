"""Bad and unusual inputs at ``MaceRuntime.run`` that runtime/tests/test_engine.py does not cover.

Already covered there (one-input model): missing input, unknown extra input, float64
dtype, wrong shape of the same rank, a non-array, a non-mapping, one non-contiguous view.
Here: a two-input model (one missing, a misspelled name), wrong rank, 0-d, integer and
byte-swapped dtypes, other memory layouts, read-only arrays, NaN/Inf propagation, and
that neither a refused call nor a NaN run leaves the runtime in a bad state.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
sys.path.append(str(Path(__file__).absolute().parents[2] / "runtime"))

from mace_cl import Graph, MaceRuntime, Node, TensorInfo
from mace_cl.execution.engine import InputError

SHAPE = (2, 3, 4, 5)
W = np.linspace(0.5, 1.5, 3, dtype=np.float32).reshape(1, 3, 1, 1)


def _graph() -> Graph:
    """y = (a + b) * w, s = sigmoid(a): element-wise, so NaN positions are predictable."""
    return Graph(
        inputs=[TensorInfo("a", SHAPE), TensorInfo("b", SHAPE)],
        outputs=[TensorInfo("y", SHAPE), TensorInfo("s", SHAPE)],
        nodes=[
            Node("Add", "add", ["a", "b"], ["t"]),
            Node("Mul", "mul", ["t", "w"], ["y"]),
            Node("Sigmoid", "sig", ["a"], ["s"]),
        ],
        constants={"w": W},
    )


def _reference(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", over="ignore"):
        return {"y": (a + b) * W, "s": 1.0 / (1.0 + np.exp(-a.astype(np.float64)))}


# Element-wise float32 ops; sigmoid's exp differs from float64 numpy by a few ulp.
TOL = {"rtol": 1e-5, "atol": 1e-6}


@pytest.fixture(scope="module")
def runtime() -> MaceRuntime:
    return MaceRuntime(_graph())


def _inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(SHAPE).astype(np.float32), rng.standard_normal(SHAPE).astype(np.float32)


def _check(result: dict[str, np.ndarray], a: np.ndarray, b: np.ndarray) -> None:
    expected = _reference(a, b)
    assert set(result) == {"y", "s"}
    for name in result:
        # assert_allclose treats NaN as equal to NaN only at the same positions.
        np.testing.assert_allclose(result[name], expected[name], **TOL)


_a, _b = _inputs()


@pytest.mark.parametrize(
    ("feeds", "message"),
    [
        ({"a": _a}, r"input 'b' is missing; the model's inputs are \['a', 'b'\]"),
        ({"a": _a, "B": _b}, r"unknown input\(s\) 'B'; the model's inputs are \['a', 'b'\]"),
        ({"a": _a, "b": _b[0]}, r"input 'b' has shape \[3, 4, 5\]; the model expects \[2, 3, 4, 5\]"),
        ({"a": _a, "b": _b[None]}, r"input 'b' has shape \[1, 2, 3, 4, 5\]"),
        ({"a": _a, "b": np.float32(1.0)}, r"input 'b' must be a numpy array"),
        ({"a": _a, "b": np.array(1.0, np.float32)}, r"input 'b' has shape \[\]"),
        ({"a": _a, "b": _b.astype(np.int32)}, r"input 'b' has dtype int32; the model expects float32"),
        ({"a": _a, "b": _b.astype(np.float16)}, r"input 'b' has dtype float16"),
        # Same values, other byte order: refused by name rather than read as garbage.
        ({"a": _a, "b": _b.astype(">f4")}, r"input 'b' has dtype >f4; the model expects float32"),
        ({"a": _a, "b": _b.reshape(2, 3, 20)}, r"input 'b' has shape \[2, 3, 20\]"),
    ],
    ids=[
        "missing-second",
        "misspelled",
        "rank-3",
        "rank-5",
        "numpy-scalar",
        "0-d",
        "int32",
        "float16",
        "big-endian",
        "same-size-other-shape",
    ],
)
def test_refused_inputs_name_the_problem(runtime: MaceRuntime, feeds: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        runtime.run_dict(feeds)
    # A refused call enqueues nothing: the next good call is correct.
    a, b = _inputs(1)
    _check(runtime.run_dict({"a": a, "b": b}), a, b)


@pytest.mark.parametrize("layout", ["fortran", "reversed", "strided", "read-only", "unaligned-view"])
def test_any_memory_layout_gives_the_same_result(runtime: MaceRuntime, layout: str) -> None:
    a, b = _inputs(2)
    if layout == "fortran":
        b_in = np.asfortranarray(b)
    elif layout == "reversed":
        b_in = np.ascontiguousarray(b[:, :, ::-1, ::-1])[:, :, ::-1, ::-1]
    elif layout == "strided":
        b_in = np.repeat(b, 2, axis=1)[:, ::2]
    elif layout == "read-only":
        b_in = b.copy()
        b_in.flags.writeable = False
    else:  # float32 data at an odd byte offset of a larger buffer
        raw = np.zeros(b.nbytes + 1, np.uint8)
        b_in = np.frombuffer(raw.data, np.float32, count=b.size, offset=1).reshape(SHAPE)
        b_in[...] = b
    assert np.array_equal(b_in, b)
    _check(runtime.run_dict({"a": a, "b": b_in}), a, b)
    assert np.array_equal(b_in, b), "run() must not modify its inputs"


def test_nan_and_inf_inputs_propagate_and_do_not_linger(runtime: MaceRuntime) -> None:
    a, b = _inputs(3)
    a[0, 0, 0, 0] = np.nan
    a[1, 2, 3, 4] = np.inf
    b[1, 2, 3, 4] = -np.inf  # inf + -inf = NaN
    b[0, 1, 2, 3] = np.inf
    result = runtime.run_dict({"a": a, "b": b})
    _check(result, a, b)
    assert np.isnan(result["y"][0, 0, 0, 0]) and np.isnan(result["y"][1, 2, 3, 4])
    assert np.isposinf(result["y"][0, 1, 2, 3])
    assert np.isnan(result["s"][0, 0, 0, 0]) and result["s"][1, 2, 3, 4] == 1.0
    assert np.isfinite(result["y"]).sum() == result["y"].size - 3
    # Buffers are reused across runs: the next finite input must give finite outputs.
    a, b = _inputs(4)
    result = runtime.run_dict({"a": a, "b": b})
    assert all(np.isfinite(v).all() for v in result.values())
    _check(result, a, b)


def test_outputs_are_fresh_arrays_each_run(runtime: MaceRuntime) -> None:
    a, b = _inputs(5)
    first = runtime.run_dict({"a": a, "b": b})
    kept = {k: v.copy() for k, v in first.items()}
    runtime.run_dict({"a": b, "b": a * 2})
    for name in first:  # a later run must not write into arrays handed out earlier
        np.testing.assert_array_equal(first[name], kept[name])


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
