"""The smallest rules_mace app: runs one OpenCL kernel on the default device and checks it.

Until the mace_model example lands this is the README's main job: it shows that the toolchain
root's Python, numpy, pyopencl and OpenCL device work together.
"""

from __future__ import annotations

import numpy as np
import pyopencl as cl

RELU_SOURCE = """
__kernel void relu(__global const float *x, __global float *y) {
  const int i = get_global_id(0);
  y[i] = fmax(x[i], 0.0f);
}
"""


def run_relu(values: np.ndarray) -> tuple[np.ndarray, str]:
    """Applies ReLU on the OpenCL device; returns the result and the device's name."""
    context = cl.create_some_context(interactive=False)
    queue = cl.CommandQueue(context)
    mf = cl.mem_flags
    x = cl.Buffer(context, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=values)
    y = cl.Buffer(context, mf.WRITE_ONLY, values.nbytes)
    program = cl.Program(context, RELU_SOURCE).build()
    program.relu(queue, values.shape, None, x, y)
    result = np.empty_like(values)
    cl.enqueue_copy(queue, result, y)
    queue.finish()
    return result, context.devices[0].name.strip()


def main() -> int:
    values = np.linspace(-2.0, 2.0, 9, dtype=np.float32)
    result, device = run_relu(values)
    matches = bool(np.array_equal(result, np.maximum(values, 0.0)))
    print(f"device: {device}")
    print(f"relu({values.tolist()}) = {result.tolist()}")
    print(f"matches numpy: {matches}")
    return 0 if matches else 1


if __name__ == "__main__":
    raise SystemExit(main())
