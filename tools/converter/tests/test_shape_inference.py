"""passes/shape_inference.py: the runtime's planner gives the shapes, and each node is planned once."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make
from mace_cl_converter import convert_model
from onnx import helper


def test_each_node_is_planned_once_and_the_final_graph_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planning packs weights (seconds for a large Gemm), so the converter's repeated shape
    inference must reuse plans, and the final graph is planned by one plan_graph call."""
    from collections import Counter

    import mace_cl.planning.planner
    from mace_cl.planning.ops import registry
    from mace_cl_converter.passes import shape_inference

    calls: dict[str, Counter] = {"inference": Counter(), "final": Counter()}

    def counting(kind: str):
        def plan(node, inputs, context=None):
            calls[kind][node.name] += 1
            return registry.plan_node(node, inputs, context)

        return plan

    monkeypatch.setattr(shape_inference, "plan_node", counting("inference"))
    monkeypatch.setattr(mace_cl.planning.planner, "plan_node", counting("final"))
    c = 8
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("Relu", ["bn"], ["r"]),
        helper.make_node("Reshape", ["r", "flat"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]
    inits = {
        "w": f32(c, 3, 3, 3),
        "s": f32(c) + 2,
        "b": f32(c),
        "m": f32(c),
        "v": np.abs(f32(c)) + 1,
        "flat": np.array([1, -1], np.int64),
        "fc": f32(4, c * 16),
    }
    graph = convert_model(make(nodes, {"x": [1, 3, 4, 4]}, ["y"], inits), {})
    assert [n.op_type for n in graph.nodes] == ["Conv", "Reshape", "Gemm"]
    assert max(calls["inference"].values()) == 1, calls["inference"]
    assert calls["final"] == Counter({n.name: 1 for n in graph.nodes})


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
