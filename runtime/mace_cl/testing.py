"""Run a single node through the real runtime; for kernel tests."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

import numpy as np

from mace_cl.execution.engine import MaceRuntime
from mace_cl.model.graph import AttrValue, Graph, Node, TensorInfo
from mace_cl.planning.layout import Nhwc4Shape
from mace_cl.planning.planner import PLAN_KINDS, plan_graph

__all__ = [
    "HALF_UNIT_ROUNDOFF",
    "PLAN_KINDS",
    "assert_close_half",
    "device_under_test",
    "half_rounded",
    "plan_kind_under_test",
    "run_node",
]

# Rounding a float to the nearest half (11 significant bits) changes it by at most this much
# relative to its magnitude (normal range; below 2^-14 the absolute step is 2^-24).
HALF_UNIT_ROUNDOFF = 2.0**-11


def device_under_test() -> str:
    """The device tests run on: $MACE_TEST_DEVICE (e.g. "gpu" on a GPU machine), else PoCL's "cpu"."""
    return os.environ.get("MACE_TEST_DEVICE", "cpu")


def plan_kind_under_test() -> str | None:
    """The device kind tests plan kernels for: $MACE_PLAN_KIND (e.g. "gpu", to run the
    GPU plans on PoCL), else None: the kind of the device under test."""
    return os.environ.get("MACE_PLAN_KIND") or None


def run_node(
    op_type: str,
    inputs: Mapping[str, np.ndarray | None],
    *,
    attrs: Mapping[str, AttrValue] | None = None,
    constant_inputs: Collection[str] = (),
    num_outputs: int = 1,
    device: str | None = None,
    plan_kind: str | None = None,
    data_type: str = "fp32",
) -> list[np.ndarray]:
    """Run one ``op_type`` node and return its outputs (logical NCHW arrays).

    ``inputs`` is in node-input order; a ``None`` value is an omitted optional input.
    Inputs named in ``constant_inputs`` become graph constants (weights), the others
    graph inputs fed at run time.

    Device buffers are filled with NaN first, and the padding lanes of every output are
    checked to be zero afterwards (AssertionError otherwise), so a kernel that skips
    elements or padding lanes fails its test.

    ``plan_kind`` (default ``plan_kind_under_test()``) plans the kernels of that device
    kind whatever the device, so the GPU plans are tested on PoCL too.

    ``data_type`` "fp16_fp32" runs the half-storage builds of the kernels: inputs, weights and
    every device tensor are rounded to float16 (outputs are returned as float32).
    """
    graph_inputs = []
    constants = {}
    node_inputs = []
    for name, value in inputs.items():
        if value is None:
            node_inputs.append("")
        elif name in constant_inputs:
            constants[name] = np.asarray(value)
            node_inputs.append(name)
        else:
            graph_inputs.append(TensorInfo(name, tuple(np.shape(value)), "float32"))
            node_inputs.append(name)
    output_names = [f"output{i}" for i in range(num_outputs)]
    node = Node(op_type, "node", node_inputs, output_names, dict(attrs or {}))
    # Plan once without declared outputs to learn their shapes.
    kind = plan_kind or plan_kind_under_test()
    shapes = plan_graph(
        Graph(graph_inputs, [], [node], constants, data_type=data_type), device_kind=kind or "cpu"
    ).shapes
    outputs = [TensorInfo(name, shapes[name], "float32") for name in output_names]
    runtime = MaceRuntime(
        Graph(graph_inputs, outputs, [node], constants, data_type=data_type),
        device=device or device_under_test(),
        plan_kind=kind,
    )
    runtime.fill_activation_buffers(float("nan"))
    feeds = {info.name: np.asarray(inputs[info.name], dtype=np.float32) for info in graph_inputs}
    results = runtime.run_dict(feeds)
    for info in outputs:
        assert_padding_lanes_zero(runtime.read_nhwc4(info.name), info.shape, f"{op_type} output {info.name}")
    return [results[name] for name in output_names]


def assert_padding_lanes_zero(flat: np.ndarray, shape: tuple[int, ...], what: str) -> None:
    geo = Nhwc4Shape.of(shape)
    padding = flat.reshape(geo.n, geo.h, geo.w, geo.c4 * 4)[..., geo.c :]
    if padding.size and not np.all(padding == 0.0):
        raise AssertionError(
            f"{what}: channel padding lanes must be written as 0 (kernels/common.h zero_padding_lanes), "
            f"found {padding[padding != 0.0][:4]}"
        )


def half_rounded(array: np.ndarray) -> np.ndarray:
    """``array`` as float32 values that float16 holds exactly: what a half-storage device sees.

    Half-storage tests feed such values, so that the numpy oracle computes on exactly the
    inputs and weights the kernels read and only the kernels' own roundings remain."""
    return np.asarray(array, dtype=np.float32).astype(np.float16).astype(np.float32)


def assert_close_half(
    actual: np.ndarray, expected: np.ndarray, *, roundings: int = 1, scale: float | None = None
) -> None:
    """Asserts a half-storage result within the error its roundings to half allow.

    ``roundings``: how many times a value on the way from the (half-exact) inputs to the output
    is stored in half (the output itself is one; every intermediate tensor a multi-launch op
    writes is another). Each costs at most ``HALF_UNIT_ROUNDOFF`` relative to the value rounded,
    so the bound is ``roundings * HALF_UNIT_ROUNDOFF`` relative to the output plus the same
    relative to ``scale`` (default: the largest magnitude expected), which covers intermediate
    values larger than the output they cancel into, half's subnormal steps and float32
    arithmetic (24 bits, far below half's 11).
    """
    expected = np.asarray(expected, dtype=np.float64)
    # Over finite values: an infinite expected value (overflow the oracle also shows) must not
    # make the absolute bound infinite; assert_allclose still matches inf and NaN positions.
    finite = np.abs(expected[np.isfinite(expected)])
    magnitude = float(np.max(finite)) if finite.size else 0.0
    bound = roundings * HALF_UNIT_ROUNDOFF
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64),
        expected,
        rtol=bound,
        atol=bound * (magnitude if scale is None else scale) + 2.0**-24,
    )
