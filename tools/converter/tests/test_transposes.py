"""passes/transposes.py: Transposes that undo each other cancel; the graph's own layout stays."""

from __future__ import annotations

import numpy as np
import pytest
from converter_testing import f32, make, ort, run
from onnx import helper


def test_adjacent_transposes_cancel_but_io_layout_is_kept() -> None:
    nodes = [
        helper.make_node("Transpose", ["x"], ["t1"], perm=[0, 3, 1, 2]),
        helper.make_node("Relu", ["t1"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t2"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["t2"], ["t3"], perm=[0, 3, 1, 2]),
        helper.make_node("Sigmoid", ["t3"], ["s"]),
        helper.make_node("Transpose", ["s"], ["y"], perm=[0, 2, 3, 1]),
    ]
    model = make(nodes, {"x": [1, 4, 5, 3]}, ["y"])
    x = f32(1, 4, 5, 3)
    graph, (ours,) = run(model, {"x": x})
    assert [n.op_type for n in graph.nodes] == ["Transpose", "Relu", "Sigmoid", "Transpose"]
    np.testing.assert_allclose(ours, ort(model, {"x": x})[0], rtol=1e-6, atol=1e-6)


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
