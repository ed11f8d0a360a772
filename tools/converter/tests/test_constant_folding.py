"""passes/constant_folding.py: Constant nodes and the Shape chains exporters emit fold away."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make, run
from onnx import TensorProto, helper, numpy_helper


def test_constant_nodes_and_shape_chains_fold() -> None:
    nodes = [
        helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.array([2], np.int64))),
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"]),
        helper.make_node("Cast", ["n1"], ["n1f"], to=TensorProto.INT64),
        helper.make_node("Concat", ["n1f", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    model = make(
        nodes,
        {"x": [2, 3, 4]},
        ["y"],
        {"zero": np.array(0, np.int64), "axes0": np.array([0], np.int64), "minus1": np.array([-1], np.int64)},
    )
    graph, (ours,) = run(model, {"x": f32(2, 3, 4)})
    assert [n.op_type for n in graph.nodes] == ["Reshape"]
    assert ours.shape == (2, 12)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
