"""passes/identity.py: Identity (and Dropout, imported as Identity) disappear; output names stay."""

from __future__ import annotations

import pytest
from converter_testing import f32, make, run
from onnx import helper


def test_identity_dropout_removed_and_output_name_kept() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Dropout", ["r"], ["d"]),
        helper.make_node("Identity", ["d"], ["y"]),
    ]
    graph, (ours,) = run(make(nodes, {"x": [2, 5]}, ["y"]), {"x": f32(2, 5)})
    assert [n.op_type for n in graph.nodes] == ["Relu"] and graph.nodes[0].outputs == ["y"]
    assert ours.min() >= 0


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
