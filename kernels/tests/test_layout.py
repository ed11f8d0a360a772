"""kernels/layout.cl: user NCHW / NHWC arrays <-> NHWC4 device buffers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyopencl as cl
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl import Graph, MaceRuntime, TensorInfo
from mace_cl.execution.device import select_device, shared_context
from mace_cl.execution.programs import program_cache_for
from mace_cl.planning.ops.conv_kernels import GPU_MAX_LOCAL
from mace_cl.planning.planner import LAYOUT_PROGRAM, STORAGE_OPTIONS
from mace_cl.planning.program_spec import ProgramSpec
from mace_cl.testing import device_under_test, half_rounded

# Layout conversion only moves values: results must be bit-exact, in float and in half storage.

SHAPES = [
    (2, 5, 3, 7),
    (1, 1, 1, 1),
    (3, 1, 2, 5),
    (1, 4, 3, 3),
    (2, 8, 1, 1),
    (1, 9, 4, 1),
    (4, 6),
    (2, 3, 5),
    (7,),
    (),
]


def _expected_nhwc4(x: np.ndarray) -> np.ndarray:
    """Reference built from the documented mapping (docs/memory_layout.md)."""
    shape = x.shape
    nchw = {0: (1, 1, 1, 1), 1: (1, *shape, 1, 1), 2: (*shape, 1, 1)}.get(len(shape))
    if nchw is None:
        nchw = (shape[0], shape[1], 1, shape[2]) if len(shape) == 3 else shape
    n, c, h, w = nchw
    c_padded = -(-c // 4) * 4
    out = np.zeros((n, h, w, c_padded), np.float32)
    out[..., :c] = np.moveaxis(x.reshape(nchw), 1, -1)
    return out.reshape(-1)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_nchw_roundtrip_through_runtime(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    info = TensorInfo("x", shape)
    runtime = MaceRuntime(Graph(inputs=[info], outputs=[info], nodes=[]))
    runtime.fill_activation_buffers(float("nan"))  # so unwritten padding would show
    result = runtime.run_dict({"x": x})["x"]
    np.testing.assert_array_equal(runtime.read_nhwc4("x"), _expected_nhwc4(x))
    np.testing.assert_array_equal(result, x)
    assert result.dtype == np.float32


@pytest.mark.parametrize("shape", [(1, 3, 224, 224), (2, 70, 1, 1), (1, 1000), (4, 6)], ids=str)
def test_gpu_plan_layout_local_sizes_fit_nvidia_limits(shape: tuple[int, ...]) -> None:
    # GPU plans give the layout kernels exact-divisor local sizes; NVIDIA's OpenCL refuses
    # more than 64 work-items along the third dimension (a classifier's 1000 outputs). Half
    # storage, so that every shape converts (float32 [1, 1000] is copied as it is).
    x = half_rounded(np.random.default_rng(2).standard_normal(shape).astype(np.float32))
    info = TensorInfo("x", shape)
    graph = Graph(inputs=[info], outputs=[info], nodes=[], data_type="fp16_fp32")
    runtime = MaceRuntime(graph, plan_kind="gpu")
    for boundary in (*runtime._inputs, *runtime._outputs):
        launch = boundary.convert
        assert launch is not None
        local = launch.local_size or (1, 1, 1)  # None: fewer than 32 work-items, the driver picks
        assert all(size <= limit for size, limit in zip(local, GPU_MAX_LOCAL, strict=True))
        assert all(g % size == 0 for g, size in zip(launch.global_size, local, strict=True))
    np.testing.assert_array_equal(runtime.run_dict({"x": x})["x"], x)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_nchw_roundtrip_in_half_storage(shape: tuple[int, ...]) -> None:
    # Values half holds exactly: the host rounds inputs to half, the kernels only move them.
    x = half_rounded(np.random.default_rng(1).standard_normal(shape))
    info = TensorInfo("x", shape)
    runtime = MaceRuntime(Graph(inputs=[info], outputs=[info], nodes=[], data_type="fp16_fp32"))
    runtime.fill_activation_buffers(float("nan"))
    result = runtime.run_dict({"x": x})["x"]
    assert runtime.device_memory_bytes()["activations"] == _expected_nhwc4(x).size * 2
    np.testing.assert_array_equal(runtime.read_nhwc4("x"), _expected_nhwc4(x))
    np.testing.assert_array_equal(result, x)
    assert result.dtype == np.float32


@pytest.fixture(scope="module", params=[np.float32, np.float16], ids=["float", "half"])
def layout_program(request: pytest.FixtureRequest) -> tuple[cl.Context, cl.Program, np.dtype]:
    dtype = np.dtype(request.param)
    context = shared_context(select_device(device_under_test()))
    spec = ProgramSpec(LAYOUT_PROGRAM.name, LAYOUT_PROGRAM.options + STORAGE_OPTIONS[dtype])
    program, _ = program_cache_for(context).get(spec)
    return context, program, dtype


@pytest.mark.parametrize("shape", [s for s in SHAPES if len(s) == 4], ids=str)
def test_nhwc_kernels(
    layout_program: tuple[cl.Context, cl.Program, np.dtype], shape: tuple[int, ...]
) -> None:
    context, program, dtype = layout_program
    queue = cl.CommandQueue(context)
    n, c, h, w = shape
    # User arrays are float32 in both builds; the packed tensor is in the storage dtype. Values
    # half holds exactly for the half build, full float32 ones for the float build.
    nhwc = np.random.default_rng(2).standard_normal((n, h, w, c)).astype(np.float32)
    if dtype == np.float16:
        nhwc = half_rounded(nhwc)
    c4 = -(-c // 4)
    mf = cl.mem_flags
    src = cl.Buffer(context, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=nhwc)
    packed = cl.Buffer(
        context,
        mf.READ_WRITE | mf.COPY_HOST_PTR,
        hostbuf=np.full(n * h * w * c4 * 4, np.nan, dtype),
    )
    back = cl.Buffer(context, mf.READ_WRITE, nhwc.nbytes)
    dims = (np.int32(h), np.int32(w), np.int32(c))
    program.nhwc_to_nhwc4(queue, (c4, w, n * h), None, src, packed, *dims)
    program.nhwc4_to_nhwc(queue, (c, w, n * h), None, packed, back, *dims)
    packed_host = np.empty(n * h * w * c4 * 4, dtype)
    back_host = np.empty_like(nhwc)
    cl.enqueue_copy(queue, packed_host, packed)
    cl.enqueue_copy(queue, back_host, back)
    queue.finish()
    expected = _expected_nhwc4(nhwc.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(packed_host.astype(np.float32), expected)
    np.testing.assert_array_equal(back_host, nhwc)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
