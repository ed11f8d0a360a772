"""Bounded soak: a few hundred inferences in one process must not grow memory or OpenCL objects.

The long run is ``dev/soak/soak.py --iterations 20000``; this is the same loop, short.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyopencl as cl
import pytest

# Not resolved: under Bazel the runfiles tree, not the source tree, must be used.
REPO = Path(__file__).absolute().parents[2]
sys.path.append(str(REPO / "dev" / "soak"))

from soak import SHAPE, cl_object_counts, growth, soak  # noqa: E402

ITERATIONS = 600
INTERVAL = 150  # the first 150 runs are warm-up
# Each run returns two 128 KiB outputs; leaking either (or a device buffer of that size)
# for the 450 measured runs would add >= 56 MiB. 16 MiB leaves room for allocator noise
# (measured growth after warm-up: 0 MiB) while catching any per-run leak of that size.
MAX_RSS_GROWTH = 16 << 20


def test_repeated_runs_do_not_grow_memory_or_opencl_objects() -> None:
    samples = soak(ITERATIONS, INTERVAL)
    assert [s.runs for s in samples] == list(range(0, ITERATIONS + 1, INTERVAL))
    rss, cl_changes = growth(samples)
    assert cl_changes == {}, f"OpenCL objects changed after warm-up: {cl_changes}"
    assert rss < MAX_RSS_GROWTH, [s.line() for s in samples]
    # The runtime's own objects are all there: one buffer per constant/activation/staging
    # area and one kernel per launch, not zero (which would mean the counting is broken).
    assert samples[-1].cl_objects.get("Kernel", 0) >= 4
    assert samples[-1].cl_objects.get("Buffer", 0) >= 4
    # Python objects are allowed small noise (caches, interned names), not one per run.
    assert samples[-1].python_objects - samples[1].python_objects < 200


def test_object_counting_sees_events_held_from_python() -> None:
    # pyopencl Events are invisible to gc.get_objects(); a leak of them must still count.
    context = cl.Context(devices=[cl.get_platforms()[0].get_devices()[0]])
    queue = cl.CommandQueue(context)
    buffer = cl.Buffer(context, cl.mem_flags.READ_WRITE, int(np.prod(SHAPE)) * 4)
    before = cl_object_counts()
    held = [cl.enqueue_fill_buffer(queue, buffer, np.float32(0), 0, 64) for _ in range(25)]
    queue.finish()
    after = cl_object_counts()
    assert after.get("Event", 0) - before.get("Event", 0) == 25
    del held


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
