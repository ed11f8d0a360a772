"""Kernel launches without pyopencl's per-launch Event.

``pyopencl.enqueue_nd_range_kernel`` creates an Event for every launch. A profiled run
reads them; any other run only pays for them, in host time, which is what bounds batch-1
inference on a GPU: on an H100 with NVIDIA's OpenCL a launch took 12.1 us of host time
through pyopencl and 10.8 us calling ``clEnqueueNDRangeKernel`` through ctypes without an
event. ``direct_launcher`` makes that call on the OpenCL library pyopencl itself loaded
(found in the process's memory map, so the handles pyopencl made go back to the library
that made them). Where that library cannot be found (a system without /proc, say) it
returns None and runs keep pyopencl's call.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from pathlib import Path

import pyopencl as cl

Launch = Callable[[], None]

_cl_int = ctypes.c_int32
_handle = ctypes.c_void_p
_sizes = ctypes.POINTER(ctypes.c_size_t)


def loaded_opencl_library(maps: Path = Path("/proc/self/maps")) -> str | None:
    """The path of the OpenCL library (ICD loader) mapped into this process, if any."""
    try:
        lines = maps.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and Path(fields[5]).name.startswith("libOpenCL"):
            return fields[5]
    return None


def direct_launcher(
    queue: cl.CommandQueue,
) -> Callable[[cl.Kernel, tuple[int, ...], tuple[int, ...] | None], Launch] | None:
    """A factory of argument-free callables that each enqueue one kernel on ``queue``
    (arguments already set) with no event; None where the library is not found."""
    path = loaded_opencl_library()
    if path is None:
        return None
    try:
        function = ctypes.CDLL(path).clEnqueueNDRangeKernel
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        _handle,
        _handle,
        ctypes.c_uint32,
        _sizes,
        _sizes,
        _sizes,
        ctypes.c_uint32,
        _handle,
        _handle,
    ]
    function.restype = _cl_int
    queue_handle = _handle(queue.int_ptr)

    def prepare(
        kernel: cl.Kernel, global_size: tuple[int, ...], local_size: tuple[int, ...] | None
    ) -> Launch:
        dims = len(global_size)
        global_array = (ctypes.c_size_t * dims)(*global_size)
        local_array = (ctypes.c_size_t * dims)(*local_size) if local_size is not None else None
        args = (queue_handle, _handle(kernel.int_ptr), dims, None, global_array, local_array, 0, None, None)

        def launch() -> None:
            if function(*args):
                # Failed: pyopencl's call raises the error it would have raised, by name.
                cl.enqueue_nd_range_kernel(queue, kernel, global_size, local_size)

        # The kernel and the size arrays must outlive every call: the closure holds them.
        return launch

    return prepare
