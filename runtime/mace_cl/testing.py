"""Run a single node through the real runtime; for kernel tests."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

import numpy as np

from mace_cl.execution.engine import MaceRuntime
from mace_cl.model.graph import AttrValue, Graph, Node, TensorInfo
from mace_cl.planning.layout import Nhwc4Shape
from mace_cl.planning.planner import PLAN_KINDS, plan_graph

__all__ = ["PLAN_KINDS", "device_under_test", "plan_kind_under_test", "run_node"]


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
    shapes = plan_graph(Graph(graph_inputs, [], [node], constants), device_kind=kind or "cpu").shapes
    outputs = [TensorInfo(name, shapes[name], "float32") for name in output_names]
    runtime = MaceRuntime(
        Graph(graph_inputs, outputs, [node], constants),
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
