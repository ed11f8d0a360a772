"""passes/dead_nodes.py: nodes and constants no output depends on are removed."""

from __future__ import annotations

import pytest
from converter_testing import f32, make
from mace_cl_converter import convert_model
from onnx import helper


def test_dead_nodes_and_constants_removed() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Mul", ["x", "k"], ["unused"])]
    graph = convert_model(make(nodes, {"x": [2]}, ["y"], {"k": f32(2)}), {})
    assert [n.op_type for n in graph.nodes] == ["Relu"] and not graph.constants


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
