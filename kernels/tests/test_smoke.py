"""The OpenCL device runs a kernel and its result matches numpy: the first thing every kernel needs."""

import numpy as np
import pyopencl as cl
import pytest

SAXPY = """
__kernel void saxpy(const float a, __global const float *x, __global const float *y,
                    __global float *out, const int n) {
  const int i = get_global_id(0);
  if (i < n) out[i] = a * x[i] + y[i];
}
"""


def test_saxpy_matches_numpy() -> None:
    ctx = cl.create_some_context(interactive=False)
    queue = cl.CommandQueue(ctx)
    rng = np.random.default_rng(0)
    n = 1000  # not a multiple of the rounded-up global size, so the bounds check matters
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    mf = cl.mem_flags
    x_buf = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=x)
    y_buf = cl.Buffer(ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=y)
    out_buf = cl.Buffer(ctx, mf.WRITE_ONLY, x.nbytes)
    program = cl.Program(ctx, SAXPY).build()
    program.saxpy(queue, (1024,), None, np.float32(2.5), x_buf, y_buf, out_buf, np.int32(n))
    out = np.empty_like(x)
    cl.enqueue_copy(queue, out, out_buf)
    queue.finish()
    # One multiply-add per element: float32 rounding is the only difference from numpy.
    np.testing.assert_allclose(out, np.float32(2.5) * x + y, rtol=1e-6, atol=1e-6)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
