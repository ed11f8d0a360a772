"""execution/direct_enqueue.py: launches without pyopencl's per-launch Event."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyopencl as cl
import pytest

# A source checkout runs this file directly; an installed runtime or Bazel's imports win.
sys.path.append(str(Path(__file__).resolve().parents[2] / "runtime"))

from mace_cl import Graph, MaceRuntime, Node, TensorInfo
from mace_cl.execution.device import select_device, shared_context
from mace_cl.execution.direct_enqueue import direct_launcher, loaded_opencl_library
from mace_cl.testing import device_under_test

MAPS = """\
7f0000000000-7f0000001000 r--p 00000000 08:01 1234 /usr/lib/libc.so.6
7f0000002000-7f0000003000 r-xp 00001000 08:01 5678 /opt/lib dir/libOpenCL-3a4b.so.1.0.0
7f0000004000-7f0000005000 rw-p 00000000 00:00 0
"""


def test_finds_the_opencl_library_in_a_memory_map(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text(MAPS)
    assert loaded_opencl_library(maps) == "/opt/lib dir/libOpenCL-3a4b.so.1.0.0"  # a bundled loader
    maps.write_text(MAPS.replace("libOpenCL-3a4b", "libother"))
    assert loaded_opencl_library(maps) is None
    assert loaded_opencl_library(tmp_path / "absent") is None


@pytest.fixture(scope="module")
def queue() -> cl.CommandQueue:
    return cl.CommandQueue(shared_context(select_device(device_under_test())))


def test_a_prepared_launch_runs_its_kernel(queue: cl.CommandQueue) -> None:
    # This process has pyopencl's OpenCL library mapped (Linux, as on CI): the direct path exists.
    prepare = direct_launcher(queue)
    assert prepare is not None
    program = cl.Program(
        queue.context, "__kernel void k(__global int *a, int v) { a[get_global_id(0)] += v; }"
    )
    kernel = cl.Kernel(program.build(), "k")
    buffer = cl.Buffer(
        queue.context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=np.zeros(64, np.int32)
    )
    kernel.set_args(buffer, np.int32(3))
    launch = prepare(kernel, (64,), None)
    for _ in range(2):
        launch()
    result = np.empty(64, np.int32)
    cl.enqueue_copy(queue, result, buffer)
    np.testing.assert_array_equal(result, 6)


def test_a_failed_launch_raises_pyopencls_error(queue: cl.CommandQueue) -> None:
    prepare = direct_launcher(queue)
    assert prepare is not None
    program = cl.Program(
        queue.context, "__kernel void k(__global int *a) { a[get_global_id(0)] = 1; }"
    ).build()
    kernel = cl.Kernel(program, "k")
    kernel.set_args(cl.Buffer(queue.context, cl.mem_flags.READ_WRITE, 4 << 20))
    too_large = queue.device.max_work_group_size * 2  # no device runs work-groups of this size
    with pytest.raises(cl.Error, match=r"INVALID_WORK_GROUP_SIZE"):
        prepare(kernel, (too_large * 4,), (too_large,))()


def test_runs_with_and_without_events_give_the_same_bits() -> None:
    # Unprofiled runs launch directly, profiled ones through pyopencl (they need the events).
    graph = Graph(
        [TensorInfo("x", (2, 6, 5, 4))],
        [TensorInfo("y", (2, 6, 5, 4))],
        [
            Node("Sigmoid", "a", ["x"], ["s"]),
            Node("Mul", "b", ["s", "x"], ["m"]),
            Node("Tanh", "c", ["m"], ["y"]),
        ],
    )
    x = np.random.default_rng(0).standard_normal((2, 6, 5, 4)).astype(np.float32)
    direct = MaceRuntime(graph, device=device_under_test()).run_dict({"x": x})["y"]
    profiled = MaceRuntime(graph, device=device_under_test(), profile=True)
    np.testing.assert_array_equal(direct, profiled.run_dict({"x": x})["y"])
    assert len(profiled.last_profile().launches) >= 3
    np.testing.assert_allclose(direct, np.tanh(x / (1 + np.exp(-x))), rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
